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
