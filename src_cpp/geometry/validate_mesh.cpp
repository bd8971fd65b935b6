#include "validate_mesh.h"

#include <vector>

namespace pyfacerig {

bool validate_mesh(const RowMatrixX3d& V, const RowMatrixX3i& F, std::string* error) {
  if (!V.allFinite()) {
    if (error) *error = "vertices contain non-finite values";
    return false;
  }
  const Eigen::Index n = V.rows();
  for (Eigen::Index f = 0; f < F.rows(); ++f) {
    const int a = F(f, 0), b = F(f, 1), c = F(f, 2);
    if (a < 0 || b < 0 || c < 0 || a >= n || b >= n || c >= n) {
      if (error) *error = "face " + std::to_string(f) + " has an index out of range";
      return false;
    }
    if (a == b || b == c || a == c) {
      if (error) *error = "face " + std::to_string(f) + " repeats a vertex";
      return false;
    }
  }
  return true;
}

bool validate_index_set(const Eigen::VectorXi& ids, Eigen::Index num_vertices, const char* name,
                        std::string* error) {
  std::vector<char> seen(num_vertices, 0);
  for (Eigen::Index k = 0; k < ids.size(); ++k) {
    const int i = ids(k);
    if (i < 0 || i >= num_vertices || seen[i]) {
      if (error) *error = std::string(name) + " has an out-of-range or repeated index at position " + std::to_string(k);
      return false;
    }
    seen[i] = 1;
  }
  return true;
}

}  // namespace pyfacerig
