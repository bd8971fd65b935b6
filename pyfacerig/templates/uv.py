"""Fixed UV layout of the skin: one seamless chart with holes, inside a square.

Floater's convex-combination theorem: for a triangulated disk, if the boundary
goes to a convex polygon and every interior vertex is a convex combination of
its neighbours (positive weights), the map is one-to-one -- no flips and no
overlaps.  The skin is a disk with three holes (eyes, mouth), so each hole is
first closed with a fan to a temporary centre vertex; the holes then become
ordinary interior, and dropping the fans afterwards leaves a valid chart.
Mean-value weights (Floater 2003) are positive and keep the layout close to
conformal; the outer rim goes to the square's border by arc length.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from .topology import boundary_loops

UV_MARGIN = 0.01   # gutter around the chart so mip-mapping does not bleed in the background


def _mean_value_weights(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """w_ij = (tan(a/2) + tan(b/2)) / |v_i - v_j|, with a, b the angles at v_i beside edge ij."""
    n = len(vertices)
    rows, cols, vals = [], [], []
    for k in range(3):
        i, j, l = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
        e_ij = vertices[j] - vertices[i]
        e_il = vertices[l] - vertices[i]
        len_ij = np.linalg.norm(e_ij, axis=1)
        len_il = np.linalg.norm(e_il, axis=1)
        cos = np.einsum("ij,ij->i", e_ij, e_il) / (len_ij * len_il)
        half_tan = np.tan(0.5 * np.arccos(np.clip(cos, -1.0, 1.0)))
        # the angle at i contributes to edges ij and il
        rows += [i, i]
        cols += [j, l]
        vals += [half_tan / len_ij, half_tan / len_il]
    w = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, n)).tocsr()
    return w


def _square_boundary(vertices: np.ndarray, loop: np.ndarray) -> np.ndarray:
    """Place the outer loop on the unit square's border by arc length, corners on the diagonals."""
    pts = vertices[loop, :2]
    centre = pts.mean(0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    corner_dirs = np.radians([45.0, 135.0, -135.0, -45.0])        # top-right, top-left, ...
    corner_idx = [int(np.argmin(np.abs(np.angle(np.exp(1j * (angles - a)))))) for a in corner_dirs]
    # walk the loop from the top-right corner; the loop runs counter-clockwise seen from +Z
    start = corner_idx[0]
    order = np.roll(np.arange(len(loop)), -start)
    square_corners = np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]])
    positions = np.zeros((len(loop), 2))
    marks = [0] + [int(np.where(order == c)[0][0]) for c in corner_idx[1:]] + [len(loop)]
    if marks != sorted(marks):
        raise RuntimeError("outer rim corners are not in counter-clockwise order")
    closed = np.vstack([pts[order], pts[order[:1]]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    for side in range(4):
        a, b = marks[side], marks[side + 1]
        lengths = np.concatenate([[0.0], np.cumsum(seg[a:b])])
        t = lengths[:-1] / lengths[-1]
        p0, p1 = square_corners[side], square_corners[(side + 1) % 4]
        positions[order[a:b]] = p0 + t[:, None] * (p1 - p0)
    return positions


def parametrize(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 2) float64 UVs in [0, 1], glTF orientation (v grows downward, forehead at the top)."""
    loops = boundary_loops(faces)
    outer, holes = loops[0], loops[1:]
    n = len(vertices)
    fill_vertices = [vertices]
    fill_faces = [faces]
    for h, loop in enumerate(holes):
        centre_id = n + h
        fill_vertices.append(vertices[loop].mean(0, keepdims=True))
        # the hole loop runs against its faces, so (next, current, centre) keeps orientation
        fill_faces.append(np.stack([np.roll(loop, -1), loop, np.full(len(loop), centre_id)], 1))
    all_vertices = np.vstack(fill_vertices)
    all_faces = np.vstack(fill_faces)
    # Mean-value weights come from the real triangles only; a closed mouth is a slit whose
    # fan would be degenerate, so the temporary spokes get a uniform positive weight
    # (Floater's theorem needs positivity, not any particular value).
    weights = _mean_value_weights(np.vstack(fill_vertices[:1]), faces)
    weights.resize((len(all_vertices), len(all_vertices)))
    spoke_rows, spoke_cols = [], []
    for h, loop in enumerate(holes):
        spoke_rows += [loop, np.full(len(loop), n + h)]
        spoke_cols += [np.full(len(loop), n + h), loop]
    spoke_len = np.mean(np.linalg.norm(vertices[faces[:, 0]] - vertices[faces[:, 1]], axis=1))
    rows, cols = np.concatenate(spoke_rows), np.concatenate(spoke_cols)
    weights = (weights + sp.coo_matrix((np.full(len(rows), 1.0 / spoke_len), (rows, cols)),
                                       shape=weights.shape)).tocsr()
    total = len(all_vertices)
    boundary_uv = _square_boundary(all_vertices, outer)
    interior = np.setdiff1d(np.arange(total), outer)
    lap = sp.diags(np.asarray(weights.sum(axis=1)).ravel()) - weights
    a_ii = lap[interior][:, interior].tocsc()
    a_ib = lap[interior][:, outer]
    uv = np.zeros((total, 2))
    uv[outer] = boundary_uv
    solve = spla.factorized(a_ii)
    rhs = -(a_ib @ boundary_uv)
    uv[interior] = np.column_stack([solve(rhs[:, 0]), solve(rhs[:, 1])])
    uv = uv[:n]
    uv = UV_MARGIN + (1.0 - 2.0 * UV_MARGIN) * uv
    uv[:, 1] = 1.0 - uv[:, 1]                  # glTF: v = 0 is the top row of the image
    return uv


def signed_areas(uvs: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Signed UV areas in the (u, -v) plane: positive where the chart keeps the faces' orientation."""
    a, b, c = uvs[faces[:, 0]], uvs[faces[:, 1]], uvs[faces[:, 2]]
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    return -0.5 * cross


def fill_ratio(uvs: np.ndarray, faces: np.ndarray) -> float:
    """Fraction of the unit square covered by the chart."""
    return float(np.abs(signed_areas(uvs, faces)).sum())


def loop_area(uvs: np.ndarray, loop: np.ndarray) -> float:
    """Unsigned area enclosed by a boundary loop in UV space (shoelace formula)."""
    p = uvs[loop]
    q = np.roll(p, -1, axis=0)
    return 0.5 * abs(float(np.sum(p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1])))


def coverage_counts(uvs: np.ndarray, faces: np.ndarray, resolution: int) -> np.ndarray:
    """How many triangles strictly contain each texel centre of a resolution^2 grid."""
    counts = np.zeros(resolution * resolution, np.int32)
    pts = uvs * resolution
    a, b, c = pts[faces[:, 0]], pts[faces[:, 1]], pts[faces[:, 2]]
    lo = np.floor(np.minimum(np.minimum(a, b), c)).astype(int).clip(0, resolution - 1)
    hi = np.ceil(np.maximum(np.maximum(a, b), c)).astype(int).clip(0, resolution - 1)
    nx, ny = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    t = np.repeat(np.arange(len(faces)), nx * ny)
    local = np.arange(t.size) - np.repeat(np.cumsum(nx * ny) - nx * ny, nx * ny)
    px, py = lo[t, 0] + local % nx[t], lo[t, 1] + local // nx[t]
    cx, cy = px + 0.5, py + 0.5

    def edge(p, q):
        return (q[t, 0] - p[t, 0]) * (cy - p[t, 1]) - (q[t, 1] - p[t, 1]) * (cx - p[t, 0])
    e0, e1, e2 = edge(a, b), edge(b, c), edge(c, a)
    inside = ((e0 > 0) & (e1 > 0) & (e2 > 0)) | ((e0 < 0) & (e1 < 0) & (e2 < 0))
    np.add.at(counts, py[inside] * resolution + px[inside], 1)
    return counts.reshape(resolution, resolution)
