#include "cotmatrix.h"

#include <vector>

namespace pyfacerig {

SparseMatrixd cotmatrix(const RowMatrixX3d& V, const RowMatrixX3i& F) {
  std::vector<Eigen::Triplet<double>> triplets;
  triplets.reserve(static_cast<size_t>(F.rows()) * 12);
  for (Eigen::Index f = 0; f < F.rows(); ++f) {
    for (int k = 0; k < 3; ++k) {
      // Corner k is opposite edge (i, j).
      const int c = F(f, k), i = F(f, (k + 1) % 3), j = F(f, (k + 2) % 3);
      const Eigen::RowVector3d a = V.row(i) - V.row(c);
      const Eigen::RowVector3d b = V.row(j) - V.row(c);
      // cot = cos/sin = (a.b) / |a x b|; the caller rejects zero-area triangles.
      const double half_cot = 0.5 * a.dot(b) / a.cross(b).norm();
      triplets.emplace_back(i, j, half_cot);
      triplets.emplace_back(j, i, half_cot);
      triplets.emplace_back(i, i, -half_cot);
      triplets.emplace_back(j, j, -half_cot);
    }
  }
  SparseMatrixd C(V.rows(), V.rows());
  C.setFromTriplets(triplets.begin(), triplets.end());  // sums duplicates
  return C;
}

}  // namespace pyfacerig
