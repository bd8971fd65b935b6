"""The head cut from the hm08 body: selection, Catmull-Clark refinement, triangulation, neck cap.

Every step is linear in the base mesh's vertex positions, so each one is also returned as a
sparse operator and the Face Units and identity modifiers go through exactly the same
refinement as the neutral (``refined_delta = S @ base_delta``).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .topology import boundary_loops  # noqa: F401  (re-exported: the head's neck loop)


def select_quads(vertices: np.ndarray, quads: np.ndarray, cut_height: float, cut_slope: float) -> np.ndarray:
    """Boolean mask of the quads wholly above the neck cut ``y - slope * z > cut_height``.

    The slope tilts the cut so it runs lower under the chin than at the nape, as a collar does.
    """
    level = vertices[:, 1] - cut_slope * vertices[:, 2]
    return level[quads].min(axis=1) > cut_height


def compact(quads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber the used vertices 0..n-1 in ascending base order: (new quads, base ids (n,))."""
    used = np.unique(quads)
    lookup = np.full(quads.max() + 1, -1, np.int64)
    lookup[used] = np.arange(len(used))
    return lookup[quads], used


def _edges(quads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique sorted edges (E, 2) and each quad's four edge ids (Q, 4), edge k = (q[k], q[k+1])."""
    directed = np.stack([quads, np.roll(quads, -1, axis=1)], axis=2).reshape(-1, 2)
    keyed = np.sort(directed, axis=1)
    edges, inverse = np.unique(keyed, axis=0, return_inverse=True)
    return edges, inverse.reshape(-1, 4)


def catmull_clark(quads: np.ndarray, n_vertices: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """One Catmull-Clark step on a quad mesh with boundaries.

    Returns (S, new_quads): S (n + E + Q, n) maps old positions (or any per-vertex linear
    attribute) to the refined ones; old vertices keep their indices, then one vertex per edge
    (in sorted-edge order), then one per face.  Boundary edges and vertices follow the cubic
    B-spline of the boundary curve, so the neck rim and the eye and mouth openings stay smooth.
    """
    edges, face_edges = _edges(quads)
    n, n_e, n_q = n_vertices, len(edges), len(quads)
    edge_faces = np.bincount(face_edges.ravel(), minlength=n_e)
    boundary_edge = edge_faces == 1
    # face points: the average of the four corners
    rows = [np.repeat(n + n_e + np.arange(n_q), 4)]
    cols = [quads.ravel()]
    vals = [np.full(4 * n_q, 0.25)]
    face_op = sp.csr_matrix((vals[0], (rows[0] - n - n_e, cols[0])), shape=(n_q, n))
    # edge points: interior (v1 + v2 + f1 + f2) / 4, boundary (v1 + v2) / 2
    quad_of_edge = sp.csr_matrix((np.ones(4 * n_q), (face_edges.ravel(), np.repeat(np.arange(n_q), 4))),
                                 shape=(n_e, n_q))
    ends = sp.csr_matrix((np.ones(2 * n_e), (np.repeat(np.arange(n_e), 2), edges.ravel())), shape=(n_e, n))
    interior_edge_op = 0.25 * ends + 0.25 * (quad_of_edge @ face_op)
    boundary_edge_op = 0.5 * ends
    pick_b = sp.diags(boundary_edge.astype(float))
    pick_i = sp.diags((~boundary_edge).astype(float))
    edge_op = (pick_i @ interior_edge_op + pick_b @ boundary_edge_op).tocsr()
    # vertex points
    valence = np.bincount(edges.ravel(), minlength=n).astype(float)
    boundary_vertex = np.zeros(n, bool)
    boundary_vertex[edges[boundary_edge].ravel()] = True
    incident_faces = sp.csr_matrix((np.ones(4 * n_q), (quads.ravel(), np.repeat(np.arange(n_q), 4))), shape=(n, n_q))
    faces_per_vertex = np.asarray(incident_faces.sum(axis=1)).ravel()
    incident_edges = sp.csr_matrix((np.ones(2 * n_e), (edges.ravel(), np.repeat(np.arange(n_e), 2))), shape=(n, n_e))
    # interior: ((n-3) P + 2 R + F) / n with R the mean edge midpoint, F the mean face point
    avg_face = sp.diags(1.0 / np.maximum(faces_per_vertex, 1)) @ incident_faces @ face_op
    avg_mid = sp.diags(1.0 / np.maximum(valence, 1)) @ incident_edges @ (0.5 * ends)
    nv = np.maximum(valence, 1)
    interior_vertex_op = sp.diags((nv - 3) / nv) + sp.diags(2 / nv) @ avg_mid + sp.diags(1 / nv) @ avg_face
    # boundary: (P_prev + 6 P + P_next) / 8 along the boundary curve
    b_edges = edges[boundary_edge]
    b_adj = sp.csr_matrix((np.ones(2 * len(b_edges)), (b_edges.ravel(), b_edges[:, ::-1].ravel())), shape=(n, n))
    boundary_vertex_op = 0.75 * sp.identity(n) + 0.125 * b_adj
    vertex_op = (sp.diags((~boundary_vertex).astype(float)) @ interior_vertex_op
                 + sp.diags(boundary_vertex.astype(float)) @ boundary_vertex_op)
    operator = sp.vstack([vertex_op, edge_op, face_op]).tocsr()
    operator.eliminate_zeros()
    e = n + face_edges          # edge point ids, edge k joins corner k and k+1
    f = n + n_e + np.arange(n_q)
    q = quads
    new_quads = np.concatenate([
        np.stack([q[:, 0], e[:, 0], f, e[:, 3]], 1),
        np.stack([q[:, 1], e[:, 1], f, e[:, 0]], 1),
        np.stack([q[:, 2], e[:, 2], f, e[:, 1]], 1),
        np.stack([q[:, 3], e[:, 3], f, e[:, 2]], 1),
    ])
    return operator, new_quads


def triangulate(quads: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Split each quad along its shorter diagonal (ties: 0-2); keeps the quads' orientation."""
    p = vertices[quads]
    d02 = np.linalg.norm(p[:, 0] - p[:, 2], axis=1)
    d13 = np.linalg.norm(p[:, 1] - p[:, 3], axis=1)
    use02 = d02 <= d13 + 1e-12
    a = np.where(use02[:, None], quads[:, [0, 1, 2]], quads[:, [0, 1, 3]])
    b = np.where(use02[:, None], quads[:, [0, 2, 3]], quads[:, [1, 2, 3]])
    return np.concatenate([a, b]).astype(np.int32)


def cap_loop(vertices: np.ndarray, loop: np.ndarray, rings: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Close a boundary loop with concentric rings shrinking to its centroid.

    Returns (new vertices (K, 3), new triangles (T, 3) indexing the old + new vertices).  The
    rings lie in the loop's best-fit plane, so the cap is flat: a collar can sit on it.
    """
    ring0 = vertices[loop]
    centre = ring0.mean(axis=0)
    m = len(loop)
    base = len(vertices)
    new_points, triangles = [], []
    previous = loop
    for k in range(1, rings + 1):
        t = 1.0 - k / (rings + 1)
        ring = centre + t * (ring0 - centre)
        ids = base + len(new_points) * 0 + np.arange(m) + (k - 1) * m
        new_points.append(ring)
        for j in range(m):
            a, b = previous[j], previous[(j + 1) % m]
            c, d = ids[j], ids[(j + 1) % m]
            # the loop runs like the faces beside it, so the cap's triangles go the other way
            triangles.append((b, a, c))
            triangles.append((b, c, d))
        previous = ids
    centre_id = base + rings * m
    for j in range(m):
        triangles.append((previous[(j + 1) % m], previous[j], centre_id))
    points = np.concatenate(new_points + [centre[None]])
    return points, np.asarray(triangles, dtype=np.int32)
