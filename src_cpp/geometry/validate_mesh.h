// Defensive checks at the C++ boundary.  pyfacerig/geometry.py validates every
// input with full messages first; these cheap O(N + F) checks make sure a
// direct call into pyfacerig._core with bad data returns an error instead of
// reading out of bounds.
#pragma once
#include <string>

#include "types.h"

namespace pyfacerig {

// Finite vertices; every face index in [0, V.rows()) and distinct within its face.
bool validate_mesh(const RowMatrixX3d& V, const RowMatrixX3i& F, std::string* error);

// Indices in [0, num_vertices), no repeats.
bool validate_index_set(const Eigen::VectorXi& ids, Eigen::Index num_vertices, const char* name,
                        std::string* error);

}  // namespace pyfacerig
