#include "deformation_transfer.h"

#include <map>
#include <memory>

#include <Eigen/LU>  // 3x3 and 2x2 inverse()

#include "parallel_for.h"
#include "supernodal_cholesky.h"
#include "triangle_frame.h"
#include "validate_mesh.h"

namespace pyfacerig {

// Everything about one moving set that depends on the mesh alone.
struct MovingSet {
  std::vector<int> local;                      // (N,) unknown index of each vertex, -1 if fixed
  std::vector<int> unknowns;                   // global id of each unknown
  std::vector<int> triangles;                  // triangles with at least one unknown corner
  std::vector<std::vector<int>> floating;      // moving components with no fixed neighbour
  std::vector<int> order;                      // unknowns' elimination order (local ids)
  SupernodalCholesky symbolic;                 // K_FF's analysis, from the first target factored
};

namespace {

using RowVector3dMap = Eigen::Map<const Eigen::RowVector3d>;

// One shape's reduced system: the moving set's structure (shared, cached per mesh) and the
// numeric factorisation of K_FF for this target.
struct MovingSetSystem {
  std::shared_ptr<const MovingSet> set;
  SupernodalCholesky solver;
  bool ok = true;
};

double rms_radius(const RowMatrixX3d& V) {
  const Eigen::RowVector3d centre = V.colwise().mean();
  return std::sqrt((V.rowwise() - centre).squaredNorm() / static_cast<double>(V.rows()));
}

// The structure of one moving set: unknowns are the moving vertices, except one pinned vertex
// in each moving component that touches no fixed vertex (otherwise that component could
// translate freely).
void build_set(const DeformationTransferData& data, const std::vector<char>& moving, MovingSet& set) {
  const int n = static_cast<int>(data.K.rows());
  set.local.assign(n, -1);
  std::vector<char> visited(n, 0);
  std::vector<char> pinned(n, 0);
  std::vector<int> stack, component;
  for (int seed = 0; seed < n; ++seed) {
    if (!moving[seed] || visited[seed]) continue;
    // Depth-first walk over mesh edges (the off-diagonal pattern of K).
    bool touches_fixed = false;
    component.clear();
    stack.assign(1, seed);
    visited[seed] = 1;
    while (!stack.empty()) {
      const int i = stack.back();
      stack.pop_back();
      component.push_back(i);
      for (SparseMatrixd::InnerIterator it(data.K, i); it; ++it) {
        const int j = static_cast<int>(it.row());
        if (!moving[j]) {
          touches_fixed = true;
        } else if (!visited[j]) {
          visited[j] = 1;
          stack.push_back(j);
        }
      }
    }
    if (!touches_fixed) {
      pinned[seed] = 1;  // the seed is the component's smallest index: deterministic
      set.floating.push_back(component);
    }
  }
  for (int i = 0; i < n; ++i) {
    if (moving[i] && !pinned[i]) {
      set.local[i] = static_cast<int>(set.unknowns.size());
      set.unknowns.push_back(i);
    }
  }
  for (Eigen::Index f = 0; f < data.F.rows(); ++f)
    if (set.local[data.F(f, 0)] >= 0 || set.local[data.F(f, 1)] >= 0 || set.local[data.F(f, 2)] >= 0)
      set.triangles.push_back(static_cast<int>(f));
  set.order.reserve(set.unknowns.size());
  for (int i : data.elimination_order)
    if (set.local[i] >= 0) set.order.push_back(set.local[i]);
}

// K_FF: rows and columns of the set's unknowns, for this target's K.
SparseMatrixd reduced_matrix(const DeformationTransferData& data, const MovingSet& set) {
  const int m = static_cast<int>(set.unknowns.size());
  std::vector<Eigen::Triplet<double>> triplets;
  triplets.reserve(static_cast<size_t>(m) * 7);
  for (int c = 0; c < m; ++c)
    for (SparseMatrixd::InnerIterator it(data.K, set.unknowns[c]); it; ++it) {
      const int r = set.local[it.row()];
      if (r >= 0) triplets.emplace_back(r, c, it.value());
    }
  SparseMatrixd Kff(m, m);
  Kff.setFromTriplets(triplets.begin(), triplets.end());
  return Kff;
}

// The reduced system of one moving set: its structure from the cache (built and cached on
// first sight), then K_FF factored on the cached symbolic analysis.
void build_system(const DeformationTransferData& data, const std::vector<char>& moving,
                  MovingSetSystem& sys) {
  MovingSetCache& cache = *data.cache;
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto found = cache.sets.find(moving);
    if (found != cache.sets.end()) sys.set = found->second;
  }
  if (sys.set) {
    if (!sys.set->unknowns.empty())
      sys.ok = sys.solver.compute_like(&sys.set->symbolic, reduced_matrix(data, *sys.set), &sys.set->order);
    return;
  }
  auto set = std::make_shared<MovingSet>();
  build_set(data, moving, *set);
  if (!set->unknowns.empty()) {
    sys.ok = sys.solver.compute(reduced_matrix(data, *set), &set->order);
    if (!sys.ok) return;  // not cached: a failed factorisation is reported, not remembered
    set->symbolic = sys.solver.symbolic_copy();
  }
  sys.set = set;
  std::lock_guard<std::mutex> lock(cache.mutex);
  // A template has a few dozen moving sets; the bound only stops a caller that transfers
  // ever new shapes onto one mesh from growing the cache without end.
  if (cache.sets.size() < 512) cache.sets.emplace(moving, set);
}

}  // namespace

bool deformation_transfer_precompute(const RowMatrixX3d& source_neutral,
                                     const RowMatrixX3d& target_neutral, const RowMatrixX3i& F,
                                     DeformationTransferData& data, std::string* error,
                                     const DeformationTransferData* like) {
  const Eigen::Index n = target_neutral.rows(), nf = F.rows();
  if (source_neutral.rows() != n) {
    if (error) *error = "source_neutral and target_neutral have different vertex counts";
    return false;
  }
  if (!validate_mesh(source_neutral, F, error) || !validate_mesh(target_neutral, F, error)) return false;
  data.F = F;
  data.source_neutral = source_neutral;
  data.target_neutral = target_neutral;
  data.source_to_target.resize(nf);
  data.target_edges.resize(nf);

  // Local stiffness uses D = d(e1, e2)/d(t1, t2, t3).
  Eigen::Matrix<double, 3, 2> D;
  D << -1, -1, 1, 0, 0, 1;
  std::vector<Eigen::Triplet<double>> triplets;
  triplets.reserve(static_cast<size_t>(nf) * 9);
  for (Eigen::Index f = 0; f < nf; ++f) {
    const Eigen::Matrix3d Vs = triangle_frame(source_neutral.row(F(f, 0)), source_neutral.row(F(f, 1)),
                                              source_neutral.row(F(f, 2)));
    Eigen::Matrix<double, 3, 2> E;
    E.col(0) = (target_neutral.row(F(f, 1)) - target_neutral.row(F(f, 0))).transpose();
    E.col(1) = (target_neutral.row(F(f, 2)) - target_neutral.row(F(f, 0))).transpose();
    const Eigen::Matrix2d W = (E.transpose() * E).inverse();
    data.target_edges[f] = E * W;
    // Q_j E_j W_j = Vs~ (Vs^-1 E_j W_j): precomputing the bracket leaves one
    // 3x3-by-3x2 product per triangle and shape in the hot loop.
    data.source_to_target[f] = Vs.inverse() * data.target_edges[f];
    const Eigen::Matrix3d local = D * W * D.transpose();
    for (int a = 0; a < 3; ++a)
      for (int b = 0; b < 3; ++b) triplets.emplace_back(F(f, a), F(f, b), local(a, b));
  }
  data.K.resize(n, n);
  data.K.setFromTriplets(triplets.begin(), triplets.end());
  if (!Eigen::Map<const Eigen::VectorXd>(data.K.valuePtr(), data.K.nonZeros()).allFinite()) {  // the caller rejects degenerate triangles; this is the backstop
    if (error) *error = "deformation transfer system has non-finite entries (degenerate triangles?)";
    return false;
  }
  // K's pattern depends on the faces alone: with the same faces as `like`, its order and
  // moving sets carry over.
  if (like != nullptr && like->cache && like->cache->F.rows() == F.rows() && like->cache->F == F &&
      like->K.rows() == n) {
    data.cache = like->cache;
  } else {
    data.cache = std::make_shared<MovingSetCache>();
    data.cache->F = F;
    data.cache->elimination_order = SupernodalCholesky::fill_reducing_order(data.K);
  }
  data.elimination_order = data.cache->elimination_order;
  const double source_radius = rms_radius(source_neutral);
  data.scale_ratio = source_radius > 0.0 ? rms_radius(target_neutral) / source_radius : 1.0;
  data.num_threads = default_thread_count();
  return true;
}

bool deformation_transfer(const DeformationTransferData& data,
                          const Eigen::Ref<const RowMatrixXd>& source_shapes,
                          RowMatrixXd& target_shapes, std::string* error) {
  const int n = static_cast<int>(data.target_neutral.rows());
  const int num_shapes = static_cast<int>(source_shapes.rows());
  if (source_shapes.cols() != 3 * static_cast<Eigen::Index>(n) || !source_shapes.allFinite()) {
    if (error) *error = "source_shapes must be finite with 3 * num_vertices columns";
    return false;
  }
  const RowMatrixXd target_row =
      Eigen::Map<const RowMatrixXd>(data.target_neutral.data(), 1, 3 * static_cast<Eigen::Index>(n));
  target_shapes = target_row.replicate(num_shapes, 1);

  // Moving set of each shape: vertices the source shape does not leave exactly in place.
  std::map<std::vector<char>, int> group_of_set;
  std::vector<int> group(num_shapes);
  std::vector<std::vector<char>> sets;
  for (int s = 0; s < num_shapes; ++s) {
    std::vector<char> moving(n);
    for (int i = 0; i < n; ++i)
      moving[i] = RowVector3dMap(source_shapes.row(s).data() + 3 * i) != data.source_neutral.row(i);
    auto inserted = group_of_set.emplace(moving, static_cast<int>(sets.size()));
    if (inserted.second) sets.push_back(std::move(moving));
    group[s] = inserted.first->second;
  }

  std::vector<std::unique_ptr<MovingSetSystem>> systems(sets.size());
  parallel_for(static_cast<int>(sets.size()), data.num_threads, [&](int g) {
    systems[g] = std::make_unique<MovingSetSystem>();
    build_system(data, sets[g], *systems[g]);
  });
  for (const auto& sys : systems) {
    if (!sys->ok) {
      if (error) *error = "Cholesky factorisation of the deformation transfer system failed";
      return false;
    }
  }

  std::vector<char> shape_ok(num_shapes, 1);
  parallel_for(num_shapes, data.num_threads, [&](int s) {
    const MovingSetSystem& sys = *systems[group[s]];
    const MovingSet& set = *sys.set;
    const double* shape = source_shapes.row(s).data();
    double* out = target_shapes.row(s).data();
    RowMatrixX3d d;
    if (!set.unknowns.empty()) {
      // Right-hand side r = sum_j D_j ((Q_j - I) E_j W_j)^T restricted to the unknowns.
      RowMatrixX3d r = RowMatrixX3d::Zero(set.unknowns.size(), 3);
      for (int f : set.triangles) {
        const int a = data.F(f, 0), b = data.F(f, 1), c = data.F(f, 2);
        const Eigen::Matrix3d frame =
            triangle_frame(RowVector3dMap(shape + 3 * a), RowVector3dMap(shape + 3 * b), RowVector3dMap(shape + 3 * c));
        const Eigen::Matrix<double, 3, 2> G = frame * data.source_to_target[f] - data.target_edges[f];
        if (set.local[a] >= 0) r.row(set.local[a]) -= (G.col(0) + G.col(1)).transpose();
        if (set.local[b] >= 0) r.row(set.local[b]) += G.col(0).transpose();
        if (set.local[c] >= 0) r.row(set.local[c]) += G.col(1).transpose();
      }
      sys.solver.solve3(r, d);
      for (size_t k = 0; k < set.unknowns.size(); ++k)
        for (int c = 0; c < 3; ++c) out[3 * set.unknowns[k] + c] += d(k, c);
    }
    // Floating components: set their free translation from the source's mean
    // displacement, scaled to the target's size.
    for (const auto& component : set.floating) {
      Eigen::RowVector3d source_mean = Eigen::RowVector3d::Zero(), target_mean = Eigen::RowVector3d::Zero();
      for (int i : component) {
        source_mean += RowVector3dMap(shape + 3 * i) - data.source_neutral.row(i);
        target_mean += RowVector3dMap(out + 3 * i) - data.target_neutral.row(i);
      }
      const Eigen::RowVector3d shift = (data.scale_ratio * source_mean - target_mean) / static_cast<double>(component.size());
      for (int i : component)
        for (int c = 0; c < 3; ++c) out[3 * i + c] += shift(c);
    }
    shape_ok[s] = Eigen::Map<const Eigen::RowVectorXd>(out, 3 * static_cast<Eigen::Index>(n)).allFinite();
  });
  for (int s = 0; s < num_shapes; ++s) {
    if (!shape_ok[s]) {
      if (error) *error = "deformation transfer produced non-finite values for shape " + std::to_string(s);
      return false;
    }
  }
  return true;
}

}  // namespace pyfacerig
