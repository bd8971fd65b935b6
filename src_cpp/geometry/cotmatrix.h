// Symmetric cotangent weight matrix of a triangle mesh (libigl convention):
//   C(i,j) = (cot a_ij + cot b_ij) / 2 for each edge (i,j), the angles opposite it,
//   C(i,i) = -sum_j C(i,j).
// Dimensionless, so a deformation energy built on it is scale invariant.
#pragma once
#include "types.h"

namespace pyfacerig {

SparseMatrixd cotmatrix(const RowMatrixX3d& V, const RowMatrixX3i& F);

}  // namespace pyfacerig
