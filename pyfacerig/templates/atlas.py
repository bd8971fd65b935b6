"""UV atlas of a closed head, laid out as a game artist would.

Charts
------
* ``face``: the face region (faces whose three vertices are in ``face_mask``), minus the
  pockets.  One chart, no seam across it; its holes are the eye and mouth openings.
* ``head_left`` / ``head_right``: the rest of the skin (scalp, sides, ears, neck), cut in two
  along the midplane x = 0.  The seams run down the back midline from the crown to the neck,
  over the scalp midline to the face border, and under the chin from the face border down the
  front of the neck; with the face chart's border (already inside the hairline/jaw margin)
  that is where an artist hides them.  No seam crosses the face.
* pockets (``mouth_interior``, ``eye_socket_left``/``_right``, ...): the parts of the surface
  that lie inside the head (the mouth sac behind the lips, the sockets behind the lids).  They
  are found geometrically (see :func:`find_pockets`), get small charts and flat colours.
* ``neck_cap`` (optional): the faces given as ``cap_faces``.

Flattening: skin charts start from least-squares conformal maps (LSCM, Levy et al. 2002) and
are relaxed by as-rigid-as-possible iterations (Liu et al. 2008), which even out the texel
density that LSCM lets drift (up to 6x across the face) while staying close to conformal;
the chart's holes are held open by a scaffold of guard triangles so slit-like openings (the
lips) cannot cross.  Pockets and the cap use Floater's mean-value map onto a disk, one-to-one
by construction.  Every chart is verified (signed areas and a rasterised self-overlap test)
and falls back to a safer map if it fails.  Charts are then scaled to a texel density, the
face denser so that it holds ``face_share`` of the used texels, and shelf-packed into the
unit square with ``gutter_px`` texels of gutter at ``size``.

Coordinates: glTF convention, (u, v) in [0, 1], v = 0 at the top row; charts are turned
upright (the head's +Y points to -v) before packing; the packer may turn side charts by a
quarter turn, never the face.  Everything is deterministic: no random numbers, stable sorts,
direct sparse solvers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.sparse.csgraph import connected_components

from ..errors import InvalidInputError
from .topology import boundary_loops

POCKET_CLOSING = 0.03      # closing radius, fraction of the head's bounding-box diagonal
POCKET_DEPTH = 0.012       # a face this far (fraction of the diagonal) inside the closed hull is a pocket
POCKET_VOXELS = 150        # voxels along the longest bounding-box side for pocket finding
ARAP_ITERATIONS = 12       # local-global rounds after the conformal start
OVERLAP_RESOLUTION = 512   # grid across a chart for its self-overlap test
FOLD_COS = 0.3            # a lining face turned more than ~72 degrees from the hull's outward direction
POCKET_MIN_AREA = 0.002    # pocket pieces smaller than this fraction of the surface stay with their neighbours
POCKET_DENSITY = 0.25      # texel density of pockets and the cap relative to the head charts
FACE_SHARE = 0.55          # target share of used texels held by the face chart


@dataclass
class Atlas:
    """A UV layout of a mesh.

    welded_ids: (M,) int32, source vertex of each UV vertex (seams duplicate vertices).
    faces: (F, 3) int32 into the M UV vertices, same triangle order as the input faces.
    uvs: (M, 2) float32 in [0, 1], glTF convention (v = 0 is the top row).
    charts: (F,) int32 chart id of each face; chart_names[i] names chart i.
    size, gutter_px: the texture size and gutter the packing was made for.
    """

    welded_ids: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    charts: np.ndarray
    chart_names: list
    size: int
    gutter_px: int


# ---------------------------------------------------------------------------- topology helpers
def _face_adjacency(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of faces sharing an edge: (face_a, face_b, edge (K, 2) sorted vertex ids)."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    owner = np.tile(np.arange(len(faces)), 3)
    e = np.sort(e, axis=1)
    order = np.lexsort((owner, e[:, 1], e[:, 0]))
    e, owner = e[order], owner[order]
    same = np.all(e[1:] == e[:-1], axis=1)
    k = np.flatnonzero(same)
    return owner[k], owner[k + 1], e[k]


def _components(n_faces: int, fa: np.ndarray, fb: np.ndarray, keep: np.ndarray,
                subset: np.ndarray) -> np.ndarray:
    """Connected components of the faces in ``subset`` (bool (F,)) over adjacencies ``keep``."""
    ok = keep & subset[fa] & subset[fb]
    g = sp.coo_matrix((np.ones(ok.sum()), (fa[ok], fb[ok])), shape=(n_faces, n_faces))
    _, labels = connected_components(g, directed=False)
    labels = np.where(subset, labels, -1)
    # renumber by first face, so labels do not depend on scipy's internal order
    uniq, first = np.unique(labels[subset], return_index=True)
    rank = np.empty(len(uniq), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    out = np.full(n_faces, -1, np.int64)
    out[subset] = rank[np.searchsorted(uniq, labels[subset])]
    return out


def _face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    p = vertices[faces]
    return 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)


def _mean_value_weights(vertices: np.ndarray, faces: np.ndarray) -> sp.csr_matrix:
    """(N, N) Floater's mean-value weights w_ij = (tan(a/2) + tan(b/2)) / |v_i - v_j| (all > 0)."""
    rows, cols, vals = [], [], []
    for k in range(3):
        i, j, l = faces[:, k], faces[:, (k + 1) % 3], faces[:, (k + 2) % 3]
        e_ij, e_il = vertices[j] - vertices[i], vertices[l] - vertices[i]
        len_ij, len_il = np.linalg.norm(e_ij, axis=1), np.linalg.norm(e_il, axis=1)
        cos = np.einsum("ij,ij->i", e_ij, e_il) / (len_ij * len_il)
        half_tan = np.tan(0.5 * np.arccos(np.clip(cos, -1.0, 1.0)))
        # the corner angle at i enters the weights of both edges leaving i
        rows += [i, i]
        cols += [j, l]
        vals += [half_tan / len_ij, half_tan / len_il]
    n = len(vertices)
    return sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n, n)).tocsr()


# ---------------------------------------------------------------------------- pockets
def _inside_voxels(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, h: float,
                   shape: tuple) -> np.ndarray:
    """Solid of a closed mesh on a voxel grid, by the parity of crossings along +Z columns."""
    nx, ny, nz = shape
    p = (vertices - origin) / h - 0.5          # voxel centres at integers
    a, b, c = p[faces[:, 0]], p[faces[:, 1]], p[faces[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    lo = np.ceil(np.minimum(np.minimum(a, b), c)[:, :2]).astype(np.int64)
    hi = np.floor(np.maximum(np.maximum(a, b), c)[:, :2]).astype(np.int64)
    nxs, nys = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0), np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
    keep = np.flatnonzero((nxs * nys > 0) & (np.abs(area) > 1e-14))
    counts = (nxs * nys)[keep]
    t = np.repeat(keep, counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    px = lo[t, 0] + local % nxs[t]
    py = lo[t, 1] + local // nxs[t]
    # a tiny irrational offset keeps column centres off shared edges and vertices
    cx, cy = px + 1.3e-7, py + 2.9e-7
    at, bt, ct, ar = a[t], b[t], c[t], area[t]
    w0 = ((bt[:, 0] - cx) * (ct[:, 1] - cy) - (bt[:, 1] - cy) * (ct[:, 0] - cx)) / ar
    w1 = ((ct[:, 0] - cx) * (at[:, 1] - cy) - (ct[:, 1] - cy) * (at[:, 0] - cx)) / ar
    w2 = 1.0 - w0 - w1
    inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
    z = (w0 * at[:, 2] + w1 * bt[:, 2] + w2 * ct[:, 2])[inside]
    px, py = px[inside], py[inside]
    ok = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
    px, py, z = px[ok], py[ok], z[ok]
    # each crossing toggles the solid for every voxel above it: a cumulative parity along z
    toggles = np.zeros((nx, ny, nz + 1), np.int32)
    zi = np.clip(np.ceil(z).astype(np.int64), 0, nz)
    np.add.at(toggles, (px, py, zi), 1)
    return (np.cumsum(toggles, axis=2)[:, :, :nz] % 2).astype(bool)


def find_pockets(vertices: np.ndarray, faces: np.ndarray, near: np.ndarray | None = None,
                 closing: float = POCKET_CLOSING, depth: float = POCKET_DEPTH) -> np.ndarray:
    """(F,) bool: faces that line a pocket of a closed surface (mouth sac, eye sockets).

    The solid is voxelised and morphologically closed (dilate by ``closing``, fill enclosed
    cavities, erode back): this seals narrow openings such as closed lips or the lid slit, so
    the cavity behind them becomes solid.  A face whose corners all lie deeper than ``depth``
    inside the closed solid lines a pocket.  Both lengths are fractions of the bounding-box
    diagonal.  With ``near`` ((F,) bool), only pocket components touching those faces' vertices
    are kept (the head's pockets open in the face; the fold behind an ear is not one).
    """
    from scipy.ndimage import binary_fill_holes, distance_transform_edt

    lo, hi = vertices.min(0), vertices.max(0)
    diag = float(np.linalg.norm(hi - lo))
    pad_len = (closing + depth) * diag * 1.5
    lo, hi = lo - pad_len, hi + pad_len
    h = float((hi - lo).max()) / POCKET_VOXELS
    shape = tuple(int(s) for s in np.ceil((hi - lo) / h).astype(int) + 1)
    solid = _inside_voxels(vertices, faces, lo, h, shape)
    r = closing * diag / h
    grown = distance_transform_edt(~solid) <= r
    grown = binary_fill_holes(grown)
    closed = distance_transform_edt(grown) > r
    closed |= solid
    inner_depth = distance_transform_edt(closed) * h
    idx = np.clip(np.floor((vertices - lo) / h).astype(np.int64), 0, np.array(shape) - 1)
    vdepth = inner_depth[idx[:, 0], idx[:, 1], idx[:, 2]]
    deep_vertex = vdepth > depth * diag
    pocket = deep_vertex[faces].all(1)
    fa, fb, _ = _face_adjacency(faces)
    # the linings between the deep part and the opening (inner lids, lip contact) fold back under
    # the outer skin; grow the pocket over faces that turn away from the closed hull's outward
    # direction (-grad depth), so the opening's rim sits on the fold and nothing overlaps
    gz = np.gradient(inner_depth)
    cidx = np.clip(np.floor((vertices[faces].mean(1) - lo) / h).astype(np.int64), 0, np.array(shape) - 1)
    outward = -np.stack([g[cidx[:, 0], cidx[:, 1], cidx[:, 2]] for g in gz], 1)
    p = vertices[faces]
    normal = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    facing = np.einsum("ij,ij->i", normal, outward) / np.maximum(
        np.linalg.norm(normal, axis=1) * np.linalg.norm(outward, axis=1), 1e-300)
    turned = (facing < FOLD_COS) & (vdepth[faces].max(1) > 0)
    for _ in range(64):
        grow = np.zeros(len(faces), bool)
        grow[fb[pocket[fa] & turned[fb] & ~pocket[fb]]] = True
        grow[fa[pocket[fb] & turned[fa] & ~pocket[fa]]] = True
        if not grow.any():
            break
        pocket |= grow
    # one more ring of faces around each opening: flaps one face thin fold over in LSCM
    if pocket.any():
        rim = np.zeros(len(vertices), bool)
        rim[faces[pocket].ravel()] = True
        pocket |= rim[faces].any(1) & (vdepth[faces].max(1) > 0)
    # smooth the rim: a face with two or more pocket neighbours joins the pocket (no fins or
    # faces hanging on by one vertex, which would fold in the face chart)
    for _ in range(64):
        nb = np.bincount(fa[pocket[fb]], minlength=len(faces)) + np.bincount(fb[pocket[fa]], minlength=len(faces))
        grow = (nb >= 2) & ~pocket
        if not grow.any():
            break
        pocket |= grow
    if pocket.any():
        comp = _components(len(faces), fa, fb, np.ones(len(fa), bool), pocket)
        comp_area = np.bincount(comp[pocket], weights=_face_areas(vertices, faces)[pocket])
        pocket &= (comp_area >= POCKET_MIN_AREA * _face_areas(vertices, faces).sum())[np.maximum(comp, 0)]
    if near is not None and pocket.any():
        comp = _components(len(faces), fa, fb, np.ones(len(fa), bool), pocket)
        near_v = np.zeros(len(vertices), bool)
        near_v[faces[near].ravel()] = True
        touching = np.zeros(comp.max() + 1, bool)
        hit = pocket & near_v[faces].any(1)
        touching[comp[hit]] = True
        pocket &= touching[np.maximum(comp, 0)]
    return pocket


# ---------------------------------------------------------------------------- flattening
def _local_frames(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F, 3, 2) each triangle's corners in its own plane: p0 at 0, p1 on the +x axis."""
    p = vertices[faces]
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    l1 = np.linalg.norm(e1, axis=1)
    x = e1 / l1[:, None]
    n = np.cross(e1, e2)
    y = np.cross(n / np.linalg.norm(n, axis=1, keepdims=True), x)
    out = np.zeros((len(faces), 3, 2))
    out[:, 1, 0] = l1
    out[:, 2, 0] = np.einsum("ij,ij->i", e2, x)
    out[:, 2, 1] = np.einsum("ij,ij->i", e2, y)
    return out


def lscm(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 2) float64 least-squares conformal map of a disk-like chart (faces index vertices).

    Energy (Levy et al. 2002): sum over triangles of |sum_j W_j (u_j + i v_j)|^2 / (2A), with
    W_j the rotated opposite edges of the triangle in its own plane; two boundary vertices
    far apart are pinned to fix the similarity.  Orientation follows the input winding.
    """
    n = len(vertices)
    loc = _local_frames(vertices, faces)
    xs, ys = loc[:, :, 0], loc[:, :, 1]
    d = np.sqrt(np.abs(xs[:, 1] * ys[:, 2] - xs[:, 2] * ys[:, 1]))     # sqrt(2A)
    d = np.maximum(d, 1e-20)
    rows, cols, wr, wi = [], [], [], []
    for j in range(3):
        k, l = (j + 1) % 3, (j + 2) % 3
        rows.append(np.arange(len(faces)))
        cols.append(faces[:, j])
        wr.append((xs[:, l] - xs[:, k]) / d)
        wi.append((ys[:, l] - ys[:, k]) / d)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    wr, wi = np.concatenate(wr), np.concatenate(wi)
    nf = len(faces)
    mr = sp.csr_matrix((wr, (rows, cols)), shape=(nf, n))
    mi = sp.csr_matrix((wi, (rows, cols)), shape=(nf, n))
    # real form of the complex system acting on [u; v]
    a = sp.vstack([sp.hstack([mr, -mi]), sp.hstack([mi, mr])]).tocsr()
    # pins: the vertex farthest from the centroid, then the one farthest from it
    centre = vertices.mean(0)
    p0 = int(np.argmax(np.linalg.norm(vertices - centre, axis=1)))
    p1 = int(np.argmax(np.linalg.norm(vertices - vertices[p0], axis=1)))
    dist = float(np.linalg.norm(vertices[p1] - vertices[p0]))
    fixed = np.array([p0, p1, p0 + n, p1 + n])
    fixed_val = np.array([0.0, dist, 0.0, 0.0])
    free = np.setdiff1d(np.arange(2 * n), fixed)
    rhs = -a[:, fixed] @ fixed_val
    af = a[:, free]
    sol = spla.spsolve((af.T @ af).tocsc(), af.T @ rhs)
    x = np.zeros(2 * n)
    x[fixed] = fixed_val
    x[free] = sol
    uv = np.stack([x[:n], x[n:]], 1)
    return uv


def arap(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray, iterations: int = ARAP_ITERATIONS
         ) -> np.ndarray:
    """(N, 2) the last iterate of :func:`arap_iterates` (the start map if none is valid)."""
    out = uv
    for out in arap_iterates(vertices, faces, uv, iterations):
        pass
    return out


def arap_iterates(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray,
                  iterations: int = ARAP_ITERATIONS, guard_faces: np.ndarray | None = None):
    """(N, 2) as-rigid-as-possible refinement of a chart map (Liu et al. 2008, the ARAP variant).

    Local step: the rotation R_t nearest to each triangle's Jacobian (SVD); global step: the
    cotangent-weighted Poisson solve sum_t cot_ij |(u_i - u_j) - R_t (x_i - x_j)|^2 -> min,
    with one factorisation reused.  Starting from the conformal map this evens out the area
    scale (LSCM shrinks protruding parts) while staying close to conformal.  Yields each
    iterate, (N, 2); a step that would flip a triangle is shortened, and the iteration stops
    when even a short step flips one.  guard_faces (G, 3): extra triangles filling holes (a
    scaffold): their rest shape is their shape in the start map, so a hole keeps its shape
    instead of letting its sides cross.
    """
    check = faces if guard_faces is None else np.vstack([faces, guard_faces])
    n = len(vertices)
    loc = _local_frames(vertices, faces)
    if guard_faces is not None:
        flat = np.column_stack([uv, np.zeros(len(uv))])
        loc = np.concatenate([loc, _local_frames(flat, guard_faces)])
        faces = check
    cots, pairs = [], []
    for k in range(3):
        i, j, o = k, (k + 1) % 3, (k + 2) % 3
        a, b = loc[:, i] - loc[:, o], loc[:, j] - loc[:, o]
        cross = np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0])
        cots.append(np.einsum("ij,ij->i", a, b) / np.maximum(cross, 1e-300))
        pairs.append((i, j))
    # clamp: very obtuse corners give negative weights that can make the system indefinite
    cot = np.maximum(np.stack(cots, 1), 1e-3)                                # (F, 3)
    rows, cols, vals = [], [], []
    for k, (i, j) in enumerate(pairs):
        vi, vj, c = faces[:, i], faces[:, j], cot[:, k]
        rows += [vi, vj, vi, vj]
        cols += [vi, vj, vj, vi]
        vals += [c, c, -c, -c]
    lap = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                        shape=(n, n)).tocsr()
    free = np.arange(1, n)                       # vertex 0 keeps its place: fixes translation
    solve = spla.factorized(lap[free][:, free].tocsc())
    dx = [loc[:, i] - loc[:, j] for i, j in pairs]
    cur = uv.copy()
    for _ in range(iterations):
        s = np.zeros((len(faces), 2, 2))
        for k, (i, j) in enumerate(pairs):
            du = cur[faces[:, i]] - cur[faces[:, j]]
            s += cot[:, k, None, None] * du[:, :, None] * dx[k][:, None, :]
        u_, _, vt = np.linalg.svd(s)
        rot = u_ @ vt
        neg = np.linalg.det(rot) < 0
        u_[neg, :, 1] *= -1
        rot = u_ @ vt
        rhs = np.zeros((n, 2))
        for k, (i, j) in enumerate(pairs):
            e = cot[:, k, None] * np.einsum("fab,fb->fa", rot, dx[k])
            np.add.at(rhs, faces[:, i], e)
            np.add.at(rhs, faces[:, j], -e)
        rhs = rhs[free] - lap[free][:, [0]] @ cur[[0]]
        target = cur.copy()
        target[free] = np.column_stack([solve(rhs[:, 0]), solve(rhs[:, 1])])
        # backtrack toward the current map until no triangle flips
        for step in (1.0, 0.5, 0.25, 0.125):
            nxt = cur + step * (target - cur)
            if (_signed_areas(nxt, check) > 0).all():
                break
        else:
            return
        cur = nxt
        yield cur


def convex_map(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 2) float64 mean-value map of a chart onto a disk: one-to-one by construction.

    Floater's theorem: with the outer boundary on a convex curve and every interior vertex a
    positive combination of its neighbours, no triangle flips or overlaps.  Inner boundary
    loops are closed with a fan to a temporary centre (uniform spoke weights) first.
    """
    n = len(vertices)
    loops = boundary_loops(faces)
    if not loops:
        raise InvalidInputError("atlas: a chart without a boundary cannot be flattened")
    outer, holes = loops[0], loops[1:]
    weights = _mean_value_weights(vertices, faces)
    total = n + len(holes)
    weights.resize((total, total))
    if holes:
        spoke = float(np.mean(np.linalg.norm(vertices[faces[:, 0]] - vertices[faces[:, 1]], axis=1)))
        rows = np.concatenate([np.concatenate([loop, np.full(len(loop), n + h)]) for h, loop in enumerate(holes)])
        cols = np.concatenate([np.concatenate([np.full(len(loop), n + h), loop]) for h, loop in enumerate(holes)])
        weights = (weights + sp.coo_matrix((np.full(len(rows), 1.0 / spoke), (rows, cols)),
                                           shape=(total, total))).tocsr()
    closed = np.append(outer, outer[0])
    seg = np.linalg.norm(np.diff(vertices[closed], axis=0), axis=1)
    t = np.concatenate([[0.0], np.cumsum(seg)[:-1]]) / seg.sum()
    radius = seg.sum() / (2 * np.pi)
    boundary_uv = radius * np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], 1)
    interior = np.setdiff1d(np.arange(total), outer)
    lap = (sp.diags(np.asarray(weights.sum(axis=1)).ravel()) - weights).tocsr()
    uv = np.zeros((total, 2))
    uv[outer] = boundary_uv
    if len(interior):
        solve = spla.factorized(lap[interior][:, interior].tocsc())
        rhs = -(lap[interior][:, outer] @ boundary_uv)
        uv[interior] = np.column_stack([solve(rhs[:, 0]), solve(rhs[:, 1])])
    return uv[:n]


def _relaxed(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray,
             guard_faces: np.ndarray | None = None) -> np.ndarray:
    """The furthest ARAP iterate (of a few checkpoints) whose chart does not overlap itself.

    ARAP can pull the two sides of a slit-like hole (closed lips) across each other, which no
    signed-area test sees, so checkpoints are rasterised, the latest first.
    """
    checkpoints = {1, 2, 4, 8, ARAP_ITERATIONS}
    kept = {}
    for k, it in enumerate(arap_iterates(vertices, faces, uv, guard_faces=guard_faces), start=1):
        if k in checkpoints:
            kept[k] = it
    for k in sorted(kept, reverse=True):
        if not _overlaps(kept[k], faces):
            return kept[k]
    return uv


def _ear_clip(points: np.ndarray) -> np.ndarray:
    """(K - 2, 3) triangles of a simple counter-clockwise polygon (K, 2), by ear clipping."""
    idx = list(range(len(points)))
    tris = []
    guard = 0
    i = 0
    while len(idx) > 3 and guard < 4 * len(points) ** 2:
        guard += 1
        k = len(idx)
        a, b, c = idx[(i - 1) % k], idx[i % k], idx[(i + 1) % k]
        pa, pb, pc = points[a], points[b], points[c]
        cross = (pb[0] - pa[0]) * (pc[1] - pa[1]) - (pb[1] - pa[1]) * (pc[0] - pa[0])
        ear = cross > 0
        if ear:
            rest = points[[j for j in idx if j not in (a, b, c)]]
            if len(rest):
                d1 = (pb[0] - pa[0]) * (rest[:, 1] - pa[1]) - (pb[1] - pa[1]) * (rest[:, 0] - pa[0])
                d2 = (pc[0] - pb[0]) * (rest[:, 1] - pb[1]) - (pc[1] - pb[1]) * (rest[:, 0] - pb[0])
                d3 = (pa[0] - pc[0]) * (rest[:, 1] - pc[1]) - (pa[1] - pc[1]) * (rest[:, 0] - pc[0])
                ear = not ((d1 >= 0) & (d2 >= 0) & (d3 >= 0)).any()
        if ear:
            tris.append((a, b, c))
            idx.pop(i % k)
            i = max(i - 1, 0)
        else:
            i += 1
    if len(idx) != 3:
        raise ValueError("polygon could not be ear-clipped")
    tris.append(tuple(idx))
    return np.array(tris, np.int64)


def _relaxed_with_holes_closed(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """:func:`_relaxed` with the chart's inner holes triangulated in the start map as guards.

    The guard triangles take part in the flip test only (not in the energy), so the two lips
    of a slit (the closed mouth, the lid opening) cannot slide across each other.
    """
    guards = []
    for hole in boundary_loops(faces)[1:]:
        # a hole's loop runs clockwise around it; reversed, it is a counter-clockwise polygon
        ring = hole[::-1]
        try:
            guards.append(ring[_ear_clip(uv[ring])])
        except ValueError:
            continue
    guard = np.vstack(guards) if guards else None
    return _relaxed(vertices, faces, uv, guard)


def _overlaps(uv: np.ndarray, faces: np.ndarray, resolution: int = OVERLAP_RESOLUTION) -> bool:
    """Whether a chart covers some point twice, tested on a grid over its bounding box."""
    lo = uv.min(0)
    span = float((uv.max(0) - lo).max())
    if span <= 0:
        return True
    return bool((_coverage_counts((uv - lo) / span * resolution, faces, resolution) > 1).any())


def _signed_areas(uv: np.ndarray, faces: np.ndarray) -> np.ndarray:
    a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def triangle_stretch(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(F, 2) singular values (largest, smallest) of each triangle's 3D -> UV Jacobian."""
    loc = _local_frames(vertices, faces)
    x = np.stack([loc[:, 1] - loc[:, 0], loc[:, 2] - loc[:, 0]], 2)          # (F, 2, 2) columns
    u = uv[faces]
    y = np.stack([u[:, 1] - u[:, 0], u[:, 2] - u[:, 0]], 2)
    det = x[:, 0, 0] * x[:, 1, 1] - x[:, 0, 1] * x[:, 1, 0]
    inv = np.stack([np.stack([x[:, 1, 1], -x[:, 0, 1]], 1),
                    np.stack([-x[:, 1, 0], x[:, 0, 0]], 1)], 1) / det[:, None, None]
    jac = y @ inv
    return np.linalg.svd(jac, compute_uv=False)


def _upright(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Rotate a chart (math frame, t up) so the head's +Y points to +t, and centre it."""
    uv = uv - uv.mean(0)
    # least-squares linear map uv -> world Y gives the chart's up direction
    w = np.repeat(_face_areas(vertices, faces), 3)
    vid = faces.ravel()
    a = uv[vid] * np.sqrt(w)[:, None]
    y = (vertices[vid, 1] - vertices[vid, 1].mean()) * np.sqrt(w)
    g, *_ = np.linalg.lstsq(a, y, rcond=None)
    if np.linalg.norm(g) < 1e-12:                     # no up direction: align the long axis
        cov = uv.T @ uv
        g = np.linalg.eigh(cov)[1][:, 1]
        g = g * (1.0 if g[1] >= 0 or g[0] > 0 else -1.0)
    ang = np.arctan2(g[1], g[0])
    # rotate g onto +t (math frame, t up); the packer turns t into glTF's downward v
    rot = np.pi / 2 - ang
    c, s = np.cos(rot), np.sin(rot)
    return uv @ np.array([[c, s], [-s, c]])


# ---------------------------------------------------------------------------- packing
def _shelf_pack(sizes: np.ndarray, gutter: float, scale: float) -> tuple[np.ndarray, float]:
    """Place boxes (K, 2) * scale, tallest first, on shelves of width 1; returns offsets, height."""
    order = np.lexsort((np.arange(len(sizes)), -sizes[:, 1]))
    pos = np.zeros((len(sizes), 2))
    x, y, shelf_h = gutter, gutter, 0.0
    for k in order:
        w, h = sizes[k] * scale
        if x + w + gutter > 1.0 and x > gutter:
            y += shelf_h + gutter
            x, shelf_h = gutter, 0.0
        pos[k] = (x, y)
        x += w + gutter
        shelf_h = max(shelf_h, h)
        if w + 2 * gutter > 1.0:
            return pos, np.inf
    return pos, y + shelf_h + gutter


def _pack(chart_uvs: list, densities: np.ndarray, gutter: float, tied: list | None = None) -> list:
    """Scale each chart by its density, then find the largest common scale that shelf-packs.

    Chart 0 (the face) is never turned; charts in one ``tied`` group (a mirrored pair) turn
    together, so a mirrored pair stays mirrored.
    """
    boxes = []
    for uv, dens in zip(chart_uvs, densities):
        uv = uv * dens
        lo = uv.min(0)
        boxes.append((uv - lo, uv.max(0) - lo))
    base = np.array([b[1] for b in boxes])
    # try the largest charts after the face (which stays upright, as artists expect to find
    # it) upright and turned a quarter, and keep the densest packing
    grouped = {c for g in (tied or []) for c in g}
    groups = [list(g) for g in (tied or [])] + [[c] for c in range(1, len(base)) if c not in grouped]
    groups.sort(key=lambda g: -float(np.prod(base[g[0]])))
    groups = groups[:3]
    best = (-1.0, None, None)
    for turn in range(2 ** len(groups)):
        turned = np.zeros(len(base), bool)
        for j, g in enumerate(groups):
            turned[g] = bool(turn >> j & 1)
        sizes = np.where(turned[:, None], base[:, ::-1], base)
        lo_s, hi_s = 0.0, 1.0 / max(sizes.max(), 1e-12)
        for _ in range(40):                            # bisection on the common scale
            mid = 0.5 * (lo_s + hi_s)
            if _shelf_pack(sizes, gutter, mid)[1] <= 1.0:
                lo_s = mid
            else:
                hi_s = mid
        if lo_s > best[0] * (1 + 1e-9):
            best = (lo_s, turned, sizes)
    scale, turned, sizes = best
    pos, _ = _shelf_pack(sizes, gutter, scale)
    out = []
    for (uv, ext), t, p in zip(boxes, turned, pos):
        if t:                                          # a quarter turn keeps orientation
            uv = np.stack([ext[1] - uv[:, 1], uv[:, 0]], 1)
        out.append(uv * scale + p)
    return out


# ---------------------------------------------------------------------------- the atlas
def _check_inputs(vertices, faces, face_mask, mirror, cap_faces, gutter_px, size):
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or not np.isfinite(v).all():
        raise InvalidInputError(f"atlas: vertices must be a finite (N, 3) array, got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or not np.issubdtype(f.dtype, np.integer) or len(f) == 0:
        raise InvalidInputError(f"atlas: faces must be a non-empty (F, 3) integer array, got {f.shape}")
    if f.min() < 0 or f.max() >= len(v):
        raise InvalidInputError(f"atlas: faces index outside the {len(v)} vertices")
    m = np.asarray(face_mask)
    if m.shape != (len(v),) or m.dtype != bool:
        raise InvalidInputError(f"atlas: face_mask must be (N,) bool with N={len(v)}, got {m.shape} {m.dtype}")
    if not m[f].all(1).any():
        raise InvalidInputError("atlas: face_mask covers no whole triangle")
    if mirror is not None:
        mi = np.asarray(mirror)
        if mi.shape != (len(v),) or not np.array_equal(np.sort(mi), np.arange(len(v))):
            raise InvalidInputError("atlas: mirror must be a permutation of the vertex ids")
    if cap_faces is not None:
        c = np.asarray(cap_faces)
        if c.shape != (len(f),) or c.dtype != bool:
            raise InvalidInputError(f"atlas: cap_faces must be (F,) bool with F={len(f)}")
    if int(size) < 16 or int(gutter_px) < 0 or 4 * int(gutter_px) >= int(size):
        raise InvalidInputError(f"atlas: need size >= 16 and 0 <= gutter_px < size/4, got {size}, {gutter_px}")
    area = _face_areas(v, f.astype(np.int64))
    if (area <= 1e-14 * max(area.max(), 1e-300)).any():
        raise InvalidInputError("atlas: the mesh has degenerate (zero-area) triangles")
    return v, f.astype(np.int64), m


def _pocket_name(centre: np.ndarray, head_centre: np.ndarray, head_width: float) -> str:
    dx = (centre[0] - head_centre[0]) / head_width
    if abs(dx) < 0.08:
        return "mouth_interior" if centre[1] < head_centre[1] else "pocket_middle"
    return "eye_socket_left" if dx > 0 else "eye_socket_right"    # subject's left is +X


def head_atlas(vertices: np.ndarray, faces: np.ndarray, face_mask: np.ndarray,
               mirror: np.ndarray | None = None, gutter_px: int = 4, size: int = 1024,
               cap_faces: np.ndarray | None = None, face_share: float = FACE_SHARE) -> Atlas:
    """UV atlas of a closed head mesh (see the module docstring for the layout).

    vertices: (N, 3) float, +Y up, face toward +Z, midplane x = 0; faces: (F, 3) int,
    counter-clockwise seen from outside; face_mask: (N,) bool, the face region; mirror: (N,)
    int vertex mirror permutation or None (with it, the right half of the head is laid out as
    the exact mirror image of the left); cap_faces: (F,) bool faces of a cap closing the neck
    cut (own small chart), or None.  face_share: fraction of the used texels the face chart
    should hold (at least 0.5 for the template).
    """
    v, f, mask = _check_inputs(vertices, faces, face_mask, mirror, cap_faces, gutter_px, size)
    nf = len(f)
    cap = np.zeros(nf, bool) if cap_faces is None else np.asarray(cap_faces, bool)
    fa, fb, shared = _face_adjacency(f)
    face_region = mask[f].all(1) & ~cap
    pocket = find_pockets(v, f, near=face_region) & ~cap
    face_region &= ~pocket

    # the face chart is the largest connected part of the face region; crumbs go to the head
    comp = _components(nf, fa, fb, np.ones(len(fa), bool), face_region)
    area = _face_areas(v, f)
    if comp.max() >= 0:
        comp_area = np.bincount(comp[face_region], weights=area[face_region])
        face_region = comp == int(np.argmax(comp_area))
    head = ~(face_region | pocket | cap)
    centroid_x = v[f].mean(1)[:, 0]
    mid_x = 0.0

    charts = np.full(nf, -1, np.int64)
    names: list[str] = []
    kinds: list[str] = []

    def add(sel: np.ndarray, name: str, kind: str) -> None:
        charts[sel] = len(names)
        names.append(name)
        kinds.append(kind)

    add(face_region, "face", "face")
    for side, sel in (("left", head & (centroid_x >= mid_x)), ("right", head & (centroid_x < mid_x))):
        add(sel, f"head_{side}", "head")
    # crumbs of a side cut off from its main part (e.g. slivers between the face and a pocket)
    # join the face chart they touch
    for c in (1, 2):
        parts = _components(nf, fa, fb, np.ones(len(fa), bool), charts == c)
        if parts.max() > 0:
            sizes = np.bincount(parts[parts >= 0])
            main = int(np.argmax(sizes))
            charts[(parts >= 0) & (parts != main)] = 0
    pockets = _components(nf, fa, fb, np.ones(len(fa), bool), pocket)
    head_centre = 0.5 * (v.min(0) + v.max(0))
    width = float(v[:, 0].max() - v[:, 0].min())
    used = set()
    for k in range(pockets.max() + 1):
        sel = pockets == k
        name = _pocket_name(np.average(v[f[sel]].mean(1), axis=0, weights=area[sel]), head_centre, width)
        base, j = name, 1
        while name in used:
            name, j = f"{base}_{j}", j + 1
        used.add(name)
        add(sel, name, "pocket")
    if cap.any():
        add(cap, "neck_cap", "cap")
    charts = charts.astype(np.int32)

    # UV vertices: one per (chart, source vertex), ordered by chart then vertex id
    key = charts[:, None].astype(np.int64) * len(v) + f
    uniq, inv = np.unique(key.ravel(), return_inverse=True)
    welded = (uniq % len(v)).astype(np.int32)
    uv_chart = (uniq // len(v)).astype(np.int32)
    uv_faces = inv.reshape(-1, 3).astype(np.int32)

    chart_uvs, chart_ids = [], []
    for c in range(len(names)):
        sel = charts == c
        ids = np.flatnonzero(uv_chart == c)
        local_faces = uv_faces[sel] - ids[0]
        pts = v[welded[ids]]
        # pockets and the cap only carry flat colours: a guaranteed one-to-one map beats low
        # stretch there; skin charts get the conformal map unless it folds somewhere
        uv = convex_map(pts, local_faces) if kinds[c] in ("pocket", "cap") else lscm(pts, local_faces)
        if _signed_areas(uv, local_faces).sum() < 0:
            uv[:, 1] *= -1
        if (_signed_areas(uv, local_faces) <= 0).any():
            uv = convex_map(pts, local_faces)
        elif kinds[c] in ("face", "head"):
            uv = _relaxed_with_holes_closed(pts, local_faces, uv)
        if _overlaps(uv, local_faces):
            uv = convex_map(pts, local_faces)
        # scale so the chart's UV area equals its 3D area (density 1 texel per unit area)
        uv *= np.sqrt(area[sel].sum() / _signed_areas(uv, local_faces).sum())
        uv = _upright(pts, local_faces, uv)
        chart_uvs.append(uv)
        chart_ids.append(ids)

    tied = []
    if mirror is not None and _mirror_sides(chart_uvs, chart_ids, names, welded, np.asarray(mirror)):
        tied.append([names.index("head_left"), names.index("head_right")])

    # densities: head charts 1, pockets and cap lower, face raised to reach face_share
    dens_area = np.ones(len(names))
    for c, kind in enumerate(kinds):
        if kind in ("pocket", "cap"):
            dens_area[c] = POCKET_DENSITY ** 2
    chart_area3d = np.bincount(charts, weights=area, minlength=len(names))
    other = float((chart_area3d * dens_area)[1:].sum())
    face_a = float(chart_area3d[0])
    dens_area[0] = max(1.0, face_share / (1 - face_share) * other / face_a) * 1.08
    # v grows downward: flip each chart into image orientation before packing
    flipped = [uv * np.array([1.0, -1.0]) for uv in chart_uvs]
    placed = _pack(flipped, np.sqrt(dens_area), gutter_px / size, tied)
    uvs = np.zeros((len(welded), 2))
    for ids, uv in zip(chart_ids, placed):
        uvs[ids] = uv
    return Atlas(welded_ids=welded, faces=uv_faces, uvs=uvs.astype(np.float32), charts=charts,
                 chart_names=names, size=int(size), gutter_px=int(gutter_px))


def _mirror_sides(chart_uvs, chart_ids, names, welded, mirror) -> bool:
    """Make head_right the mirror image of head_left when the mesh's halves match vertex for vertex."""
    if "head_left" not in names or "head_right" not in names:
        return False
    li, ri = names.index("head_left"), names.index("head_right")
    left_src, right_src = welded[chart_ids[li]], welded[chart_ids[ri]]
    # the mirror of each right vertex must be a left vertex of the chart (seam vertices on x = 0 map to themselves)
    pos = np.searchsorted(left_src, mirror[right_src])
    pos = np.clip(pos, 0, len(left_src) - 1)
    if len(left_src) != len(right_src) or not np.array_equal(left_src[pos], mirror[right_src]):
        return False
    chart_uvs[ri] = chart_uvs[li][pos] * np.array([-1.0, 1.0])
    return True


# ---------------------------------------------------------------------------- measurements
def coverage(atlas: Atlas, size: int | None = None) -> np.ndarray:
    """(size, size) int count of chart triangles covering each texel centre (2+ = overlap)."""
    size = atlas.size if size is None else int(size)
    return _coverage_counts(atlas.uvs.astype(np.float64) * size, atlas.faces.astype(np.int64), size)


def _coverage_counts(p: np.ndarray, f: np.ndarray, size: int) -> np.ndarray:
    """(size, size) count of triangles (pixel coordinates (N, 2)) covering each pixel centre."""
    a, b, c = p[f[:, 0]], p[f[:, 1]], p[f[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    lo = np.maximum(np.ceil(np.minimum(np.minimum(a, b), c) - 0.5).astype(np.int64), 0)
    hi = np.minimum(np.floor(np.maximum(np.maximum(a, b), c) - 0.5).astype(np.int64), size - 1)
    nx, ny = np.maximum(hi[:, 0] - lo[:, 0] + 1, 0), np.maximum(hi[:, 1] - lo[:, 1] + 1, 0)
    keep = np.flatnonzero((nx * ny > 0) & (area != 0))
    counts = (nx * ny)[keep]
    t = np.repeat(keep, counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    px, py = lo[t, 0] + local % nx[t], lo[t, 1] + local // nx[t]
    # an offset off the half-texel lattice keeps texel centres off shared edges
    cx, cy = px + 0.5 + 1.3e-7, py + 0.5 + 2.9e-7
    at, bt, ct, ar = a[t], b[t], c[t], area[t]
    w0 = ((bt[:, 0] - cx) * (ct[:, 1] - cy) - (bt[:, 1] - cy) * (ct[:, 0] - cx)) / ar
    w1 = ((ct[:, 0] - cx) * (at[:, 1] - cy) - (ct[:, 1] - cy) * (at[:, 0] - cx)) / ar
    inside = (w0 >= 0) & (w1 >= 0) & (1.0 - w0 - w1 >= 0)
    return np.bincount(py[inside] * size + px[inside], minlength=size * size).reshape(size, size)


def atlas_report(vertices: np.ndarray, atlas: Atlas) -> dict:
    """Figures of an atlas: flipped triangles, overlapping texels, texel shares and stretch.

    stretch per chart: the 95th percentile and maximum of sigma_max / sigma_min (angle
    distortion; 1 is conformal) and of the area scale relative to the chart's mean density.
    """
    v = np.asarray(vertices, np.float64)
    uv = atlas.uvs.astype(np.float64)
    f = atlas.faces.astype(np.int64)
    signed = -_signed_areas(uv, f)                  # v grows downward: counter-clockwise is negative
    cov = coverage(atlas)
    per_chart = {}
    sv = triangle_stretch(v[atlas.welded_ids], f, uv)
    area3d = _face_areas(v[atlas.welded_ids], f)
    for c, name in enumerate(atlas.chart_names):
        sel = atlas.charts == c
        uv_area = signed[sel].sum()
        dens = uv_area / area3d[sel].sum()
        ratio = sv[sel, 0] / np.maximum(sv[sel, 1], 1e-300)
        scale = np.abs(signed[sel]) / area3d[sel] / dens
        lo, hi = uv[np.unique(f[sel])].min(0), uv[np.unique(f[sel])].max(0)
        per_chart[name] = {
            "uv_area": float(uv_area),
            "fill_of_box": float(uv_area / max(np.prod(hi - lo), 1e-300)),
            "anisotropy_p95": float(np.percentile(ratio, 95)), "anisotropy_max": float(ratio.max()),
            "area_scale_p5": float(np.percentile(scale, 5)), "area_scale_p95": float(np.percentile(scale, 95)),
        }
    used = sum(p["uv_area"] for p in per_chart.values())
    return {
        "flipped": int((signed <= 0).sum()),
        "overlap_texels": int((cov > 1).sum()),
        "fill": float(used),
        "face_share": float(per_chart["face"]["uv_area"] / used),
        "charts": per_chart,
    }
