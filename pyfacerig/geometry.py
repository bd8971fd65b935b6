"""Mesh deformation solvers: Laplacian deformation and deformation transfer.

Thin, validating wrappers around the C++ core (``pyfacerig._core``).  Every
array that enters here is checked at the boundary; a problem raises
:class:`pyfacerig.errors.InvalidInputError` naming the argument and the fault,
so the solvers never see NaN, bad indices, degenerate triangles or a singular
system.  See docs/geometry.md for the maths and the design choices.
"""
from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from . import _core
from .errors import InvalidInputError

__all__ = ["LaplacianDeformer", "DeformationTransfer", "vertex_normal_deltas"]

LAPLACIANS = ("cotangent", "uniform")

# The last solver data per mesh size: the next precompute on the same mesh (a template fitted
# to another face) hands it to the core as ``like``, which reuses its ordering and symbolic
# factorisation when the new system's sparsity pattern is the same (the core checks that, so
# a different mesh of the same size only costs the check).  Numbers are identical either way.
_LAST: dict = {}


def _remember(key, data) -> None:
    if key not in _LAST and len(_LAST) >= 8:
        _LAST.pop(next(iter(_LAST)))
    _LAST[key] = data


# --------------------------------------------------------------------------- checks
def _as_points(name: str, array, rows: int | None = None) -> np.ndarray:
    """(N,3) finite float64, C-contiguous."""
    try:
        points = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a numeric (N, 3) array: {exc}") from None
    if points.ndim != 2 or points.shape[1] != 3:
        raise InvalidInputError(f"{name} must have shape (N, 3), got {points.shape}")
    if rows is not None and points.shape[0] != rows:
        raise InvalidInputError(f"{name} must have {rows} rows, got {points.shape[0]}")
    if points.shape[0] == 0:
        raise InvalidInputError(f"{name} is empty")
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        raise InvalidInputError(
            f"{name} contains non-finite values (NaN or inf) in {int(bad.sum())} row(s), "
            f"first at row {int(np.flatnonzero(bad)[0])}")
    return np.ascontiguousarray(points)


def _as_indices(name: str, array, ndim: int) -> np.ndarray:
    """Integer array of the given rank; floats and bools are refused, not rounded."""
    indices = np.asarray(array)
    if indices.dtype.kind not in "iu":
        raise InvalidInputError(f"{name} must hold integers, got dtype {indices.dtype}")
    if indices.ndim != ndim:
        raise InvalidInputError(f"{name} must be a {ndim}-D array, got shape {indices.shape}")
    return indices


def _as_faces(faces, num_vertices: int) -> np.ndarray:
    """(F,3) int32 triangle indices into num_vertices, each triangle with 3 distinct corners."""
    faces = _as_indices("faces", faces, 2)
    if faces.shape[1] != 3 or faces.shape[0] == 0:
        raise InvalidInputError(f"faces must have shape (F, 3) with F > 0, got {faces.shape}")
    out_of_range = (faces < 0) | (faces >= num_vertices)
    if out_of_range.any():
        f = int(np.flatnonzero(out_of_range.any(axis=1))[0])
        raise InvalidInputError(
            f"faces index out of range: face {f} is {faces[f].tolist()} but there are "
            f"{num_vertices} vertices")
    repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
    if repeated.any():
        f = int(np.flatnonzero(repeated)[0])
        raise InvalidInputError(f"faces has a repeated vertex index: face {f} is {faces[f].tolist()}")
    used = np.zeros(num_vertices, dtype=bool)
    used[faces.ravel()] = True
    if not used.all():
        v = int(np.flatnonzero(~used)[0])
        raise InvalidInputError(
            f"vertex {v} is not used by any face ({int((~used).sum())} unused vertices); "
            "remove unreferenced vertices first")
    return np.ascontiguousarray(faces, dtype=np.int32)


def _check_triangle_areas(name: str, vertices: np.ndarray, faces: np.ndarray) -> None:
    """Reject zero-area triangles: they have no normal, no cotangents, no frame (Eq. 14)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    doubled_area = np.linalg.norm(np.cross(b - a, c - a), axis=1)
    longest = np.max([np.sum((b - a) ** 2, axis=1), np.sum((c - b) ** 2, axis=1),
                      np.sum((a - c) ** 2, axis=1)], axis=0)
    # Scale-free test: area relative to the squared longest edge (sin of the
    # sharpest angle, roughly).  1e-12 only catches collinear/coincident corners.
    degenerate = ~(doubled_area > 1e-12 * longest)
    if degenerate.any():
        f = int(np.flatnonzero(degenerate)[0])
        raise InvalidInputError(
            f"{name} has {int(degenerate.sum())} degenerate (zero-area) triangle(s), first is face {f} "
            f"{faces[f].tolist()}")


def _vertex_components(num_vertices: int, faces: np.ndarray) -> np.ndarray:
    """Connected-component label of every vertex, over the mesh edges."""
    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    graph = coo_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)),
                       shape=(num_vertices, num_vertices))
    return connected_components(graph, directed=False)[1]


def _as_anchor_ids(anchor_ids, num_vertices: int) -> np.ndarray:
    ids = _as_indices("anchor_ids", anchor_ids, 1)
    if ids.size == 0:
        raise InvalidInputError("anchor_ids is empty; at least one anchor is needed")
    bad = (ids < 0) | (ids >= num_vertices)
    if bad.any():
        raise InvalidInputError(
            f"anchor_ids out of range: {int(ids[bad][0])} is not in [0, {num_vertices})")
    unique, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise InvalidInputError(f"anchor_ids has repeated index {int(unique[counts > 1][0])}")
    return np.ascontiguousarray(ids, dtype=np.int32)


def _positive_finite(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not (np.isfinite(value) and value > 0.0):
        raise InvalidInputError(f"{name} must be finite and > 0, got {value}")
    return value


# --------------------------------------------------------------------------- Laplacian
class LaplacianDeformer:
    """Moves anchor vertices and lets the rest of the mesh follow (Pan et al., Eq. 9-10).

    Minimises ``sum_i |L(v_i) - L_i'|^2 + weight * sum_k |v_k - p_k|^2`` where
    ``L`` is the row-normalised uniform (Eq. 9) or cotangent Laplacian and
    ``L_i'`` are the rest mesh's Laplacian coordinates.  The sparse Cholesky
    factorisation happens here, once; :meth:`solve` only back-substitutes.

    Parameters
    ----------
    vertices : (N, 3) float64 rest positions.
    faces : (F, 3) int triangle indices; every vertex must be used.
    anchor_ids : (K,) int distinct vertex indices; every connected component
        of the mesh needs at least one, otherwise the system is singular.
    weight : float > 0, the anchor weight lambda.  Anchors are soft
        constraints; larger weights reproduce them more closely.
    laplacian : "cotangent" (default) or "uniform".
    rotation_aware : if True, :meth:`solve` refines the plain solution with
        ``rotation_iterations`` local/global steps that rotate each vertex's
        Laplacian coordinate with its one-ring (same factorisation reused).
    rotation_iterations : int >= 1, used when rotation_aware is True.
    """

    def __init__(self, vertices, faces, anchor_ids, weight: float = 100.0,
                 laplacian: str = "cotangent", rotation_aware: bool = False,
                 rotation_iterations: int = 10):
        vertices = _as_points("vertices", vertices)
        faces = _as_faces(faces, vertices.shape[0])
        _check_triangle_areas("mesh", vertices, faces)
        anchor_ids = _as_anchor_ids(anchor_ids, vertices.shape[0])
        weight = _positive_finite("weight", weight)
        if laplacian not in LAPLACIANS:
            raise InvalidInputError(f"laplacian must be one of {LAPLACIANS}, got {laplacian!r}")
        if not isinstance(rotation_iterations, (int, np.integer)) or rotation_iterations < 1:
            raise InvalidInputError(f"rotation_iterations must be an int >= 1, got {rotation_iterations!r}")

        labels = _vertex_components(vertices.shape[0], faces)
        anchored = np.zeros(labels.max() + 1, dtype=bool)
        anchored[labels[anchor_ids]] = True
        if not anchored.all():
            free = int(np.flatnonzero(~anchored)[0])
            members = np.flatnonzero(labels == free)
            raise InvalidInputError(
                f"anchor_ids leave a connected component of {members.size} vertices (containing vertex "
                f"{int(members[0])}) without an anchor; the system would be singular")

        key = ("laplacian", vertices.shape[0], faces.shape[0], anchor_ids.size, laplacian)
        try:
            self._data = _core.laplacian_deformation_precompute(vertices, faces, anchor_ids, weight, laplacian,
                                                                like=_LAST.get(key))
        except ValueError as exc:
            raise InvalidInputError(f"Laplacian deformation: {exc}") from None
        _remember(key, self._data)
        self.num_vertices = vertices.shape[0]
        self.anchor_ids = anchor_ids
        self.weight = weight
        self.laplacian = laplacian
        self.rotation_aware = bool(rotation_aware)
        self.rotation_iterations = int(rotation_iterations)

    def solve(self, anchor_positions) -> np.ndarray:
        """(K, 3) target positions of the anchors -> (N, 3) float64 deformed vertices."""
        anchor_positions = _as_points("anchor_positions", anchor_positions, rows=self.anchor_ids.size)
        iterations = self.rotation_iterations if self.rotation_aware else 0
        try:
            return _core.laplacian_deformation_solve(self._data, anchor_positions, iterations)
        except ValueError as exc:
            raise InvalidInputError(f"Laplacian deformation: {exc}") from None


# --------------------------------------------------------------------------- transfer
class DeformationTransfer:
    """Carries expression shapes from a source face to a target face of the same topology.

    Sumner & Popovic deformation transfer as used by Pan et al. (Eq. 14-16):
    each triangle's deformation ``source_neutral -> source_shape`` (with the
    fourth, normal-offset vertex of Eq. 14) is applied to the same triangle
    of ``target_neutral``, and the target vertices are solved in least squares.

    Translation is fixed the way a rig needs it: vertices a source shape leaves
    exactly in place stay exactly at ``target_neutral`` (hard constraints), so
    identical neutrals give back the source shapes.  The transform is applied in
    world axes: the result is covariant under translation and uniform scale of
    the target but NOT under rotation, so align the template to the target
    first (see docs/geometry.md).

    Parameters
    ----------
    source_neutral, target_neutral : (N, 3) float64, same topology.
    faces : (F, 3) int triangles shared by both; every vertex must be used.
    """

    def __init__(self, source_neutral, target_neutral, faces):
        source_neutral = _as_points("source_neutral", source_neutral)
        target_neutral = _as_points("target_neutral", target_neutral)
        if source_neutral.shape != target_neutral.shape:
            raise InvalidInputError(
                f"source_neutral {source_neutral.shape} and target_neutral {target_neutral.shape} "
                "must have the same shape")
        faces = _as_faces(faces, source_neutral.shape[0])
        _check_triangle_areas("source_neutral", source_neutral, faces)
        _check_triangle_areas("target_neutral", target_neutral, faces)
        key = ("transfer", source_neutral.shape[0], faces.shape[0])
        try:
            self._data = _core.deformation_transfer_precompute(source_neutral, target_neutral, faces,
                                                               like=_LAST.get(key))
        except ValueError as exc:
            raise InvalidInputError(f"deformation transfer: {exc}") from None
        _remember(key, self._data)
        self.num_vertices = source_neutral.shape[0]

    def transfer(self, source_shapes) -> np.ndarray:
        """(M, N, 3) source expression shapes -> (M, N, 3) float64 target shapes."""
        try:
            shapes = np.asarray(source_shapes, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"source_shapes must be a numeric (M, N, 3) array: {exc}") from None
        n = self.num_vertices
        if shapes.ndim != 3 or shapes.shape[1:] != (n, 3):
            raise InvalidInputError(f"source_shapes must have shape (M, {n}, 3), got {shapes.shape}")
        bad = ~np.isfinite(shapes).all(axis=(1, 2))
        if bad.any():
            raise InvalidInputError(
                f"source_shapes contains non-finite values (NaN or inf) in shape {int(np.flatnonzero(bad)[0])}")
        if shapes.shape[0] == 0:
            return np.zeros((0, n, 3))
        flat = np.ascontiguousarray(shapes.reshape(shapes.shape[0], 3 * n))
        try:
            out = _core.deformation_transfer(self._data, flat)
        except ValueError as exc:
            raise InvalidInputError(f"deformation transfer: {exc}") from None
        return out.reshape(shapes.shape)


# --------------------------------------------------------------------------- normals
def vertex_normal_deltas(vertices, faces, neutral_normals, shape_deltas, threshold: float = 1e-3) -> np.ndarray:
    """How each blendshape turns the vertex normals: (M, N, 3) float32.

    vertices (N, 3) the neutral; faces (F, 3) int; neutral_normals (N, 3) its unit area-weighted
    vertex normals; shape_deltas (M, N, 3) position deltas.  Per shape and vertex: the unit
    area-weighted normal of ``vertices + shape_deltas[s]`` minus the neutral's, on the corners
    of the triangles the shape moves; zero elsewhere and where no component reaches
    ``threshold`` (1e-3 is ~0.06 degrees, invisible, and lets writers store targets sparsely).
    """
    vertices = _as_points("vertices", vertices)
    neutral_normals = _as_points("neutral_normals", neutral_normals, rows=vertices.shape[0])
    faces = _as_indices("faces", faces, 2)
    if faces.shape[1:] != (3,):
        raise InvalidInputError(f"faces must have shape (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= vertices.shape[0]):
        raise InvalidInputError(f"faces index out of range for {vertices.shape[0]} vertices")
    try:
        deltas = np.asarray(shape_deltas, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"shape_deltas must be a numeric (M, N, 3) array: {exc}") from None
    if deltas.ndim != 3 or deltas.shape[1:] != vertices.shape:
        raise InvalidInputError(f"shape_deltas must have shape (M, {vertices.shape[0]}, 3), got {deltas.shape}")
    if not np.isfinite(deltas).all():
        raise InvalidInputError("shape_deltas contains non-finite values (NaN or inf)")
    if deltas.shape[0] == 0 or faces.shape[0] == 0:
        return np.zeros(deltas.shape, dtype=np.float32)
    flat = np.ascontiguousarray(deltas.reshape(deltas.shape[0], -1))
    try:
        out = _core.vertex_normal_deltas(vertices, np.ascontiguousarray(faces, dtype=np.int32), neutral_normals,
                                         flat, float(threshold))
    except ValueError as exc:
        raise InvalidInputError(f"vertex normal deltas: {exc}") from None
    return out.reshape(deltas.shape)
