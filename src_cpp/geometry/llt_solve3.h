// Back-substitution for three right-hand sides at once with a factor from
// Eigen's SimplicialLLT.  Eigen solves the columns of a dense right-hand side
// one after another, reading the factor three times; here the three
// coordinates of a vertex sit next to each other (row-major (N,3)), so each
// factor entry is loaded once and used for x, y and z.  The solve is memory
// bound, so this is what makes a 3-coordinate solve cost about one column.
#pragma once
#include <Eigen/SparseCholesky>

#include "types.h"

namespace pyfacerig {

using SparseLLT = Eigen::SimplicialLLT<SparseMatrixd, Eigen::Lower, Eigen::AMDOrdering<int>>;

// X = A^-1 B for the A factored in llt.  B and X are (N,3); they may alias.
void llt_solve3(const SparseLLT& llt, const RowMatrixX3d& B, RowMatrixX3d& X);

}  // namespace pyfacerig
