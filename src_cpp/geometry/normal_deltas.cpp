#include "normal_deltas.h"

#include <cmath>
#include <vector>

#include "parallel_for.h"
#include "validate_mesh.h"

namespace pyfacerig {

namespace {

// Unnormalised normal (twice the area) of triangle f with corner positions p.
template <typename Position>
Eigen::Vector3d face_normal(const RowMatrixX3i& F, Eigen::Index f, const Position& p) {
  const Eigen::Vector3d a = p(F(f, 0)), b = p(F(f, 1)), c = p(F(f, 2));
  return (b - a).cross(c - a);
}

}  // namespace

bool vertex_normal_deltas(const RowMatrixX3d& V, const RowMatrixX3i& F, const RowMatrixX3d& neutral_normals,
                          const Eigen::Ref<const RowMatrixXf>& shape_deltas, float threshold,
                          RowMatrixXf& normal_deltas, std::string* error) {
  const Eigen::Index n = V.rows(), faces = F.rows();
  if (!validate_mesh(V, F, error)) return false;
  if (neutral_normals.rows() != n || shape_deltas.cols() != 3 * n) {
    if (error) *error = "neutral_normals and shape_deltas must have one row (of 3 per vertex) per vertex";
    return false;
  }
  if (!shape_deltas.allFinite()) {
    if (error) *error = "shape_deltas contains non-finite values";
    return false;
  }
  const auto rest = [&](Eigen::Index v) -> Eigen::Vector3d { return V.row(v).transpose(); };
  std::vector<Eigen::Vector3d> rest_normals(faces), rest_sums(n, Eigen::Vector3d::Zero());
  for (Eigen::Index f = 0; f < faces; ++f) {
    rest_normals[f] = face_normal(F, f, rest);
    for (int k = 0; k < 3; ++k) rest_sums[F(f, k)] += rest_normals[f];
  }

  const Eigen::Index shapes = shape_deltas.rows();
  normal_deltas.setZero(shapes, 3 * n);
  parallel_for(static_cast<int>(shapes), default_thread_count(), [&](int s) {
    const float* delta = shape_deltas.row(s).data();
    const auto moved = [&](Eigen::Index v) {
      return delta[3 * v] != 0.0f || delta[3 * v + 1] != 0.0f || delta[3 * v + 2] != 0.0f;
    };
    const auto shaped = [&](Eigen::Index v) -> Eigen::Vector3d {
      return V.row(v).transpose() + Eigen::Vector3d(delta[3 * v], delta[3 * v + 1], delta[3 * v + 2]);
    };
    // Only the triangles with a moved corner change their normal; their corners' sums are
    // the neutral sums plus those changes.
    std::vector<Eigen::Vector3d> change(n, Eigen::Vector3d::Zero());
    std::vector<char> touched(n, 0);
    for (Eigen::Index f = 0; f < faces; ++f) {
      if (!moved(F(f, 0)) && !moved(F(f, 1)) && !moved(F(f, 2))) continue;
      const Eigen::Vector3d d = face_normal(F, f, shaped) - rest_normals[f];
      for (int k = 0; k < 3; ++k) {
        change[F(f, k)] += d;
        touched[F(f, k)] = 1;
      }
    }
    float* out = normal_deltas.row(s).data();
    for (Eigen::Index v = 0; v < n; ++v) {
      if (!touched[v]) continue;
      const Eigen::Vector3d sum = rest_sums[v] + change[v];
      const double length = sum.norm();
      const Eigen::Vector3d unit = length > 0.0 ? Eigen::Vector3d(sum / length) : Eigen::Vector3d::UnitZ();
      const Eigen::Vector3f d = (unit - neutral_normals.row(v).transpose()).cast<float>();
      if (d.cwiseAbs().maxCoeff() < threshold) continue;
      out[3 * v] = d.x();
      out[3 * v + 1] = d.y();
      out[3 * v + 2] = d.z();
    }
  });
  return true;
}

}  // namespace pyfacerig
