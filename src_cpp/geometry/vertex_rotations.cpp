#include "vertex_rotations.h"

#include <Eigen/Eigenvalues>
#include <Eigen/LU>  // determinant()
#include <Eigen/SVD>

#include "parallel_for.h"

namespace pyfacerig {

namespace {

// Closest proper rotation R = V U^T for S = U diag(s) V^T.  The fast path gets
// V from the closed-form eigen-decomposition of S^T S and U from S V, taking
// the third axes as cross products, which also excludes reflections; it is
// about 3x cheaper than a 3x3 Jacobi SVD.  A one-ring whose edges span less
// than a plane (rank < 2) falls back to the SVD.
Eigen::Matrix3d closest_rotation(const Eigen::Matrix3d& S) {
  Eigen::SelfAdjointEigenSolver<Eigen::Matrix3d> eigen;
  eigen.computeDirect(S.transpose() * S);
  const Eigen::Vector3d lambda = eigen.eigenvalues();  // ascending
  if (lambda(1) > 1e-12 * lambda(2)) {
    Eigen::Vector3d v1 = eigen.eigenvectors().col(2), v2 = eigen.eigenvectors().col(1);
    const Eigen::Vector3d u1 = (S * v1).normalized();
    Eigen::Vector3d u2 = S * v2;
    u2 = (u2 - u2.dot(u1) * u1).normalized();
    v2 = (v2 - v2.dot(v1) * v1).normalized();  // exact orthogonality when s1 ~ s2
    return v1 * u1.transpose() + v2 * u2.transpose() + v1.cross(v2) * u1.cross(u2).transpose();
  }
  Eigen::JacobiSVD<Eigen::Matrix3d> svd(S, Eigen::ComputeFullU | Eigen::ComputeFullV);
  Eigen::Matrix3d U = svd.matrixU();
  if ((svd.matrixV() * U.transpose()).determinant() < 0.0) U.col(2) *= -1.0;  // flip the weakest axis
  return svd.matrixV() * U.transpose();
}

}  // namespace

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
      rotations[i] = closest_rotation(S);
    }
  });
}

}  // namespace pyfacerig
