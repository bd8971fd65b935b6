#include "laplacian_deformation.h"

#include <cmath>

#include "cotmatrix.h"
#include "parallel_for.h"
#include "uniform_laplacian.h"
#include "validate_mesh.h"
#include "vertex_rotations.h"

namespace pyfacerig {

bool laplacian_deformation_precompute(const RowMatrixX3d& V, const RowMatrixX3i& F,
                                      const Eigen::VectorXi& anchor_ids, double weight,
                                      LaplacianKind kind, LaplacianDeformationData& data,
                                      std::string* error, const LaplacianDeformationData* like) {
  const Eigen::Index n = V.rows();
  if (!validate_mesh(V, F, error) || !validate_index_set(anchor_ids, n, "anchor_ids", error)) return false;
  if (anchor_ids.size() == 0 || !(weight > 0.0) || !std::isfinite(weight)) {
    if (error) *error = "need at least one anchor and a finite weight > 0";
    return false;
  }
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
  // Scale rows in place (a diagonal-times-sparse product in Eigen is much slower).
  SparseMatrixd L = W;
  for (Eigen::Index k = 0; k < L.outerSize(); ++k)
    for (SparseMatrixd::InnerIterator it(L, k); it; ++it) it.valueRef() /= -diag(it.row());
  data.Lt = L.transpose();

  data.rest = V;
  data.rest_delta = L * V;
  data.rest_rhs = data.Lt * data.rest_delta;
  data.anchor_ids = anchor_ids;
  data.weight = weight;

  // Normal equations of Eq. 10: (L^T L + weight S^T S) V = L^T L' + weight S^T P.
  SparseMatrixd A = data.Lt * L;
  for (Eigen::Index k = 0; k < anchor_ids.size(); ++k) A.coeffRef(anchor_ids(k), anchor_ids(k)) += weight;
  A.makeCompressed();
  if (!data.solver.compute_like(like ? &like->solver : nullptr, A)) {
    if (error) *error = "Cholesky factorisation of the Laplacian system failed (singular system)";
    return false;
  }

  // One-rings from the sparsity of W, for the rotation fit.
  data.ring_offsets.assign(1, 0);
  data.ring_vertices.clear();
  data.ring_vertices.reserve(W.nonZeros());
  for (Eigen::Index i = 0; i < n; ++i) {  // W is symmetric: column i lists i's neighbours
    for (SparseMatrixd::InnerIterator it(W, i); it; ++it)
      if (it.row() != i) data.ring_vertices.push_back(static_cast<int>(it.row()));
    data.ring_offsets.push_back(static_cast<int>(data.ring_vertices.size()));
  }
  data.num_threads = default_thread_count();
  return true;
}

bool laplacian_deformation_solve(const LaplacianDeformationData& data,
                                 const RowMatrixX3d& anchor_positions, int rotation_iterations,
                                 RowMatrixX3d& U, std::string* error) {
  if (anchor_positions.rows() != data.anchor_ids.size() || !anchor_positions.allFinite()) {
    if (error) *error = "anchor_positions must be finite with one row per anchor";
    return false;
  }
  // Right-hand side L^T L' + weight * S^T P (Eq. 10 normal equations).
  auto add_anchor_terms = [&](RowMatrixX3d& rhs) {
    for (Eigen::Index k = 0; k < data.anchor_ids.size(); ++k)
      rhs.row(data.anchor_ids(k)) += data.weight * anchor_positions.row(k);
  };
  RowMatrixX3d rhs = data.rest_rhs;
  add_anchor_terms(rhs);
  data.solver.solve3(rhs, U);
  if (!U.allFinite()) {
    if (error) *error = "Laplacian solve produced non-finite values";
    return false;
  }

  // Rotation-aware refinement: the target Laplacian coordinate of vertex i is
  // its rest coordinate turned by the rotation of its one-ring, so details turn
  // with the surface instead of shearing.
  std::vector<Eigen::Matrix3d> rotations;
  RowMatrixX3d rotated_delta(data.rest.rows(), 3);
  for (int it = 0; it < rotation_iterations; ++it) {
    vertex_rotations(data.rest, U, data.ring_offsets, data.ring_vertices, data.num_threads, rotations);
    for (Eigen::Index i = 0; i < data.rest.rows(); ++i)
      rotated_delta.row(i) = (rotations[i] * data.rest_delta.row(i).transpose()).transpose();
    rhs = data.Lt * rotated_delta;
    add_anchor_terms(rhs);
    data.solver.solve3(rhs, U);
    if (!U.allFinite()) {
      if (error) *error = "rotation-aware Laplacian solve produced non-finite values";
      return false;
    }
  }
  return true;
}

}  // namespace pyfacerig
