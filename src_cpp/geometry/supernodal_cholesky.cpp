#include "supernodal_cholesky.h"

#include <algorithm>

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
  if (A.isCompressed()) {
    pattern_outer_.assign(A.outerIndexPtr(), A.outerIndexPtr() + A.outerSize() + 1);
    pattern_inner_.assign(A.innerIndexPtr(), A.innerIndexPtr() + A.nonZeros());
  } else {
    pattern_outer_.clear();  // never matches: an uncompressed matrix is always analysed afresh
    pattern_inner_.clear();
  }
  return analyse(A) && factorise(A);
}

bool SupernodalCholesky::same_pattern(const SparseMatrixd& A) const {
  return A.isCompressed() && A.rows() == n_ && A.cols() == n_ && !pattern_outer_.empty() &&
         std::equal(pattern_outer_.begin(), pattern_outer_.end(), A.outerIndexPtr()) &&
         static_cast<Eigen::Index>(pattern_inner_.size()) == A.nonZeros() &&
         std::equal(pattern_inner_.begin(), pattern_inner_.end(), A.innerIndexPtr());
}

bool SupernodalCholesky::compute_like(const SupernodalCholesky* analysed, const SparseMatrixd& A,
                                      const std::vector<int>* elimination_order) {
  if (analysed == nullptr || !analysed->same_pattern(A)) return compute(A, elimination_order);
  *this = analysed->symbolic_copy();
  values_.reset(new double[value_begin_.back()]);
  return factorise(A);
}

SupernodalCholesky SupernodalCholesky::symbolic_copy() const {
  SupernodalCholesky copy;
  copy.n_ = n_;
  copy.pattern_outer_ = pattern_outer_;
  copy.pattern_inner_ = pattern_inner_;
  copy.new_of_old_ = new_of_old_;
  copy.super_first_ = super_first_;
  copy.super_of_column_ = super_of_column_;
  copy.row_begin_ = row_begin_;
  copy.rows_ = rows_;
  copy.value_begin_ = value_begin_;
  return copy;
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
  // Uninitialised: factorise() zeroes each block just before filling it, while
  // it is in cache, instead of a separate pass over the whole factor.
  values_.reset(new double[value_begin_[num_super]]);
  return true;
}

bool SupernodalCholesky::factorise(const SparseMatrixd& A) {
  const int n = n_;
  const int num_super = static_cast<int>(super_first_.size()) - 1;

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
    BlockMap LJ(values_.get() + value_begin_[J], m, w);
    LJ.setZero();
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
      ConstBlockMap LK(values_.get() + value_begin_[K], mK, wK);
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

// Substitution, one supernode at a time, on three right-hand sides.  y is the
// (N,3) row-major right-hand side in elimination order.  Each supernode first
// copies the y rows it touches (its own rows, then the rows below its diagonal
// block) into a small workspace holding x, y and z as three separate columns,
// so the work on the dense block runs down contiguous columns of the factor and
// of the workspace: plain loops the compiler vectorises over rows.  Only the
// copy in and out touches y's scattered rows, once per row per supernode.
// Every output element is computed by the same sequence of operations whatever
// the vector width, so results do not depend on the instruction set.

// g_d[r] -= sum_k col_k[r] x[k][d] for rows [begin, end) and d = 0..2, where
// col_k = col0 + k * stride.  Each factor entry is loaded once for all three
// coordinates; restrict tells the compiler the four arrays do not overlap.
static void subtract_four_columns(const double* __restrict col0, int begin, int end, int stride,
                                  const double (&x)[4][3], double* __restrict g0, double* __restrict g1,
                                  double* __restrict g2) {
  const double *col1 = col0 + stride, *col2 = col1 + stride, *col3 = col2 + stride;
  for (int r = begin; r < end; ++r) {
    const double a0 = col0[r], a1 = col1[r], a2 = col2[r], a3 = col3[r];
    g0[r] -= a0 * x[0][0] + a1 * x[1][0] + a2 * x[2][0] + a3 * x[3][0];
    g1[r] -= a0 * x[0][1] + a1 * x[1][1] + a2 * x[2][1] + a3 * x[3][1];
    g2[r] -= a0 * x[0][2] + a1 * x[1][2] + a2 * x[2][2] + a3 * x[3][2];
  }
}

void SupernodalCholesky::forward(int s, double* y, double* work) const {
  const int first = super_first_[s], w = super_first_[s + 1] - first;
  const int m = static_cast<int>(row_begin_[s + 1] - row_begin_[s]);
  const int* rows = rows_.data() + row_begin_[s];
  const double* block = values_.get() + value_begin_[s];
  double* g[3] = {work, work + m, work + 2 * static_cast<size_t>(m)};
  for (int r = 0; r < w; ++r)
    for (int d = 0; d < 3; ++d) g[d][r] = y[3 * static_cast<size_t>(first + r) + d];
  for (int r = w; r < m; ++r)
    for (int d = 0; d < 3; ++d) g[d][r] = 0.0;  // what the block subtracts from these rows
  // Four columns at a time: solve their own four entries, then subtract all
  // four from every row below in one pass, so each workspace entry is loaded
  // and stored once per four columns instead of once per column.
  int c = 0;
  for (; c + 4 <= w; c += 4) {
    const double* col0 = block + static_cast<size_t>(c) * m;
    const double *col1 = col0 + m, *col2 = col1 + m, *col3 = col2 + m;
    double x[4][3];
    for (int d = 0; d < 3; ++d) {
      double* gd = g[d];
      x[0][d] = gd[c] /= col0[c];
      x[1][d] = gd[c + 1] = (gd[c + 1] - col0[c + 1] * x[0][d]) / col1[c + 1];
      x[2][d] = gd[c + 2] = (gd[c + 2] - col0[c + 2] * x[0][d] - col1[c + 2] * x[1][d]) / col2[c + 2];
      x[3][d] = gd[c + 3] =
          (gd[c + 3] - col0[c + 3] * x[0][d] - col1[c + 3] * x[1][d] - col2[c + 3] * x[2][d]) / col3[c + 3];
    }
    subtract_four_columns(col0, c + 4, m, m, x, g[0], g[1], g[2]);
  }
  for (; c < w; ++c) {  // the last w % 4 columns, one at a time
    const double* col = block + static_cast<size_t>(c) * m;
    for (int d = 0; d < 3; ++d) {
      double* gd = g[d];
      const double x = gd[c] /= col[c];
      for (int r = c + 1; r < m; ++r) gd[r] -= col[r] * x;
    }
  }
  for (int r = 0; r < w; ++r)
    for (int d = 0; d < 3; ++d) y[3 * static_cast<size_t>(first + r) + d] = g[d][r];
  for (int r = w; r < m; ++r)
    for (int d = 0; d < 3; ++d) y[3 * static_cast<size_t>(rows[r]) + d] += g[d][r];
}

// a[d] = colA . g_d and b[d] = colB . g_d over rows [begin, end), d = 0..2.
// Two lanes per sum (an Eigen Array2d, one SSE register or the scalar pair
// elsewhere), added in a fixed order: six independent chains of additions.
static void dot_below(const double* colA, const double* colB, int begin, int end, const double* g0,
                      const double* g1, const double* g2, double* a, double* b) {
  using Pair = Eigen::Array2d;
  Pair a0 = Pair::Zero(), a1 = Pair::Zero(), a2 = Pair::Zero();
  Pair b0 = Pair::Zero(), b1 = Pair::Zero(), b2 = Pair::Zero();
  int r = begin;
  for (; r + 2 <= end; r += 2) {
    const Pair ca = Pair::Map(colA + r), cb = Pair::Map(colB + r);
    const Pair x0 = Pair::Map(g0 + r), x1 = Pair::Map(g1 + r), x2 = Pair::Map(g2 + r);
    a0 += ca * x0;
    a1 += ca * x1;
    a2 += ca * x2;
    b0 += cb * x0;
    b1 += cb * x1;
    b2 += cb * x2;
  }
  a[0] = a0(0) + a0(1);
  a[1] = a1(0) + a1(1);
  a[2] = a2(0) + a2(1);
  b[0] = b0(0) + b0(1);
  b[1] = b1(0) + b1(1);
  b[2] = b2(0) + b2(1);
  if (r < end) {
    a[0] += colA[r] * g0[r];
    a[1] += colA[r] * g1[r];
    a[2] += colA[r] * g2[r];
    b[0] += colB[r] * g0[r];
    b[1] += colB[r] * g1[r];
    b[2] += colB[r] * g2[r];
  }
}

void SupernodalCholesky::backward(int s, double* y, double* work) const {
  const int first = super_first_[s], w = super_first_[s + 1] - first;
  const int m = static_cast<int>(row_begin_[s + 1] - row_begin_[s]);
  const int* rows = rows_.data() + row_begin_[s];
  const double* block = values_.get() + value_begin_[s];
  double* g[3] = {work, work + m, work + 2 * static_cast<size_t>(m)};
  for (int r = 0; r < m; ++r)
    for (int d = 0; d < 3; ++d) g[d][r] = y[3 * static_cast<size_t>(rows[r]) + d];
  // The rows below the diagonal block are already solved and shared by all
  // columns: their dot products with the columns come first, two columns and
  // all three coordinates per sweep, so each workspace load serves two columns
  // and each factor load three coordinates.
  double* below = work + 3 * static_cast<size_t>(m);  // (w,3): the dot products, row-major
  int c = 0;
  for (; c + 2 <= w; c += 2) {
    const double* colA = block + static_cast<size_t>(c) * m;
    dot_below(colA, colA + m, w, m, g[0], g[1], g[2], below + 3 * c, below + 3 * c + 3);
  }
  if (c < w) {
    const double* col = block + static_cast<size_t>(c) * m;
    double unused[3];
    dot_below(col, col, w, m, g[0], g[1], g[2], below + 3 * c, unused);
  }
  // Then the diagonal block, last column first: its entry minus the dot
  // product of the column inside the block with the entries solved so far.
  for (c = w - 1; c >= 0; --c) {
    const double* col = block + static_cast<size_t>(c) * m;
    for (int d = 0; d < 3; ++d) {
      const double* gd = g[d];
      double sum[8] = {};  // eight partial sums, added in a fixed order: the loop vectorises
      int r = c + 1;
      for (; r + 8 <= w; r += 8)
        for (int k = 0; k < 8; ++k) sum[k] += col[r + k] * gd[r + k];
      double dot = below[3 * c + d];
      for (; r < w; ++r) dot += col[r] * gd[r];
      dot += ((sum[0] + sum[1]) + (sum[2] + sum[3])) + ((sum[4] + sum[5]) + (sum[6] + sum[7]));
      g[d][c] = (g[d][c] - dot) / col[c];
    }
  }
  for (int r = 0; r < w; ++r)
    for (int d = 0; d < 3; ++d) y[3 * static_cast<size_t>(first + r) + d] = g[d][r];
}

// Serial on purpose: a two-thread version (independent subtrees of the
// elimination tree on two threads) was measured no faster on the shared
// two-core machine, where the second core is rarely free.
void SupernodalCholesky::solve3(const RowMatrixX3d& B, RowMatrixX3d& X) const {
  const int n = n_;
  const int num_super = static_cast<int>(super_first_.size()) - 1;
  long long max_rows = 0;
  for (int s = 0; s < num_super; ++s) max_rows = std::max(max_rows, row_begin_[s + 1] - row_begin_[s]);
  std::vector<double> work(6 * static_cast<size_t>(max_rows));  // backward() uses the second half
  std::vector<double> y(3 * static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) y[3 * static_cast<size_t>(new_of_old_[i]) + k] = B(i, k);
  for (int s = 0; s < num_super; ++s) forward(s, y.data(), work.data());
  for (int s = num_super - 1; s >= 0; --s) backward(s, y.data(), work.data());
  X.resize(n, 3);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) X(i, k) = y[3 * static_cast<size_t>(new_of_old_[i]) + k];
}

}  // namespace pyfacerig
