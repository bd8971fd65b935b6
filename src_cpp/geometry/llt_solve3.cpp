#include "llt_solve3.h"

#include <vector>

namespace pyfacerig {

void llt_solve3(const SparseLLT& llt, const RowMatrixX3d& B, RowMatrixX3d& X) {
  // Eigen factors P A P^T = L L^T; A^-1 b = P^T L^-T L^-1 P b.
  const SparseMatrixd& L = llt.matrixL().nestedExpression();  // CSC, diagonal first in each column
  const int* perm = llt.permutationP().indices().data();
  const Eigen::Index n = L.rows();
  const int* outer = L.outerIndexPtr();
  const int* inner = L.innerIndexPtr();
  const double* value = L.valuePtr();

  std::vector<double> y(static_cast<size_t>(n) * 3);
  for (Eigen::Index i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) y[3 * static_cast<size_t>(perm[i]) + c] = B(i, c);

  // Forward: L y = P b, column-oriented (each column's entries are contiguous).
  for (Eigen::Index j = 0; j < n; ++j) {
    double* yj = &y[3 * j];
    const double d = value[outer[j]];
    yj[0] /= d;
    yj[1] /= d;
    yj[2] /= d;
    for (int p = outer[j] + 1; p < outer[j + 1]; ++p) {
      double* yi = &y[3 * static_cast<size_t>(inner[p])];
      yi[0] -= value[p] * yj[0];
      yi[1] -= value[p] * yj[1];
      yi[2] -= value[p] * yj[2];
    }
  }
  // Backward: L^T z = y, a dot product of each column with the solved tail.
  for (Eigen::Index j = n - 1; j >= 0; --j) {
    double s0 = y[3 * j], s1 = y[3 * j + 1], s2 = y[3 * j + 2];
    for (int p = outer[j] + 1; p < outer[j + 1]; ++p) {
      const double* yi = &y[3 * static_cast<size_t>(inner[p])];
      s0 -= value[p] * yi[0];
      s1 -= value[p] * yi[1];
      s2 -= value[p] * yi[2];
    }
    const double d = value[outer[j]];
    y[3 * j] = s0 / d;
    y[3 * j + 1] = s1 / d;
    y[3 * j + 2] = s2 / d;
  }

  X.resize(n, 3);
  for (Eigen::Index i = 0; i < n; ++i)
    for (int c = 0; c < 3; ++c) X(i, c) = y[3 * static_cast<size_t>(perm[i]) + c];
}

}  // namespace pyfacerig
