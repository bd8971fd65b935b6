#include "supernodal_cholesky.h"

#include <Eigen/Cholesky>
#include <Eigen/OrderingMethods>

#include <thread>

namespace pyfacerig {

namespace {
using BlockMap = Eigen::Map<Eigen::MatrixXd>;
using ConstBlockMap = Eigen::Map<const Eigen::MatrixXd>;
}  // namespace

long long SupernodalCholesky::stored_entries() const {
  long long total = 0;
  for (size_t s = 0; s + 1 < super_first_.size(); ++s) {
    const long long w = super_first_[s + 1] - super_first_[s];
    const long long m = row_begin_[s + 1] - row_begin_[s];
    total += m * w - w * (w - 1) / 2;
  }
  return total;
}

bool SupernodalCholesky::compute(const SparseMatrixd& A) {
  if (A.rows() != A.cols()) return false;
  return analyse(A) && factorise(A);
}

bool SupernodalCholesky::analyse(const SparseMatrixd& A) {
  n_ = static_cast<int>(A.rows());
  const int n = n_;
  if (n == 0) return false;  // callers never factor an empty system

  // Fill-reducing ordering from Eigen's approximate minimum degree.
  Eigen::PermutationMatrix<Eigen::Dynamic, Eigen::Dynamic, int> order;
  Eigen::AMDOrdering<int>()(A, order);
  new_of_old_.resize(n);
  for (int k = 0; k < n; ++k) new_of_old_[order.indices()[k]] = k;

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
  std::fill(values_.begin(), values_.end(), 0.0);

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

// Forward and backward substitution on C interleaved right-hand sides held in
// y ((N,C) row-major, permuted order): each entry of L read from memory serves
// all C columns.  Plain column loops measured faster here than per-supernode
// dense kernels, whose set-up cost does not pay off on so few columns.
template <int C>
void SupernodalCholesky::substitute(double* y) const {
  const int num_super = static_cast<int>(super_first_.size()) - 1;
  for (int s = 0; s < num_super; ++s) {  // L y = b
    const int first = super_first_[s], w = super_first_[s + 1] - first;
    const long long m = row_begin_[s + 1] - row_begin_[s];
    const int* rows = rows_.data() + row_begin_[s];
    const double* block = values_.data() + value_begin_[s];
    for (int c = 0; c < w; ++c) {
      const double* col = block + c * m;
      double* yj = y + C * static_cast<size_t>(first + c);
      for (int k = 0; k < C; ++k) yj[k] /= col[c];
      for (long long r = c + 1; r < m; ++r) {
        double* yi = y + C * static_cast<size_t>(rows[r]);
        for (int k = 0; k < C; ++k) yi[k] -= col[r] * yj[k];
      }
    }
  }
  for (int s = num_super - 1; s >= 0; --s) {  // L^T x = y
    const int first = super_first_[s], w = super_first_[s + 1] - first;
    const long long m = row_begin_[s + 1] - row_begin_[s];
    const int* rows = rows_.data() + row_begin_[s];
    const double* block = values_.data() + value_begin_[s];
    for (int c = w - 1; c >= 0; --c) {
      const double* col = block + c * m;
      double* yj = y + C * static_cast<size_t>(first + c);
      double sum[C];
      for (int k = 0; k < C; ++k) sum[k] = yj[k];
      for (long long r = c + 1; r < m; ++r) {
        const double* yi = y + C * static_cast<size_t>(rows[r]);
        for (int k = 0; k < C; ++k) sum[k] -= col[r] * yi[k];
      }
      for (int k = 0; k < C; ++k) yj[k] = sum[k] / col[c];
    }
  }
}

void SupernodalCholesky::solve3(const RowMatrixX3d& B, RowMatrixX3d& X, int num_threads) const {
  const int n = n_;
  if (num_threads < 2) {
    // Padded to 4 so each row is two aligned SSE2 pairs the compiler vectorises.
    std::vector<double> y(4 * static_cast<size_t>(n), 0.0);
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < 3; ++k) y[4 * static_cast<size_t>(new_of_old_[i]) + k] = B(i, k);
    substitute<4>(y.data());
    X.resize(n, 3);
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < 3; ++k) X(i, k) = y[4 * static_cast<size_t>(new_of_old_[i]) + k];
    return;
  }
  // Two threads: x and y on one, z on the other.  The substitution is bound by
  // latency rather than bandwidth, so the split shortens the solve by ~1/3.
  std::vector<double> xy(2 * static_cast<size_t>(n)), z(n);
  for (int i = 0; i < n; ++i) {
    const size_t p = new_of_old_[i];
    xy[2 * p] = B(i, 0);
    xy[2 * p + 1] = B(i, 1);
    z[p] = B(i, 2);
  }
  std::thread helper([&] { substitute<1>(z.data()); });
  substitute<2>(xy.data());
  helper.join();
  X.resize(n, 3);
  for (int i = 0; i < n; ++i) {
    const size_t p = new_of_old_[i];
    X(i, 0) = xy[2 * p];
    X(i, 1) = xy[2 * p + 1];
    X(i, 2) = z[p];
  }
}

}  // namespace pyfacerig
