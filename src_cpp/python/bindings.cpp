// Thin pybind11 bindings: numpy <-> Eigen conversion only; the solvers live in
// src_cpp/geometry and know nothing about Python.
#include <pybind11/pybind11.h>

PYBIND11_MODULE(_core, m) {
  m.doc() = "pyfacerig C++ geometry core";
}
