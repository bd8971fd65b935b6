#include "supernodal_cholesky.h"

#include <Eigen/Cholesky>
#include <Eigen/OrderingMethods>

namespace pyfacerig {

namespace {
using BlockMap = Eigen::Map<Eigen::MatrixXd>;
using ConstBlockMap = Eigen::Map<const Eigen::MatrixXd>;
}  // namespace

std::vector<int> SupernodalCholesky::fill_reducing_order(const SparseMatrixd& A) {
  Eigen::PermutationMatrix<Eigen::Dynamic, Eigen::Dynamic, int> order;
  Eigen::AMDOrdering<int>()(A, order);
  return std::vector<int>(order.indices().data(), order.indices().data() + order.size());
}

bool SupernodalCholesky::compute(const SparseMatrixd& A, const std::vector<int>* elimination_order) {
  if (A.rows() != A.cols() || A.rows() == 0) return false;  // callers never factor an empty system
  n_ = static_cast<int>(A.rows());
  const std::vector<int> order = elimination_order ? *elimination_order : fill_reducing_order(A);
  if (static_cast<int>(order.size()) != n_) return false;
  new_of_old_.assign(n_, -1);
  for (int k = 0; k < n_; ++k) new_of_old_[order[k]] = k;
  return analyse(A) && factorise(A);
}

bool SupernodalCholesky::analyse(const SparseMatrixd& A) {
  const int n = n_;

  // Upper triangle of P A P^T by columns: column k lists rows i < k.  This is
  // the row pattern of A's lower triangle, which drives the elimination tree.
  std::vector<int> upper_begin(n + 1, 0), upper_rows;
  for (int j = 0; j < n; ++j)
    for (SparseMatrixd::InnerIterator it(A, j); it; ++it) {
      const int r = new_of_old_[it.row()], c = new_of_old_[j];
      if (r < c) ++upper_begin[c + 1];
    }
  for (int k = 0; k < n; ++k) upper_begin[k + 1] += upper_begin[k];
  upper_rows.resize(upper_begin[n]);
  {
    std::vector<int> fill(upper_begin.begin(), upper_begin.end() - 1);
    for (int j = 0; j < n; ++j)
      for (SparseMatrixd::InnerIterator it(A, j); it; ++it) {
        const int r = new_of_old_[it.row()], c = new_of_old_[j];
        if (r < c) upper_rows[fill[c]++] = r;
      }
  }

  // Elimination tree (Liu's algorithm with path compression).
  std::vector<int> parent(n, -1), ancestor(n, -1);
  for (int k = 0; k < n; ++k)
    for (int p = upper_begin[k]; p < upper_begin[k + 1]; ++p)
      for (int i = upper_rows[p]; i != -1 && i < k;) {
        const int next = ancestor[i];
        ancestor[i] = k;
        if (next == -1) parent[i] = k;
        i = next;
      }

  // Row k of L is the union of the tree paths from each i in A's row k up to
  // k.  Walking them twice gives column counts, then sorted column patterns.
  std::vector<int> mark(n, -1), count(n, 1);
  auto for_each_in_row = [&](int k, auto&& visit) {
    mark[k] = k;
    for (int p = upper_begin[k]; p < upper_begin[k + 1]; ++p)
      for (int j = upper_rows[p]; mark[j] != k; j = parent[j]) {
        mark[j] = k;
        visit(j);
      }
  };
  for (int k = 0; k < n; ++k) for_each_in_row(k, [&](int j) { ++count[j]; });

  // Supernodes: column j joins the supernode of j-1 when j is j-1's parent
  // (then j-1's pattern minus itself lies in j's pattern).  Fundamental
  // supernodes join only when the patterns match exactly; small ones are also
  // joined when that stores few explicit zeros ("relaxed" supernodes, as in
  // CHOLMOD), because many tiny dense blocks cost more than a few zeros.
  super_first_.assign(1, 0);
  super_of_column_.assign(n, 0);
  long long true_entries = count[0];
  for (int j = 1; j < n; ++j) {
    bool merge = false;
    if (parent[j - 1] == j) {
      const long long w = j - super_first_.back() + 1;        // width after merging
      const long long m = w - 1 + count[j];                     // rows after merging
      const long long dense = w * m - w * (w - 1) / 2;
      const long long zeros = dense - (true_entries + count[j]);
      merge = count[j - 1] == count[j] + 1 || w <= 4 || (w <= 64 && zeros <= dense / 10);
    }
    if (merge) {
      true_entries += count[j];
    } else {
      super_first_.push_back(j);
      true_entries = count[j];
    }
    super_of_column_[j] = static_cast<int>(super_first_.size()) - 1;
  }
  const int num_super = static_cast<int>(super_first_.size());
  super_first_.push_back(n);

  // A supernode's rows: its own columns, then the pattern of its last column
  // below them (which contains every other column's pattern there).
  row_begin_.assign(num_super + 1, 0);
  value_begin_.assign(num_super + 1, 0);
  for (int s = 0; s < num_super; ++s) {
    const long long w = super_first_[s + 1] - super_first_[s];
    const long long m = w - 1 + count[super_first_[s + 1] - 1];
    row_begin_[s + 1] = row_begin_[s] + m;
    value_begin_[s + 1] = value_begin_[s] + m * w;
  }
  rows_.resize(row_begin_[num_super]);
  std::vector<long long> fill(num_super);
  for (int s = 0; s < num_super; ++s) {
    for (int c = super_first_[s]; c < super_first_[s + 1]; ++c) rows_[row_begin_[s] + (c - super_first_[s])] = c;
    fill[s] = row_begin_[s] + (super_first_[s + 1] - super_first_[s]);
  }
  std::fill(mark.begin(), mark.end(), -1);
  for (int k = 0; k < n; ++k)
    for_each_in_row(k, [&](int j) {
      const int s = super_of_column_[j];
      if (j == super_first_[s + 1] - 1 && k >= super_first_[s + 1]) rows_[fill[s]++] = k;
    });
  for (int s = 0; s < num_super; ++s)
    if (fill[s] != row_begin_[s + 1]) return false;  // symbolic inconsistency; never expected
  values_.assign(value_begin_[num_super], 0.0);
  return true;
}

bool SupernodalCholesky::factorise(const SparseMatrixd& A) {
  const int n = n_;
  const int num_super = static_cast<int>(super_first_.size()) - 1;
  // values_ was zero-filled by analyse(), which compute() always runs first.

  // Scatter the lower triangle of P A P^T into the blocks.  relative[r] is the
  // position of row r within the supernode currently being assembled.
  std::vector<int> relative(n, -1);
  std::vector<int> old_of_new(n);
  for (int i = 0; i < n; ++i) old_of_new[new_of_old_[i]] = i;

  // Supernodes waiting to update J form a linked list (head[J], next[K]);
  // cursor[K] is the first row of K not yet used for an update.
  std::vector<int> head(num_super, -1), next(num_super, -1);
  std::vector<long long> cursor(num_super, 0);
  Eigen::MatrixXd update;
  std::vector<double> diagonal_of_A;

  for (int J = 0; J < num_super; ++J) {
    const int first = super_first_[J], end = super_first_[J + 1], w = end - first;
    const long long m = row_begin_[J + 1] - row_begin_[J];
    const int* rowsJ = rows_.data() + row_begin_[J];
    BlockMap LJ(values_.data() + value_begin_[J], m, w);
    for (long long r = 0; r < m; ++r) relative[rowsJ[r]] = static_cast<int>(r);
    diagonal_of_A.assign(w, 0.0);

    for (int c = first; c < end; ++c)
      for (SparseMatrixd::InnerIterator it(A, old_of_new[c]); it; ++it) {
        const int r = new_of_old_[it.row()];
        if (r >= c) LJ(relative[r], c - first) = it.value();
        if (r == c) diagonal_of_A[c - first] = it.value();
      }

    // Left-looking updates from every earlier supernode whose rows reach J.
    for (int K = head[J]; K != -1;) {
      const int nextK = next[K];
      const int wK = super_first_[K + 1] - super_first_[K];
      const long long mK = row_begin_[K + 1] - row_begin_[K];
      const int* rowsK = rows_.data() + row_begin_[K];
      ConstBlockMap LK(values_.data() + value_begin_[K], mK, wK);
      const long long p = cursor[K];
      long long q = p;
      while (q < mK && rowsK[q] < end) ++q;  // rows p..q-1 fall in J's columns
      const long long below = mK - p, inside = q - p;
      update.noalias() = LK.block(p, 0, below, wK) * LK.block(p, 0, inside, wK).transpose();
      for (long long c = 0; c < inside; ++c) {
        const int col = rowsK[p + c] - first;
        for (long long r = c; r < below; ++r) LJ(relative[rowsK[p + r]], col) -= update(r, c);
      }
      cursor[K] = q;
      if (q < mK) {  // K still has rows below J: it will update a later supernode
        const int target = super_of_column_[rowsK[q]];
        next[K] = head[target];
        head[target] = K;
      }
      K = nextK;
    }

    // Dense factorisation of the diagonal block and the block below it.
    Eigen::Ref<Eigen::MatrixXd> diagonal = LJ.topRows(w);
    Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(diagonal);
    if (llt.info() != Eigen::Success) return false;
    // A singular matrix can leave a tiny positive pivot made of rounding
    // error instead of a zero one; a pivot that lost all but ~1e-12 of its
    // column's diagonal is treated as singular rather than divided by.
    for (int c = 0; c < w; ++c)
      if (!(LJ(c, c) * LJ(c, c) > 1e-12 * diagonal_of_A[c])) return false;
    if (m > w) {
      auto belowJ = LJ.bottomRows(m - w);
      diagonal.triangularView<Eigen::Lower>().transpose().solveInPlace<Eigen::OnTheRight>(belowJ);
      cursor[J] = w;
      const int target = super_of_column_[rowsJ[w]];
      next[J] = head[target];
      head[target] = J;
    }
  }
  return true;
}

namespace {

// Rows below a supernode's diagonal block, K of its columns at a time: each
// row of y is loaded and stored once per K columns while the factor is still
// read column by column.  That random access into y, not the arithmetic, is
// what the substitution waits on.
template <int K>
void forward_below(const double* block, long long m, int c, int w, const int* rows, const double* x,
                   double* y) {
  double p[K][3];
  for (int k = 0; k < K; ++k)
    for (int d = 0; d < 3; ++d) p[k][d] = x[3 * (c + k) + d];
  for (long long r = w; r < m; ++r) {
    double* yi = y + 3 * static_cast<size_t>(rows[r]);
    for (int d = 0; d < 3; ++d) {
      double sum = 0.0;
      for (int k = 0; k < K; ++k) sum += block[(c + k) * m + r] * p[k][d];
      yi[d] -= sum;
    }
  }
}

template <int K>
void backward_below(const double* block, long long m, int c, int w, const int* rows, double* x,
                    const double* y) {
  double p[K][3] = {};
  for (long long r = w; r < m; ++r) {
    const double* yi = y + 3 * static_cast<size_t>(rows[r]);
    for (int k = 0; k < K; ++k)
      for (int d = 0; d < 3; ++d) p[k][d] += block[(c + k) * m + r] * yi[d];
  }
  for (int k = 0; k < K; ++k)
    for (int d = 0; d < 3; ++d) x[3 * (c + k) + d] -= p[k][d];
}

}  // namespace

// Forward (L y = b) and backward (L^T x = y) substitution for one supernode,
// on three interleaved right-hand sides y ((N,3) row-major, permuted order),
// so every factor entry serves x, y and z.  The supernode's own rows are
// contiguous in y and solved in place.  Plain loops measured faster than
// Eigen's dense kernels on three columns.
void SupernodalCholesky::forward(int s, double* y) const {
  const int first = super_first_[s], w = super_first_[s + 1] - first;
  const long long m = row_begin_[s + 1] - row_begin_[s];
  const int* rows = rows_.data() + row_begin_[s];
  const double* block = values_.data() + value_begin_[s];
  double* x = y + 3 * static_cast<size_t>(first);
  for (int c = 0; c < w; ++c) {  // diagonal block
    const double* col = block + c * m;
    const double x0 = x[3 * c] /= col[c], x1 = x[3 * c + 1] /= col[c], x2 = x[3 * c + 2] /= col[c];
    for (int r = c + 1; r < w; ++r) {
      x[3 * r] -= col[r] * x0;
      x[3 * r + 1] -= col[r] * x1;
      x[3 * r + 2] -= col[r] * x2;
    }
  }
  int c = 0;
  for (; c + 4 <= w; c += 4) forward_below<4>(block, m, c, w, rows, x, y);
  for (; c + 2 <= w; c += 2) forward_below<2>(block, m, c, w, rows, x, y);
  for (; c < w; ++c) forward_below<1>(block, m, c, w, rows, x, y);
}

void SupernodalCholesky::backward(int s, double* y) const {
  const int first = super_first_[s], w = super_first_[s + 1] - first;
  const long long m = row_begin_[s + 1] - row_begin_[s];
  const int* rows = rows_.data() + row_begin_[s];
  const double* block = values_.data() + value_begin_[s];
  double* x = y + 3 * static_cast<size_t>(first);
  int c = 0;
  for (; c + 4 <= w; c += 4) backward_below<4>(block, m, c, w, rows, x, y);
  for (; c + 2 <= w; c += 2) backward_below<2>(block, m, c, w, rows, x, y);
  for (; c < w; ++c) backward_below<1>(block, m, c, w, rows, x, y);
  for (int c = w - 1; c >= 0; --c) {  // diagonal block
    const double* col = block + c * m;
    double s0 = x[3 * c], s1 = x[3 * c + 1], s2 = x[3 * c + 2];
    for (int r = c + 1; r < w; ++r) {
      s0 -= col[r] * x[3 * r];
      s1 -= col[r] * x[3 * r + 1];
      s2 -= col[r] * x[3 * r + 2];
    }
    x[3 * c] = s0 / col[c];
    x[3 * c + 1] = s1 / col[c];
    x[3 * c + 2] = s2 / col[c];
  }
}

// Serial on purpose: a two-thread version (independent subtrees of the
// elimination tree on two threads) was measured no faster on the shared
// two-core machine, where the second core is rarely free.
void SupernodalCholesky::solve3(const RowMatrixX3d& B, RowMatrixX3d& X) const {
  const int n = n_;
  const int num_super = static_cast<int>(super_first_.size()) - 1;
  std::vector<double> y(3 * static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) y[3 * static_cast<size_t>(new_of_old_[i]) + k] = B(i, k);
  for (int s = 0; s < num_super; ++s) forward(s, y.data());
  for (int s = num_super - 1; s >= 0; --s) backward(s, y.data());
  X.resize(n, 3);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) X(i, k) = y[3 * static_cast<size_t>(new_of_old_[i]) + k];
}

}  // namespace pyfacerig
