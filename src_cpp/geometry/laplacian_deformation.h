// Laplacian deformation (Pan et al., Eq. 9-10), split libigl-style into a
// precompute step that factors the system once and a solve step that only
// back-substitutes for new anchor positions.
//
//   min_V  sum_i |L(v_i) - R_i L_i'|^2 + weight * sum_{k in anchors} |v_k - p_k|^2
//
// L is a row-normalised Laplacian, L(v_i) = v_i - sum_j w_ij v_j / sum_j w_ij,
// with w_ij = 1 (Eq. 9, "uniform") or cotangent weights.  L_i' = L(v_i) on the
// rest mesh.  The plain solve uses R_i = I (Eq. 10 as written).  The
// rotation-aware solve alternates between fitting a rotation R_i to each
// vertex's one-ring and re-solving; R_i only enters the right-hand side, so every
// iteration reuses the same factorisation of (L^T L + weight * S^T S).
#pragma once
#include <string>
#include <vector>

#include "supernodal_cholesky.h"
#include "types.h"

namespace pyfacerig {

enum class LaplacianKind { Uniform, Cotangent };

struct LaplacianDeformationData {
  SparseMatrixd Lt;            // (N,N) transpose of the row-normalised Laplacian L, for the rhs
  RowMatrixX3d rest;           // (N,3) rest vertices
  RowMatrixX3d rest_delta;     // (N,3) rest Laplacian coordinates L_i'
  RowMatrixX3d rest_rhs;       // (N,3) L^T L_i', the anchor-free part of the rhs
  Eigen::VectorXi anchor_ids;  // (K,)
  double weight = 0.0;
  // One-ring of every vertex (CSR), used to fit per-vertex rotations.
  std::vector<int> ring_offsets, ring_vertices;
  SupernodalCholesky solver;   // factor of L^T L + weight S^T S
  int num_threads = 1;         // for the per-vertex rotation fits
};

// Builds and factors the normal equations.  Returns false with a message in
// *error if the factorisation fails (the caller validates inputs first; this
// still catches numerically singular systems instead of returning NaN).
// With `like` (an earlier precompute on the same faces and anchors, e.g. the same template
// fitted to another face), its ordering and symbolic factorisation are reused when the new
// system has the same sparsity pattern (checked); the result is the same either way.
bool laplacian_deformation_precompute(const RowMatrixX3d& V, const RowMatrixX3i& F,
                                      const Eigen::VectorXi& anchor_ids, double weight,
                                      LaplacianKind kind, LaplacianDeformationData& data,
                                      std::string* error, const LaplacianDeformationData* like = nullptr);

// Solves for all three coordinates at once.  rotation_iterations = 0 is the
// plain Eq. 10 solve; n > 0 adds n local/global rotation refinements.
bool laplacian_deformation_solve(const LaplacianDeformationData& data,
                                 const RowMatrixX3d& anchor_positions, int rotation_iterations,
                                 RowMatrixX3d& U, std::string* error);

}  // namespace pyfacerig
