#include "laplacian_deformation.h"

#include "cotmatrix.h"
#include "parallel_for.h"
#include "uniform_laplacian.h"
#include "vertex_rotations.h"

namespace pyfacerig {

namespace {

// Solves A X = B for the three columns of B.  Columns are independent
// back-substitutions, so with two or more threads they run concurrently.
template <typename Solver>
Eigen::MatrixX3d solve_columns(const Solver& solver, const Eigen::MatrixX3d& B, int num_threads) {
  Eigen::MatrixX3d X(B.rows(), 3);
  if (num_threads <= 1) {
    X = solver.solve(B);
  } else {
    parallel_for(3, num_threads, [&](int c) { X.col(c) = solver.solve(B.col(c)); });
  }
  return X;
}

bool all_finite(const Eigen::MatrixX3d& X) { return X.allFinite(); }

}  // namespace

bool laplacian_deformation_precompute(const RowMatrixX3d& V, const RowMatrixX3i& F,
                                      const Eigen::VectorXi& anchor_ids, double weight,
                                      LaplacianKind kind, LaplacianDeformationData& data,
                                      std::string* error) {
  const Eigen::Index n = V.rows();
  // W has the edge weights off the diagonal and -sum on it (libigl convention).
  const SparseMatrixd W = kind == LaplacianKind::Cotangent ? cotmatrix(V, F) : uniform_laplacian(n, F);

  // Row-normalise: L = I - D^-1 W_offdiag, i.e. L = -D^-1 W with D = -diag(W).
  // Dividing by the weight sum makes L dimensionless for both kinds, so one
  // `weight` means the same thing for uniform and cotangent.  For cotangent
  // weights the row sum is positive for any non-degenerate triangle
  // (cot B + cot C = sin A / (sin B sin C) > 0).
  Eigen::VectorXd diag = W.diagonal();
  for (Eigen::Index i = 0; i < n; ++i) {
    if (!(diag(i) < 0.0)) {
      if (error) *error = "vertex " + std::to_string(i) + " belongs to no triangle";
      return false;
    }
  }
  data.L = (-diag.cwiseInverse()).asDiagonal() * W;
  data.L.makeCompressed();
  data.Lt = data.L.transpose();

  data.rest = V;
  data.rest_delta = data.L * V;
  data.rest_rhs = data.Lt * data.rest_delta;
  data.anchor_ids = anchor_ids;
  data.weight = weight;

  // Normal equations of Eq. 10: (L^T L + weight S^T S) V = L^T L' + weight S^T P.
  SparseMatrixd A = data.Lt * data.L;
  for (Eigen::Index k = 0; k < anchor_ids.size(); ++k) A.coeffRef(anchor_ids(k), anchor_ids(k)) += weight;
  A.makeCompressed();
  data.solver.compute(A);
  if (data.solver.info() != Eigen::Success) {
    if (error) *error = "Cholesky factorisation of the Laplacian system failed (singular system)";
    return false;
  }

  // One-rings from the sparsity of W, for the rotation fit.
  data.ring_offsets.assign(1, 0);
  data.ring_vertices.clear();
  data.ring_vertices.reserve(W.nonZeros());
  const SparseMatrixd Wr = W;  // symmetric, so columns are rows
  for (Eigen::Index i = 0; i < n; ++i) {
    for (SparseMatrixd::InnerIterator it(Wr, i); it; ++it)
      if (it.row() != i) data.ring_vertices.push_back(static_cast<int>(it.row()));
    data.ring_offsets.push_back(static_cast<int>(data.ring_vertices.size()));
  }
  data.num_threads = std::min(3, default_thread_count());
  return true;
}

bool laplacian_deformation_solve(const LaplacianDeformationData& data,
                                 const RowMatrixX3d& anchor_positions, int rotation_iterations,
                                 RowMatrixX3d& U, std::string* error) {
  // weight * S^T P: the anchor part of the right-hand side, same every iteration.
  Eigen::MatrixX3d anchor_rhs = Eigen::MatrixX3d::Zero(data.rest.rows(), 3);
  for (Eigen::Index k = 0; k < data.anchor_ids.size(); ++k)
    anchor_rhs.row(data.anchor_ids(k)) += data.weight * anchor_positions.row(k);

  Eigen::MatrixX3d X = solve_columns(data.solver, data.rest_rhs + anchor_rhs, data.num_threads);
  if (!all_finite(X)) {
    if (error) *error = "Laplacian solve produced non-finite values";
    return false;
  }
  U = X;

  // Rotation-aware refinement: the target Laplacian coordinate of vertex i is
  // its rest coordinate turned by the rotation of its one-ring, so details turn
  // with the surface instead of shearing.
  std::vector<Eigen::Matrix3d> rotations;
  RowMatrixX3d rotated_delta(data.rest.rows(), 3);
  for (int it = 0; it < rotation_iterations; ++it) {
    vertex_rotations(data.rest, U, data.ring_offsets, data.ring_vertices, data.num_threads, rotations);
    for (Eigen::Index i = 0; i < data.rest.rows(); ++i)
      rotated_delta.row(i) = (rotations[i] * data.rest_delta.row(i).transpose()).transpose();
    Eigen::MatrixX3d rhs = data.Lt * rotated_delta;
    rhs += anchor_rhs;
    X = solve_columns(data.solver, rhs, data.num_threads);
    if (!all_finite(X)) {
      if (error) *error = "rotation-aware Laplacian solve produced non-finite values";
      return false;
    }
    U = X;
  }
  return true;
}

}  // namespace pyfacerig
