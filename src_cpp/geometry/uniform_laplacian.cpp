#include "uniform_laplacian.h"

#include <vector>

namespace pyfacerig {

SparseMatrixd uniform_laplacian(Eigen::Index num_vertices, const RowMatrixX3i& F) {
  // Interior edges appear in two triangles; build the 0/1 adjacency first so
  // each edge counts once regardless of how many faces share it.
  std::vector<Eigen::Triplet<double>> triplets;
  triplets.reserve(static_cast<size_t>(F.rows()) * 6);
  for (Eigen::Index f = 0; f < F.rows(); ++f) {
    for (int k = 0; k < 3; ++k) {
      const int i = F(f, k), j = F(f, (k + 1) % 3);
      triplets.emplace_back(i, j, 1.0);
      triplets.emplace_back(j, i, 1.0);
    }
  }
  SparseMatrixd A(num_vertices, num_vertices);
  A.setFromTriplets(triplets.begin(), triplets.end());
  for (Eigen::Index k = 0; k < A.outerSize(); ++k)
    for (SparseMatrixd::InnerIterator it(A, k); it; ++it) it.valueRef() = 1.0;

  Eigen::VectorXd valence = Eigen::VectorXd::Zero(num_vertices);
  for (Eigen::Index k = 0; k < A.outerSize(); ++k)
    for (SparseMatrixd::InnerIterator it(A, k); it; ++it) valence(it.row()) += 1.0;
  SparseMatrixd D(num_vertices, num_vertices);
  D.reserve(Eigen::VectorXi::Constant(num_vertices, 1));
  for (Eigen::Index i = 0; i < num_vertices; ++i) D.insert(i, i) = valence(i);
  return A - D;
}

}  // namespace pyfacerig
