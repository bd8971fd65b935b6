// Matrix types shared by the geometry functions.  Row-major (N,3) blocks match
// numpy's C-contiguous (N,3) arrays, so the bindings pass them without copying.
#pragma once
#include <Eigen/Core>
#include <Eigen/Geometry>  // cross()
#include <Eigen/SparseCore>

namespace pyfacerig {

using RowMatrixX3d = Eigen::Matrix<double, Eigen::Dynamic, 3, Eigen::RowMajor>;
using RowMatrixX3i = Eigen::Matrix<int, Eigen::Dynamic, 3, Eigen::RowMajor>;
using RowMatrixXd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using SparseMatrixd = Eigen::SparseMatrix<double>;  // column-major, what the solvers want

}  // namespace pyfacerig
