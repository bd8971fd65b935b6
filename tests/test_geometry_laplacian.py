"""LaplacianDeformer: Eq. 9-10 of Pan et al., checked against an independent scipy solve."""
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pyfacerig.geometry import LaplacianDeformer
from test_geometry_meshes import box_bar, edge_list, grid, icosphere


def _row_normalised_laplacian(vertices, faces, kind):
    """Eq. 9 operator (or its cotangent-weighted version), built independently with scipy."""
    n = len(vertices)
    if kind == "uniform":
        e = edge_list(faces)
        w = np.ones(len(e))
        W = sp.coo_matrix((np.r_[w, w], (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n))
    else:
        rows, cols, vals = [], [], []
        for k in range(3):
            c, i, j = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
            a, b = vertices[i] - vertices[c], vertices[j] - vertices[c]
            cot = np.einsum("ij,ij->i", a, b) / np.linalg.norm(np.cross(a, b), axis=1)
            rows += [i, j]
            cols += [j, i]
            vals += [cot / 2, cot / 2]
        W = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    W = W.tocsr()
    d = np.asarray(W.sum(axis=1)).ravel()
    return sp.identity(n) - sp.diags(1.0 / d) @ W


def _scipy_solve(vertices, faces, anchor_ids, anchor_positions, weight, kind):
    L = _row_normalised_laplacian(vertices, faces, kind).tocsc()
    S = sp.coo_matrix((np.ones(len(anchor_ids)), (np.arange(len(anchor_ids)), anchor_ids)),
                      shape=(len(anchor_ids), len(vertices))).tocsc()
    A = (L.T @ L + weight * S.T @ S).tocsc()
    b = L.T @ (L @ vertices) + weight * S.T @ anchor_positions
    return spla.splu(A).solve(b)


def _bumped_grid():
    vertices, faces = grid(25, 25)
    # A gently curved sheet so the Laplacian coordinates are not all zero.
    vertices[:, 2] = 0.2 * np.sin(3 * vertices[:, 0]) * np.cos(2 * vertices[:, 1])
    border = np.flatnonzero((vertices[:, 0] == 0) | (vertices[:, 0] == 1)
                            | (vertices[:, 1] == 0) | (vertices[:, 1] == 1))
    centre = np.argmin(np.linalg.norm(vertices[:, :2] - 0.5, axis=1))
    anchor_ids = np.r_[border, centre]
    anchor_positions = vertices[anchor_ids].copy()
    anchor_positions[-1] += [0.05, -0.02, 0.3]
    return vertices, faces, anchor_ids, anchor_positions


def test_anchors_are_reproduced_more_closely_as_the_weight_grows():
    vertices, faces, anchor_ids, anchor_positions = _bumped_grid()
    errors = []
    for weight in [1.0, 1e2, 1e4, 1e6]:
        deformed = LaplacianDeformer(vertices, faces, anchor_ids, weight=weight).solve(anchor_positions)
        errors.append(np.abs(deformed[anchor_ids] - anchor_positions).max())
    assert all(later < 0.2 * earlier for earlier, later in zip(errors, errors[1:]))
    assert errors[-1] < 1e-6


def test_cotangent_solve_matches_an_independent_scipy_solve_of_eq_10():
    vertices, faces, anchor_ids, anchor_positions = _bumped_grid()
    ours = LaplacianDeformer(vertices, faces, anchor_ids, weight=5.0, laplacian="cotangent").solve(anchor_positions)
    reference = _scipy_solve(vertices, faces, anchor_ids, anchor_positions, 5.0, "cotangent")
    assert np.linalg.norm(ours - reference) <= 1e-8 * np.linalg.norm(reference)


def test_uniform_solve_matches_an_independent_scipy_solve_of_eq_9_and_10():
    vertices, faces, anchor_ids, anchor_positions = _bumped_grid()
    ours = LaplacianDeformer(vertices, faces, anchor_ids, weight=5.0, laplacian="uniform").solve(anchor_positions)
    reference = _scipy_solve(vertices, faces, anchor_ids, anchor_positions, 5.0, "uniform")
    assert np.linalg.norm(ours - reference) <= 1e-8 * np.linalg.norm(reference)
    # and the anchor actually moved the mesh: the check above is not trivially about the rest pose
    assert np.abs(ours - vertices).max() > 0.1


def test_unmoved_anchors_give_back_the_rest_mesh():
    vertices, faces = icosphere(2)
    anchor_ids = np.arange(0, len(vertices), 7)
    deformed = LaplacianDeformer(vertices, faces, anchor_ids).solve(vertices[anchor_ids])
    assert np.abs(deformed - vertices).max() < 1e-10


def _bent_bar_targets(length=16, width=2):
    """A closed bar along +X; its x=0 cap stays, its x=length cap is turned 90 degrees about Z
    onto the end of a quarter circle, as if the bar were bent."""
    vertices, faces = box_bar(length, width)
    fixed = np.flatnonzero(vertices[:, 0] == 0)
    moved = np.flatnonzero(vertices[:, 0] == length)
    radius = 2 * length / np.pi  # the centre line keeps its length
    quarter_turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    cap = (vertices[moved] - [length, width / 2, 0]) @ quarter_turn.T + [radius, width / 2 + radius, 0]
    return vertices, faces, np.r_[fixed, moved], np.r_[vertices[fixed], cap]


def _edge_length_distortion(rest, deformed, faces):
    e = edge_list(faces)
    before = np.linalg.norm(rest[e[:, 0]] - rest[e[:, 1]], axis=1)
    after = np.linalg.norm(deformed[e[:, 0]] - deformed[e[:, 1]], axis=1)
    return np.abs(after / before - 1.0)


def test_rotation_aware_variant_bends_a_bar_90_degrees_with_much_less_distortion():
    vertices, faces, anchor_ids, anchor_positions = _bent_bar_targets()
    plain = LaplacianDeformer(vertices, faces, anchor_ids, weight=100.0).solve(anchor_positions)
    rotated = LaplacianDeformer(vertices, faces, anchor_ids, weight=100.0,
                                rotation_aware=True).solve(anchor_positions)
    plain_distortion = _edge_length_distortion(vertices, plain, faces)
    rotated_distortion = _edge_length_distortion(vertices, rotated, faces)
    # A real bend stretches the outside and squeezes the inside by width/2/radius ~ 10%;
    # plain Laplacian coordinates, which cannot turn, shear and collapse far more.
    assert rotated_distortion.mean() < 0.5 * plain_distortion.mean()
    assert rotated_distortion.max() < 0.3 * plain_distortion.max()
    assert rotated_distortion.max() < 0.25


def test_rotation_aware_variant_follows_a_rigid_rotation_of_all_anchors():
    vertices, faces = icosphere(3)
    vertices = vertices * [1.0, 0.6, 0.8]  # not rotation symmetric
    anchor_ids = np.arange(0, len(vertices), 25)
    c, s = np.cos(np.pi / 2), np.sin(np.pi / 2)
    turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    expected = vertices @ turn.T
    plain = LaplacianDeformer(vertices, faces, anchor_ids, weight=100.0).solve(expected[anchor_ids])
    rotated = LaplacianDeformer(vertices, faces, anchor_ids, weight=100.0, rotation_aware=True,
                                rotation_iterations=30).solve(expected[anchor_ids])
    assert np.abs(rotated - expected).max() < 1e-3
    assert np.abs(plain - expected).max() > 10 * np.abs(rotated - expected).max()


def test_a_bump_on_a_closed_sphere_stays_local():
    vertices, faces = icosphere(4)
    pole = int(np.argmax(vertices[:, 2]))
    angle = np.degrees(np.arccos(np.clip(vertices @ vertices[pole], -1.0, 1.0)))
    # The pole is pulled outwards; sparse unmoved anchors hold the rest of the sphere.
    holders = np.flatnonzero(angle > 40.0)[::15]
    anchor_ids = np.r_[pole, holders]
    anchor_positions = vertices[anchor_ids].copy()
    anchor_positions[0] *= 1.3
    deformed = LaplacianDeformer(vertices, faces, anchor_ids, weight=1000.0).solve(anchor_positions)
    moved = np.linalg.norm(deformed - vertices, axis=1)
    assert moved[pole] > 0.25
    assert np.median(moved[(angle > 5) & (angle < 12)]) > 0.05  # the bump has a smooth flank
    assert moved[angle > 100.0].max() < 1e-3 * moved[pole]     # the far side does not notice


def test_solving_twice_gives_byte_identical_results():
    vertices, faces, anchor_ids, anchor_positions = _bent_bar_targets()
    first = LaplacianDeformer(vertices, faces, anchor_ids, rotation_aware=True)
    second = LaplacianDeformer(vertices, faces, anchor_ids, rotation_aware=True)
    a, b, c = first.solve(anchor_positions), first.solve(anchor_positions), second.solve(anchor_positions)
    assert a.tobytes() == b.tobytes() == c.tobytes()


def test_scaling_and_moving_the_mesh_and_its_anchors_scales_and_moves_the_result():
    # The row-normalised Laplacian is dimensionless, so one weight means the same at any size.
    vertices, faces, anchor_ids, anchor_positions = _bumped_grid()
    scale, offset = 0.013, np.array([0.2, 1.6, -0.4])  # e.g. template units to metres
    reference = LaplacianDeformer(vertices, faces, anchor_ids).solve(anchor_positions)
    moved = LaplacianDeformer(scale * vertices + offset, faces, anchor_ids).solve(scale * anchor_positions + offset)
    assert np.abs(moved - (scale * reference + offset)).max() < 1e-12


def test_irregular_delaunay_mesh_matches_the_scipy_solve_too():
    # Random points give an irregular mesh (valences 3..10, obtuse triangles with
    # negative cotangents), exercising a differently shaped factorisation.
    from scipy.spatial import Delaunay
    rng = np.random.default_rng(7)
    xy = rng.uniform(-1.0, 1.0, size=(600, 2))
    faces = Delaunay(xy).simplices.astype(np.int32)
    vertices = np.c_[xy, 0.3 * np.exp(-np.sum(xy ** 2, axis=1))]
    anchor_ids = rng.choice(len(vertices), 40, replace=False)
    anchor_positions = vertices[anchor_ids] + rng.normal(scale=0.05, size=(40, 3))
    for kind in ("cotangent", "uniform"):
        ours = LaplacianDeformer(vertices, faces, anchor_ids, weight=10.0, laplacian=kind).solve(anchor_positions)
        reference = _scipy_solve(vertices, faces, anchor_ids, anchor_positions, 10.0, kind)
        assert np.linalg.norm(ours - reference) <= 1e-8 * np.linalg.norm(reference)


def test_a_second_mesh_of_the_same_template_reuses_the_analysis_and_matches_a_fresh_solve():
    """Precomputing on new vertices of the same faces and anchors reuses the previous symbolic
    factorisation (same pattern, checked by the core): results must be bit-identical; a mesh
    of the same size with other triangles must be analysed afresh."""
    from pyfacerig import geometry

    vertices, faces = icosphere(3)
    anchors = np.arange(0, len(vertices), 7)
    rng = np.random.default_rng(5)
    second = vertices + 0.03 * rng.normal(size=vertices.shape)
    goals = second[anchors] + 0.1
    geometry._LAST.clear()
    LaplacianDeformer(vertices, faces, anchors, rotation_aware=True)
    warm = LaplacianDeformer(second, faces, anchors, rotation_aware=True).solve(goals)
    geometry._LAST.clear()
    cold = LaplacianDeformer(second, faces, anchors, rotation_aware=True).solve(goals)
    assert np.array_equal(warm, cold)
    # Same vertex and face counts, other connectivity: a relabelled sphere.
    permutation = rng.permutation(len(vertices))
    relabelled_faces = np.argsort(permutation)[faces].astype(np.int32)
    relabelled = second[permutation]
    geometry._LAST.clear()
    LaplacianDeformer(second, faces, anchors)  # leaves the sphere's analysis behind
    moved = LaplacianDeformer(relabelled, relabelled_faces, anchors).solve(relabelled[anchors] + 0.1)
    geometry._LAST.clear()
    fresh = LaplacianDeformer(relabelled, relabelled_faces, anchors).solve(relabelled[anchors] + 0.1)
    assert np.array_equal(moved, fresh)
