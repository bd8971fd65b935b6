// Change of the area-weighted vertex normals under each blendshape, for the
// normal morph targets engines light a posed face with.
#pragma once
#include <string>

#include "types.h"

namespace pyfacerig {

using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// V (N,3) neutral vertices; F (F,3) triangles; neutral_normals (N,3) the unit
// area-weighted normals of V; shape_deltas (M, 3N) one row per shape, the
// (N,3) position deltas flattened.  Writes normal_deltas (M, 3N): per vertex,
// the unit normal of the shaped mesh minus the neutral one, for the corners of
// the triangles a shape moves (every other vertex keeps its normal, so only
// those triangles are visited).  A change whose largest component is below
// `threshold` is written as zero, so writers can store the targets sparsely.
// Shapes run in parallel; the result does not depend on the thread count.
bool vertex_normal_deltas(const RowMatrixX3d& V, const RowMatrixX3i& F, const RowMatrixX3d& neutral_normals,
                          const Eigen::Ref<const RowMatrixXf>& shape_deltas, float threshold,
                          RowMatrixXf& normal_deltas, std::string* error);

}  // namespace pyfacerig
