"""Skin topology: the MediaPipe face mesh, its refinement, and its landmark groups.

MediaPipe publishes its 468-vertex face mesh only as an edge set
(``FACEMESH_TESSELATION``).  The Python object is a frozenset, which forgets the
order, but in the module's source text the edges are listed three per triangle
((a, b), (b, c), (c, a)), so reading the text recovers the 852 triangles exactly.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

N_LANDMARKS = 468          # face-mesh landmarks (vertices of the coarse mesh)
N_LANDMARKS_REFINED = 478  # plus the ten iris landmarks of refine_landmarks=True
N_COARSE_TRIANGLES = 852


def _connections_source() -> str:
    import mediapipe.python.solutions.face_mesh_connections as fmc
    return Path(fmc.__file__).read_text(encoding="utf-8")


def connection_group(name: str) -> list[tuple[int, int]]:
    """Edges of one ``FACEMESH_*`` group in source order, e.g. ``"LIPS"`` or ``"LEFT_EYE"``."""
    text = _connections_source()
    match = re.search(r"^FACEMESH_%s = frozenset\(\[(.*?)\]\)" % re.escape(name), text,
                      flags=re.S | re.M)
    if match is None:
        raise KeyError(f"no FACEMESH_{name} list in mediapipe's face_mesh_connections")
    return [tuple(pair) for pair in ast.literal_eval("[" + match.group(1) + "]")]


def coarse_triangles() -> np.ndarray:
    """(852, 3) int32 triangles of the MediaPipe face mesh, read from the edge triples."""
    edges = connection_group("TESSELATION")
    if len(edges) != 3 * N_COARSE_TRIANGLES:
        raise RuntimeError(f"expected {3 * N_COARSE_TRIANGLES} tessellation edges, got {len(edges)}")
    triangles = []
    for k in range(0, len(edges), 3):
        (a, b), (b2, c), (c2, a2) = edges[k:k + 3]
        if b != b2 or c != c2 or a != a2:
            raise RuntimeError(f"tessellation edges {k}..{k + 2} do not close a triangle")
        triangles.append((a, b, c))
    return np.asarray(triangles, dtype=np.int32)


def orient_faces(faces: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Orient all triangles counter-clockwise seen from +Z (the face looks toward +Z).

    MediaPipe's triangles are already consistently oriented (no directed edge
    appears twice); only the global sign is chosen here, by the majority of
    projected areas -- a per-triangle test would be wrong where the surface
    turns away from the camera at the sides of the face.
    """
    faces = np.array(faces, dtype=np.int32)
    directed = np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2)
    if len(np.unique(directed, axis=0)) != len(directed):
        raise RuntimeError("face mesh triangles are not consistently oriented")
    a, b, c = (vertices[faces[:, i], :2] for i in range(3))
    signed = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    if np.sum(signed > 0) < np.sum(signed < 0):
        faces = faces[:, [0, 2, 1]]
    return faces


def edges_of(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges (E, 2) sorted, and for each face its three edge ids (F, 3).

    Face corner k's opposite... edge k joins corners k and k+1.
    """
    directed = np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2)
    undirected = np.sort(directed, axis=1)
    unique, inverse = np.unique(undirected, axis=0, return_inverse=True)
    return unique.astype(np.int64), inverse.reshape(-1, 3)


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Boundary loops as vertex arrays, each oriented like the faces beside it, longest first."""
    directed = np.stack([faces, np.roll(faces, -1, axis=1)], axis=2).reshape(-1, 2)
    keys = set(map(tuple, directed.tolist()))
    nxt = {}
    for a, b in directed.tolist():
        if (b, a) not in keys:
            nxt[a] = b
    loops, seen = [], set()
    for start in sorted(nxt):
        if start in seen:
            continue
        loop, v = [], start
        while v not in seen and v in nxt:      # a non-manifold rim may end an open walk
            seen.add(v)
            loop.append(v)
            v = nxt[v]
        loops.append(np.asarray(loop, dtype=np.int64))
    loops.sort(key=len, reverse=True)
    return loops


def subdivide(vertices: np.ndarray, faces: np.ndarray, levels: int = 2
              ) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix, list[dict]]:
    """Refine by 1-to-4 splits; old vertices stay put and keep their indices.

    New vertices are placed by a thin-plate fit: starting from edge midpoints,
    they minimise the squared uniform Laplacian of the refined mesh with every
    original vertex held fixed (boundary vertices use the 1-D Laplacian along
    their boundary curve so the rims stay on smooth curves).  The result
    interpolates the landmarks and is a linear function of the coarse
    positions, returned as the sparse (N_fine, N_coarse) operator ``S`` so any
    per-landmark attribute (image coordinates, displacements) refines the same
    way: ``fine = S @ coarse``.  ``splits[k]`` maps each sorted edge (a, b) of
    level k to the vertex inserted on it, so coarse contours can be followed
    on the refined mesh (:func:`refined_chain`).
    """
    n_coarse = len(vertices)
    midpoint_op = sp.identity(n_coarse, format="csr")
    splits = []
    for _ in range(levels):
        n = midpoint_op.shape[0]
        edges, face_edges = edges_of(faces)
        mid_ids = n + np.arange(len(edges))
        splits.append({(int(a), int(b)): int(m) for (a, b), m in zip(edges, mid_ids)})
        rows = np.concatenate([np.arange(n), np.repeat(mid_ids, 2)])
        cols = np.concatenate([np.arange(n), edges.ravel()])
        vals = np.concatenate([np.ones(n), np.full(2 * len(edges), 0.5)])
        step = sp.csr_matrix((vals, (rows, cols)), shape=(n + len(edges), n))
        midpoint_op = (step @ midpoint_op).tocsr()
        a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
        ab, bc, ca = (mid_ids[face_edges[:, k]] for k in range(3))
        faces = np.concatenate([
            np.stack([a, ab, ca], 1), np.stack([ab, b, bc], 1),
            np.stack([ca, bc, c], 1), np.stack([ab, bc, ca], 1)]).astype(np.int32)
    n_fine = midpoint_op.shape[0]
    lap = _smoothing_laplacian(faces, n_fine)
    free = np.arange(n_coarse, n_fine)
    fixed = np.arange(n_coarse)
    # minimise |L x|^2 over the free rows with x[fixed] = coarse: (L_f^T L_f) x_f = -L_f^T L_c x_c
    l_free, l_fixed = lap[:, free], lap[:, fixed]
    normal = (l_free.T @ l_free).tocsc()
    solve = spla.factorized(normal)
    rhs_op = -(l_free.T @ l_fixed).toarray()              # (n_free, n_coarse)
    free_op = np.column_stack([solve(rhs_op[:, j]) for j in range(n_coarse)])
    free_op[np.abs(free_op) < 1e-12] = 0.0
    op = sp.vstack([sp.identity(n_coarse, format="csr"), sp.csr_matrix(free_op)]).tocsr()
    return op @ vertices, faces, op, splits


def refined_chain(chain: list[int], splits: list[dict]) -> np.ndarray:
    """Refined vertex ids along a path of coarse vertices joined by coarse edges."""
    path = list(chain)
    for level in splits:
        out = [path[0]]
        for a, b in zip(path[:-1], path[1:]):
            out += [level[(min(a, b), max(a, b))], b]
        path = out
    return np.asarray(path, dtype=np.int64)


def _smoothing_laplacian(faces: np.ndarray, n: int) -> sp.csr_matrix:
    """Uniform Laplacian; boundary vertices see only their two boundary neighbours."""
    edges, _ = edges_of(faces)
    adjacency = sp.coo_matrix((np.ones(2 * len(edges)),
                               (edges.ravel(), edges[:, ::-1].ravel())), shape=(n, n)).tocsr()
    on_boundary = np.zeros(n, bool)
    boundary_adj = sp.lil_matrix((n, n))
    for loop in boundary_loops(faces):
        on_boundary[loop] = True
        nxt = np.roll(loop, -1)
        boundary_adj[loop, nxt] = 1.0
        boundary_adj[nxt, loop] = 1.0
    adjacency = adjacency.tolil()
    adjacency[on_boundary] = boundary_adj[on_boundary]
    adjacency = adjacency.tocsr()
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return (sp.diags(1.0 / degree) @ adjacency - sp.identity(n)).tocsr()


def vertex_adjacency(faces: np.ndarray, n: int) -> sp.csr_matrix:
    """Symmetric 0/1 vertex adjacency matrix."""
    edges, _ = edges_of(faces)
    return sp.coo_matrix((np.ones(2 * len(edges)), (edges.ravel(), edges[:, ::-1].ravel())),
                         shape=(n, n)).tocsr()


def mirror_map(points: np.ndarray) -> np.ndarray:
    """Left/right correspondence of a near-symmetric point set whose symmetry plane is x=0.

    Matches each point to the mirrored point set by a minimum-cost assignment,
    so the map is a permutation; the caller checks it is an involution.
    """
    from scipy.optimize import linear_sum_assignment
    mirrored = points * np.array([-1.0, 1.0, 1.0])
    cost = np.linalg.norm(points[:, None, :] - mirrored[None, :, :], axis=2)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(points), dtype=np.int64)
    perm[rows] = cols
    return perm


def symmetrize_triangulation(faces: np.ndarray, mirror: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Make the triangulation mirror-symmetric under the landmark permutation ``mirror``.

    MediaPipe splits a few quads (six per side in 0.10.21) along different
    diagonals on the two sides.  Those on the subject's right (x < 0) are replaced by
    the mirror images of their left-side counterparts, so Left/Right expression pairs
    can be exact mirror images vertex by vertex.  The triangle count is unchanged.
    """
    present = {tuple(sorted(t)) for t in faces.tolist()}
    asym = np.array([tuple(sorted(mirror[t])) not in present for t in faces.tolist()])
    side = vertices[faces, 0].mean(axis=1)
    if np.any(np.abs(side[asym]) < 1e-4):
        raise RuntimeError("an asymmetric triangle straddles the symmetry plane")
    left = faces[asym & (side > 0)]
    mirrored = mirror[left][:, [0, 2, 1]]          # reflection reverses orientation
    out = np.vstack([faces[~(asym & (side < 0))], mirrored]).astype(np.int32)
    if len(out) != len(faces):
        raise RuntimeError("symmetrising the triangulation changed the triangle count")
    directed = np.stack([out, np.roll(out, -1, axis=1)], axis=2).reshape(-1, 2)
    if len(np.unique(directed, axis=0)) != len(directed):
        raise RuntimeError("symmetrised triangulation is not consistently oriented")
    return out


def fine_mirror(coarse_mirror: np.ndarray, n_coarse: int, splits: list[dict],
                fine_vertices: np.ndarray) -> np.ndarray:
    """Mirror permutation of the refined vertices, built combinatorially and checked.

    The vertex inserted on edge (a, b) mirrors to the one inserted on
    (mirror a, mirror b).  (Matching positions instead would be ambiguous where
    vertices coincide, as the closed lips' inner contours do.)
    """
    mirror = np.full(len(fine_vertices), -1, dtype=np.int64)
    mirror[:n_coarse] = coarse_mirror[:n_coarse]
    for level in splits:
        for (a, b), mid in level.items():
            ma, mb = mirror[a], mirror[b]
            mirror[mid] = level[(min(ma, mb), max(ma, mb))]
    check_mirror(mirror, fine_vertices)
    return mirror


def check_mirror(mirror: np.ndarray, vertices: np.ndarray, tol: float = 1e-9) -> None:
    """Raise unless ``mirror`` is an involution taking each vertex to its x-reflection."""
    if (mirror < 0).any() or not np.array_equal(mirror[mirror], np.arange(len(mirror))):
        raise RuntimeError("mirror map is not an involution")
    error = np.abs(vertices[mirror] * [-1.0, 1.0, 1.0] - vertices).max()
    if error > tol:
        raise RuntimeError(f"mesh is not mirror-symmetric (error {error:.3g} m)")
