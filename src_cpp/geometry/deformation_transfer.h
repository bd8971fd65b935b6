// Deformation transfer (Sumner & Popovic 2004; Pan et al., Eq. 14-16): carry the
// per-triangle deformation of source_neutral -> source_shape over to a target
// neutral with the same topology.
//
// Eq. 16 compares Q_j (source) with Q'_j = V'_j V_j^-1 (target), where V_j is
// the Eq. 14 frame with the fourth, normal-offset vertex.  Leaving the target's
// fourth vertices free and minimising over them, the normal column separates
// from the edge columns (the frame's normal is orthogonal to the edges), the
// optimal fourth vertex matches exactly, and what is left is a vertex-only
// least-squares problem per triangle j of the target neutral:
//
//   |(E'_j - Q_j E_j) (E_j^T E_j)^(-1/2)|_F^2,   E_j = [t2-t1, t3-t1] (3x2)
//
// Its normal equations K d = r are a Laplacian-like system in the displacement
// d = target_shape - target_neutral.
//
// Translation: K has a null space (translation per component).  A rig needs
// the vertices that the source shape leaves exactly in place to stay exactly
// in place, so those vertices are fixed (d = 0, a hard constraint) and only the
// moving vertices are unknowns.  Each shape therefore has its own reduced
// system K_FF over its moving set F; shapes with the same moving set share one
// factorisation (multiple right-hand sides), and the distinct moving sets are
// factored and solved in parallel.  A moving component with no fixed
// neighbour (e.g. a whole part that moves) is pinned at one vertex and then
// translated so its mean displacement is the source's mean displacement scaled
// by the target/source size ratio, which keeps the result covariant under
// uniform scale and translation and exact when both neutrals are identical.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "types.h"

namespace pyfacerig {

struct MovingSet;  // deformation_transfer.cpp

// What the reduced systems of one mesh (faces) share across target faces: the moving sets
// seen so far with their unknowns, triangles and symbolic factorisation.  A template's
// shapes always have the same moving sets, so each later fit of the template only
// refactors them numerically.
struct MovingSetCache {
  RowMatrixX3i F;
  std::vector<int> elimination_order;
  std::mutex mutex;
  std::map<std::vector<char>, std::shared_ptr<const MovingSet>> sets;
};

struct DeformationTransferData {
  RowMatrixX3i F;
  RowMatrixX3d source_neutral;                          // (N,3)
  RowMatrixX3d target_neutral;                          // (N,3)
  std::vector<Eigen::Matrix<double, 3, 2>> source_to_target;  // P_j = Vs_j^-1 E_j W_j
  std::vector<Eigen::Matrix<double, 3, 2>> target_edges;      // C_j = E_j W_j
  SparseMatrixd K;                                      // (N,N) sum_j D_j W_j D_j^T
  // AMD order of K, computed once; each reduced system K_FF is eliminated in
  // the same order restricted to F, which saves an ordering per moving set.
  std::vector<int> elimination_order;
  double scale_ratio = 1.0;  // rms size of target / source, for pinned components
  int num_threads = 1;
  std::shared_ptr<MovingSetCache> cache;  // shared with `like` when it has the same faces
};

// With `like` (an earlier precompute on the same faces), its fill-reducing order and moving-set
// cache are shared instead of recomputed; results are identical either way.
bool deformation_transfer_precompute(const RowMatrixX3d& source_neutral,
                                     const RowMatrixX3d& target_neutral, const RowMatrixX3i& F,
                                     DeformationTransferData& data, std::string* error,
                                     const DeformationTransferData* like = nullptr);

// source_shapes: (M, 3N) row-major, shape m's vertex i at columns 3i..3i+2.
// target_shapes: (M, 3N) out, same layout.
bool deformation_transfer(const DeformationTransferData& data,
                          const Eigen::Ref<const RowMatrixXd>& source_shapes,
                          RowMatrixXd& target_shapes, std::string* error);

}  // namespace pyfacerig
