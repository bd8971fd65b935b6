// The 3x3 frame of a triangle used by deformation transfer (Sumner & Popovic
// 2004; Pan et al., Eq. 14): its two edges from the first corner plus a fourth
// vertex offset along the normal by cross / sqrt(|cross|), so the normal
// direction scales like an edge and the frame is invertible.
#pragma once
#include <cmath>

#include <Eigen/Core>
#include <Eigen/Geometry>

namespace pyfacerig {

template <typename Row>
Eigen::Matrix3d triangle_frame(const Row& v1, const Row& v2, const Row& v3) {
  const Eigen::Vector3d e1 = (v2 - v1).transpose();
  const Eigen::Vector3d e2 = (v3 - v1).transpose();
  const Eigen::Vector3d c = e1.cross(e2);
  const double norm = c.norm();
  Eigen::Matrix3d frame;
  frame.col(0) = e1;
  frame.col(1) = e2;
  // A deformed source triangle may collapse; its frame then has no normal
  // column, which keeps the transform finite instead of dividing by zero.
  frame.col(2) = norm > 0.0 ? Eigen::Vector3d(c / std::sqrt(norm)) : Eigen::Vector3d::Zero();
  return frame;
}

}  // namespace pyfacerig
