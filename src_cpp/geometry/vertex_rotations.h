// Local step of as-rigid-as-possible style deformation: for every vertex, the
// rotation that best maps its rest one-ring edges onto the deformed ones
// (orthogonal Procrustes via a 3x3 SVD, reflections excluded).
#pragma once
#include <vector>

#include <Eigen/Core>

#include "types.h"

namespace pyfacerig {

void vertex_rotations(const RowMatrixX3d& rest, const RowMatrixX3d& deformed,
                      const std::vector<int>& ring_offsets, const std::vector<int>& ring_vertices,
                      int num_threads, std::vector<Eigen::Matrix3d>& rotations);

}  // namespace pyfacerig
