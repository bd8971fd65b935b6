// Graph Laplacian of the mesh's edges with unit weights (libigl convention):
//   U(i,j) = 1 for each edge (i,j), U(i,i) = -valence(i).
// Row-normalised this is Eq. 9 of Pan et al.
#pragma once
#include "types.h"

namespace pyfacerig {

SparseMatrixd uniform_laplacian(Eigen::Index num_vertices, const RowMatrixX3i& F);

}  // namespace pyfacerig
