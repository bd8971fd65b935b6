// Thin pybind11 bindings: numpy <-> Eigen conversion only; the solvers live in
// src_cpp/geometry and know nothing about Python.  Inputs are validated in
// pyfacerig/geometry.py; errors the C++ reports (failed factorisation,
// non-finite results) come back as ValueError with the solver's message.
#include <pybind11/eigen.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "geometry/deformation_transfer.h"
#include "geometry/laplacian_deformation.h"
#include "geometry/normal_deltas.h"

namespace py = pybind11;
using namespace pyfacerig;

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyfacerig C++ geometry core";

  py::class_<LaplacianDeformationData, std::shared_ptr<LaplacianDeformationData>>(
      m, "LaplacianDeformationData")
      .def_property_readonly("num_vertices", [](const LaplacianDeformationData& d) { return d.rest.rows(); });

  m.def(
      "laplacian_deformation_precompute",
      [](const RowMatrixX3d& V, const RowMatrixX3i& F, const Eigen::VectorXi& anchor_ids, double weight,
         const std::string& laplacian, std::shared_ptr<const LaplacianDeformationData> like) {
        if (laplacian != "uniform" && laplacian != "cotangent")
          throw py::value_error("laplacian must be 'cotangent' or 'uniform'");
        const LaplacianKind kind = laplacian == "uniform" ? LaplacianKind::Uniform : LaplacianKind::Cotangent;
        auto data = std::make_shared<LaplacianDeformationData>();
        std::string error;
        bool ok;
        {
          py::gil_scoped_release release;
          ok = laplacian_deformation_precompute(V, F, anchor_ids, weight, kind, *data, &error, like.get());
        }
        if (!ok) throw py::value_error(error);
        return data;
      },
      py::arg("vertices"), py::arg("faces"), py::arg("anchor_ids"), py::arg("weight"), py::arg("laplacian"),
      py::arg("like") = nullptr);

  m.def(
      "laplacian_deformation_solve",
      [](const LaplacianDeformationData& data, const RowMatrixX3d& anchor_positions, int rotation_iterations) {
        RowMatrixX3d U;
        std::string error;
        bool ok;
        {
          py::gil_scoped_release release;
          ok = laplacian_deformation_solve(data, anchor_positions, rotation_iterations, U, &error);
        }
        if (!ok) throw py::value_error(error);
        return U;
      },
      py::arg("data"), py::arg("anchor_positions"), py::arg("rotation_iterations"));

  py::class_<DeformationTransferData, std::shared_ptr<DeformationTransferData>>(m, "DeformationTransferData")
      .def_property_readonly("num_vertices", [](const DeformationTransferData& d) { return d.target_neutral.rows(); });

  m.def(
      "deformation_transfer_precompute",
      [](const RowMatrixX3d& source_neutral, const RowMatrixX3d& target_neutral, const RowMatrixX3i& F,
         std::shared_ptr<const DeformationTransferData> like) {
        auto data = std::make_shared<DeformationTransferData>();
        std::string error;
        bool ok;
        {
          py::gil_scoped_release release;
          ok = deformation_transfer_precompute(source_neutral, target_neutral, F, *data, &error, like.get());
        }
        if (!ok) throw py::value_error(error);
        return data;
      },
      py::arg("source_neutral"), py::arg("target_neutral"), py::arg("faces"), py::arg("like") = nullptr);

  // source_shapes arrives as (M, 3N) C-contiguous float64 and is read in place.
  m.def(
      "deformation_transfer",
      [](const DeformationTransferData& data, const Eigen::Ref<const RowMatrixXd>& source_shapes) {
        RowMatrixXd target_shapes;
        std::string error;
        bool ok;
        {
          py::gil_scoped_release release;
          ok = deformation_transfer(data, source_shapes, target_shapes, &error);
        }
        if (!ok) throw py::value_error(error);
        return target_shapes;
      },
      py::arg("data"), py::arg("source_shapes"));

  // shape_deltas arrives as (M, 3N) C-contiguous float32 and is read in place.
  m.def(
      "vertex_normal_deltas",
      [](const RowMatrixX3d& V, const RowMatrixX3i& F, const RowMatrixX3d& neutral_normals,
         const Eigen::Ref<const RowMatrixXf>& shape_deltas, float threshold) {
        RowMatrixXf normal_deltas;
        std::string error;
        bool ok;
        {
          py::gil_scoped_release release;
          ok = vertex_normal_deltas(V, F, neutral_normals, shape_deltas, threshold, normal_deltas, &error);
        }
        if (!ok) throw py::value_error(error);
        return normal_deltas;
      },
      py::arg("vertices"), py::arg("faces"), py::arg("neutral_normals"), py::arg("shape_deltas"),
      py::arg("threshold"));
}
