"""DeformationTransfer: Sumner-Popovic transfer with the Eq. 14 normal vertex, translation fixed for rigs."""
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from pyfacerig.geometry import DeformationTransfer
from test_geometry_meshes import grid, icosphere


def _local_bump_shapes(vertices, count, seed=0, radius=0.35):
    """Expression-like shapes: each moves a smooth patch and leaves the rest exactly in place."""
    rng = np.random.default_rng(seed)
    shapes = []
    for _ in range(count):
        centre = vertices[rng.integers(len(vertices))]
        falloff = np.exp(-np.sum((vertices - centre) ** 2, axis=1) / radius ** 2)
        falloff[falloff < 0.05] = 0.0  # exact zeros: those vertices stay put
        shapes.append(vertices + falloff[:, None] * rng.normal(scale=0.15, size=3))
    return np.array(shapes)


def test_identical_neutrals_give_back_each_source_shape():
    vertices, faces = icosphere(3)
    shapes = _local_bump_shapes(vertices, 4)
    shapes = np.concatenate([shapes, (1.1 * vertices + [0.2, 0.0, -0.1])[None]])  # every vertex moves
    transferred = DeformationTransfer(vertices, vertices, faces).transfer(shapes)
    assert np.abs(transferred - shapes).max() < 1e-10


def test_scaled_and_translated_target_gets_scaled_and_translated_shapes():
    vertices, faces = icosphere(3)
    shapes = _local_bump_shapes(vertices, 4, seed=1)
    shapes = np.concatenate([shapes, (0.9 * vertices + [0.0, 0.3, 0.0])[None]])  # every vertex moves
    scale, offset = 0.37, np.array([1.0, -2.0, 0.5])
    transferred = DeformationTransfer(vertices, scale * vertices + offset, faces).transfer(shapes)
    assert np.abs(transferred - (scale * shapes + offset)).max() < 1e-10


def test_vertices_the_source_shape_leaves_in_place_stay_in_place_on_the_target():
    vertices, faces = icosphere(3)
    target = vertices * [1.3, 0.8, 1.0] + 0.05 * np.sin(4 * vertices)
    shapes = _local_bump_shapes(vertices, 6, seed=2)
    transferred = DeformationTransfer(vertices, target, faces).transfer(shapes)
    for shape, result in zip(shapes, transferred):
        static = (shape == vertices).all(axis=1)
        assert 0 < static.sum() < len(vertices)
        assert np.array_equal(result[static], target[static])
        assert np.abs(result[~static] - target[~static]).max() > 1e-3  # the rest did move


def test_transferred_bump_follows_the_target_surface_not_the_source_geometry():
    # A flat source grid and a curved target: a sideways shear on the source must come
    # out on the target as the same local deformation gradient, applied to the target's edges.
    vertices, faces = grid(15, 15)
    target = vertices.copy()
    target[:, 2] = 0.3 * vertices[:, 0] ** 2
    shape = vertices.copy()
    inside = (vertices[:, 0] > 0.3) & (vertices[:, 0] < 0.7)
    shape[inside, 1] += 0.2 * (vertices[inside, 0] - 0.3)  # shear in y grows with x
    shape[vertices[:, 0] >= 0.7, 1] += 0.08
    transferred = DeformationTransfer(vertices, target, faces).transfer(shape[None])[0]
    # The source moves only y, by an amount depending only on x: so must the target.
    displacement = transferred - target
    assert np.abs(displacement[:, [0, 2]]).max() < 1e-9
    assert np.abs(displacement[:, 1] - (shape - vertices)[:, 1]).max() < 1e-9


def test_a_shape_that_moves_nothing_returns_the_target_neutral_exactly():
    vertices, faces = icosphere(2)
    target = 2.0 * vertices
    transferred = DeformationTransfer(vertices, target, faces).transfer(np.stack([vertices, vertices]))
    assert np.array_equal(transferred, np.stack([target, target]))


def test_output_has_the_shape_and_dtype_of_the_input_stack():
    vertices, faces = icosphere(1)
    transferred = DeformationTransfer(vertices, vertices, faces).transfer(np.zeros((0, len(vertices), 3)))
    assert transferred.shape == (0, len(vertices), 3)
    shapes = _local_bump_shapes(vertices, 3, seed=3).astype(np.float32)
    assert DeformationTransfer(vertices, vertices, faces).transfer(shapes).shape == (3, len(vertices), 3)


def _frames(V, faces):
    """Eq. 14 frames [v2-v1, v3-v1, n4] of every triangle, (F,3,3) with the vectors as columns."""
    e1 = V[faces[:, 1]] - V[faces[:, 0]]
    e2 = V[faces[:, 2]] - V[faces[:, 0]]
    c = np.cross(e1, e2)
    return np.stack([e1, e2, c / np.sqrt(np.linalg.norm(c, axis=1, keepdims=True))], axis=2)


def _reference_transfer(source_neutral, target_neutral, faces, shape):
    """Sumner-Popovic with the target's fourth vertices as unknowns too, solved by scipy.

    Independent of the C++ formulation (which eliminates the fourth vertex analytically):
    unknowns are the N vertices plus one normal vertex per triangle; each triangle asks for
    V'_j = Q_j V_j (Eq. 15-16) with Q_j = Vs~_j Vs_j^-1; vertices the source leaves in place
    are fixed to the target neutral.
    """
    n, f = len(target_neutral), len(faces)
    Q = _frames(shape, faces) @ np.linalg.inv(_frames(source_neutral, faces))
    Vt = _frames(target_neutral, faces)
    # Target frame columns as linear functions of the unknowns x = [vertices; fourth vertices].
    rows, cols, vals, rhs = [], [], [], []
    for j in range(f):
        a, b, c = faces[j]
        goal = Q[j] @ Vt[j]  # desired [e1', e2', n4'] (3x3, columns)
        inv_vt = np.linalg.inv(Vt[j])
        # |(V'_j - goal) Vt_j^-1|_F^2 == |Q'_j - Q_j|_F^2, Eq. 16
        for k in range(3):  # row k of (V' Vt^-1) = sum over columns
            r = len(rhs)
            coeff = inv_vt[:, k]  # weights of columns e1', e2', n4' in output column k
            rows += [r] * 4
            cols += [b, a, c, n + j]
            vals += [coeff[0], -coeff[0] - coeff[1] - coeff[2], coeff[1], coeff[2]]
            rhs.append(goal @ coeff)
    A = sp.csr_matrix((vals, (rows, cols)), shape=(len(rhs), n + f))
    rhs = np.array(rhs)
    fixed = np.r_[(shape == source_neutral).all(axis=1), np.zeros(f, bool)]
    x_fixed = np.r_[target_neutral, target_neutral[faces[:, 0]]]
    free = ~fixed
    b = rhs - A[:, fixed] @ x_fixed[fixed]
    Af = A[:, free]
    x = x_fixed.copy()
    x[free] = spla.splu((Af.T @ Af).tocsc()).solve(Af.T @ b)
    return x[:n]


def test_matches_a_reference_solve_with_explicit_fourth_vertices():
    vertices, faces = icosphere(2)
    target = vertices * [1.2, 0.9, 1.0] + 0.1 * np.sin(3 * vertices)
    shape = _local_bump_shapes(vertices, 1, seed=4, radius=0.6)[0]
    ours = DeformationTransfer(vertices, target, faces).transfer(shape[None])[0]
    reference = _reference_transfer(vertices, target, faces, shape)
    assert np.abs(ours - target).max() > 0.05
    assert np.abs(ours - reference).max() < 1e-8 * np.abs(reference).max()


def test_irregular_mesh_with_several_shapes_matches_the_reference_solve():
    from scipy.spatial import Delaunay
    rng = np.random.default_rng(11)
    xy = rng.uniform(-1.0, 1.0, size=(300, 2))
    faces = Delaunay(xy).simplices.astype(np.int32)
    source = np.c_[xy, 0.2 * np.cos(2 * xy[:, 0])]
    target = np.c_[1.3 * xy[:, 0], 0.8 * xy[:, 1], 0.4 * np.exp(-np.sum(xy ** 2, axis=1))]
    shapes = _local_bump_shapes(source, 3, seed=12, radius=0.5)
    ours = DeformationTransfer(source, target, faces).transfer(shapes)
    for shape, result in zip(shapes, ours):
        reference = _reference_transfer(source, target, faces, shape)
        assert np.abs(result - reference).max() < 1e-8 * np.abs(reference).max()


def test_a_second_target_on_the_same_mesh_reuses_the_analysis_and_matches_a_fresh_solve():
    """The core keeps each moving set's symbolic factorisation per mesh (a template fitted to
    many faces); the transfer onto a later target must equal the one computed from scratch."""
    from pyfacerig import geometry

    vertices, faces = icosphere(3)
    shapes = _local_bump_shapes(vertices, 5, seed=3)
    rng = np.random.default_rng(4)
    targets = [vertices * [1.1, 0.9, 1.0], vertices + 0.02 * rng.normal(size=vertices.shape)]
    geometry._LAST.clear()
    warm = [DeformationTransfer(vertices, target, faces).transfer(shapes) for target in targets]
    cold = []
    for target in targets:
        geometry._LAST.clear()
        cold.append(DeformationTransfer(vertices, target, faces).transfer(shapes))
    for a, b in zip(warm, cold):
        assert np.array_equal(a, b)
    # A mesh of the same size but other connectivity (a relabelled sphere) must not take the
    # cached order and analysis.
    permutation = rng.permutation(len(vertices))
    relabelled_faces = np.argsort(permutation)[faces].astype(np.int32)
    relabelled, relabelled_shapes = vertices[permutation], shapes[:, permutation]
    geometry._LAST.clear()
    DeformationTransfer(vertices, targets[0], faces).transfer(shapes)  # leaves the sphere's cache behind
    moved = DeformationTransfer(relabelled, targets[0][permutation], relabelled_faces).transfer(relabelled_shapes)
    geometry._LAST.clear()
    fresh = DeformationTransfer(relabelled, targets[0][permutation], relabelled_faces).transfer(relabelled_shapes)
    assert np.array_equal(moved, fresh)
