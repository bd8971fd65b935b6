#include "vertex_rotations.h"

#include <Eigen/LU>   // determinant()
#include <Eigen/SVD>

#include "parallel_for.h"

namespace pyfacerig {

void vertex_rotations(const RowMatrixX3d& rest, const RowMatrixX3d& deformed,
                      const std::vector<int>& ring_offsets, const std::vector<int>& ring_vertices,
                      int num_threads, std::vector<Eigen::Matrix3d>& rotations) {
  const int n = static_cast<int>(rest.rows());
  rotations.resize(n);
  // Chunks of vertices per task keep the atomic counter off the hot path.
  const int chunk = 1024;
  const int tasks = (n + chunk - 1) / chunk;
  parallel_for(tasks, num_threads, [&](int task) {
    const int end = std::min(n, (task + 1) * chunk);
    for (int i = task * chunk; i < end; ++i) {
      // Covariance of rest edges against deformed edges, unit weights: cotangent
      // weights can be negative on obtuse triangles and would bias the fit.
      Eigen::Matrix3d S = Eigen::Matrix3d::Zero();
      for (int r = ring_offsets[i]; r < ring_offsets[i + 1]; ++r) {
        const int j = ring_vertices[r];
        const Eigen::Vector3d e0 = (rest.row(i) - rest.row(j)).transpose();
        const Eigen::Vector3d e1 = (deformed.row(i) - deformed.row(j)).transpose();
        S.noalias() += e0 * e1.transpose();
      }
      Eigen::JacobiSVD<Eigen::Matrix3d> svd(S, Eigen::ComputeFullU | Eigen::ComputeFullV);
      Eigen::Matrix3d U = svd.matrixU();
      Eigen::Matrix3d R = svd.matrixV() * U.transpose();
      if (R.determinant() < 0.0) {  // closest proper rotation: flip the weakest axis
        U.col(2) *= -1.0;
        R = svd.matrixV() * U.transpose();
      }
      rotations[i] = R;
    }
  });
}

}  // namespace pyfacerig
