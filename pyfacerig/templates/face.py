"""The skin and its semantic landmark groups, regions and measures.

Everything named here comes from MediaPipe's own connection groups
(``FACEMESH_LIPS``, ``FACEMESH_LEFT_EYE``, ``FACEMESH_LEFT_EYEBROW``,
``FACEMESH_FACE_OVAL``, ``FACEMESH_NOSE`` ...), walked into ordered chains and
followed onto the refined mesh.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from . import topology as topo
from .uv import parametrize

# Corner landmarks that split closed contours into their two halves.
EYE_CORNERS = {"left": (263, 362), "right": (33, 133)}          # (outer, inner)
LIP_CORNERS_OUTER = (61, 291)                                     # subject's right, left
LIP_CORNERS_INNER = (78, 308)
# The six points of the usual eye-aspect-ratio (p1 outer corner ... p4 inner corner).
EAR_POINTS = {"left": (263, 387, 385, 362, 380, 373), "right": (33, 160, 158, 133, 153, 144)}
IRIS = {"left": (473, 474, 475, 476, 477), "right": (468, 469, 470, 471, 472)}
CHIN, FOREHEAD, NOSE_TIP = 152, 10, 1


def _walk(edges: list[tuple[int, int]], start: int, end: int, avoid: int | None = None) -> list[int]:
    """The path from start to end along a group's edges (first step not to ``avoid``)."""
    nbrs: dict[int, list[int]] = {}
    for a, b in edges:
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    for first in sorted(nbrs[start]):
        if first == avoid:
            continue
        path, prev, cur = [start], start, first
        while True:
            path.append(cur)
            if cur == end:
                return path
            nxt = [n for n in nbrs[cur] if n != prev]
            if not nxt:
                break
            prev, cur = cur, nxt[0]
    raise RuntimeError(f"no path {start} -> {end} in connection group")


def _two_halves(edges, a: int, b: int, vertices: np.ndarray) -> tuple[list[int], list[int]]:
    """Split a closed contour at a and b into (upper, lower) paths from a to b."""
    nbrs = sorted({y for x, y in edges if x == a} | {x for x, y in edges if y == a})
    one = _walk(edges, a, b, avoid=nbrs[1])
    two = _walk(edges, a, b, avoid=nbrs[0])
    if vertices[one, 1].mean() < vertices[two, 1].mean():
        one, two = two, one
    return one, two


def _open_chains(edges, vertices: np.ndarray) -> tuple[list[int], list[int]]:
    """The two open polylines of an eyebrow group as (lower, upper), each from outer to inner end."""
    count: dict[int, int] = {}
    for a, b in edges:
        count[a] = count.get(a, 0) + 1
        count[b] = count.get(b, 0) + 1
    ends = [v for v, c in count.items() if c == 1]
    chains, used = [], set()
    for start in sorted(ends, key=lambda v: -abs(vertices[v, 0])):   # outer ends first
        if start in used:
            continue
        end = next(e for e in ends if e != start and e not in used and _connected(edges, start, e))
        chain = _walk(edges, start, end)
        used |= {start, end}
        chains.append(chain)
    chains.sort(key=lambda c: vertices[c, 1].mean())
    return chains[0], chains[1]


def _connected(edges, a: int, b: int) -> bool:
    try:
        _walk(edges, a, b)
        return True
    except RuntimeError:
        return False


@dataclass
class Skin:
    """The refined skin mesh with its landmark groups and measures (all in metres)."""

    vertices: np.ndarray          # (N, 3)
    faces: np.ndarray             # (F, 3) int32
    uvs: np.ndarray               # (N, 2)
    landmarks: np.ndarray         # (478, 3) neutral landmarks incl. iris
    refine: sp.csr_matrix         # (N, 468) fine = refine @ coarse
    mirror: np.ndarray            # (N,) vertex mirror permutation
    landmark_mirror: np.ndarray   # (478,)
    chains: dict                  # name -> fine vertex ids along a contour
    coarse_chains: dict           # name -> landmark ids along a contour
    regions: dict                 # name -> (N,) bool
    measures: dict                # H, W, E_left, IOD ...
    edge_lengths: sp.csr_matrix   # for geodesic distances
    eye_centres: dict = None      # "left"/"right" -> (3,) eyeball centre
    face_vertex_count: int = 0    # vertices before the eye-socket lining

    def geodesic(self, seeds) -> np.ndarray:
        """Shortest edge-path distance (m) from the nearest seed vertex."""
        return dijkstra(self.edge_lengths, directed=False, indices=np.unique(seeds), min_only=True)


def build_skin(landmarks: np.ndarray, landmark_mirror: np.ndarray) -> Skin:
    """Refine the face mesh over the neutral landmarks and name its parts."""
    coarse = landmarks[:topo.N_LANDMARKS]
    faces = topo.orient_faces(topo.coarse_triangles(), coarse)
    faces = topo.symmetrize_triangulation(faces, landmark_mirror, coarse)
    coarse_faces = faces
    vertices, faces, refine, splits = topo.subdivide(coarse, faces, levels=2)
    mirror = topo.fine_mirror(landmark_mirror, topo.N_LANDMARKS, splits, vertices)

    coarse_chains = {}
    for side, group in (("left", "LEFT_EYE"), ("right", "RIGHT_EYE")):
        outer, inner = EYE_CORNERS[side]
        up, lo = _two_halves(topo.connection_group(group), outer, inner, coarse)
        coarse_chains[f"eye_{side}_upper"], coarse_chains[f"eye_{side}_lower"] = up, lo
        lower, upper = _open_chains(topo.connection_group(f"{side.upper()}_EYEBROW"), coarse)
        coarse_chains[f"brow_{side}_lower"], coarse_chains[f"brow_{side}_upper"] = lower, upper
    lips = topo.connection_group("LIPS")
    inner_set = {LIP_CORNERS_INNER[0]}
    for _ in range(len(lips)):                        # grow the inner loop's component
        inner_set |= {b for a, b in lips if a in inner_set} | {a for a, b in lips if b in inner_set}
    outer_edges = [e for e in lips if e[0] not in inner_set and e[1] not in inner_set]
    inner_edges = [e for e in lips if e[0] in inner_set or e[1] in inner_set]
    (coarse_chains["lip_outer_upper"], coarse_chains["lip_outer_lower"]) = _two_halves(
        outer_edges, LIP_CORNERS_OUTER[0], LIP_CORNERS_OUTER[1], coarse)
    one, two = _two_halves(inner_edges, LIP_CORNERS_INNER[0], LIP_CORNERS_INNER[1], coarse)
    # Closed lips: the two inner halves coincide, so their own heights cannot tell upper from
    # lower.  The mesh neighbours off the contour can: the upper lip's lie above.
    def neighbour_height(chain):
        inner = set(chain[1:-1])
        ring = {int(v) for f in coarse_faces for v in f if inner & set(f.tolist())} - inner_set
        return coarse[sorted(ring), 1].mean()
    if neighbour_height(one) < neighbour_height(two):
        one, two = two, one
    coarse_chains["lip_inner_upper"], coarse_chains["lip_inner_lower"] = one, two
    oval = topo.connection_group("FACE_OVAL")
    coarse_chains["face_oval"] = sorted({v for e in oval for v in e})
    coarse_chains["nose"] = sorted({v for e in topo.connection_group("NOSE") for v in e})

    chains = {}
    for name, chain in coarse_chains.items():
        if name in ("face_oval", "nose"):
            continue
        chains[name] = topo.refined_chain(chain, splits)
    chains["face_oval"] = topo.boundary_loops(faces)[0]
    chains["nose"] = np.asarray(coarse_chains["nose"])

    measures = _measures(vertices, landmarks, chains)
    eye_centres = {side: fit_eye(vertices, landmarks, chains, side) for side in ("left", "right")}
    eye_centres["right"] = eye_centres["left"] * [-1.0, 1.0, 1.0]        # exactly mirrored
    n_face = len(vertices)
    lining_source = {}
    for side in ("left", "right"):
        margin = np.concatenate([chains[f"eye_{side}_upper"], chains[f"eye_{side}_lower"][::-1][1:-1]])
        vertices, faces, socket, source = add_eye_socket(vertices, faces, margin, eye_centres[side])
        chains[f"socket_{side}"] = socket
        lining_source.update(zip(socket.tolist(), source))
    # a lining vertex mirrors to the lining vertex of the mirrored margin vertex, same ring
    by_source = {src: v for v, src in lining_source.items()}
    mirror = np.concatenate([mirror, [by_source[(int(mirror[h]), k)] for h, k in
                                      (lining_source[v] for v in range(n_face, len(vertices)))]])
    topo.check_mirror(mirror, vertices)
    uvs = parametrize(vertices, faces)

    edges, _ = topo.edges_of(faces)
    lengths = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]], axis=1)
    n = len(vertices)
    graph = sp.coo_matrix((lengths, (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    skin = Skin(vertices, faces, uvs, landmarks, refine, mirror, landmark_mirror, chains,
                coarse_chains, {}, measures, graph, eye_centres, n_face)
    skin.regions = _regions(skin)
    return skin


EYE_RADIUS = 0.012            # adult eyeball ~24 mm across
LID_CLEARANCE = 0.0008        # eyelid margins stay this far outside the eyeball (Pan et al. §4.3)
SOCKET_GAP = 0.0004           # the socket lining hugs the eyeball this far outside it
SOCKET_RINGS_DEG = (0.0, 30.0, 60.0)   # extra polar angle of each lining ring behind the margin


def fit_eye(vertices, landmarks, chains, side: str) -> np.ndarray:
    """Eyeball centre behind the iris so every lid-margin vertex clears the sphere.

    The centre sits on the iris centre's line of sight (+Z) and is pushed as far
    forward as the eye opening allows: the closest margin vertex is exactly
    EYE_RADIUS + LID_CLEARANCE away, so the lids hug the eyeball without touching it.
    """
    iris = landmarks[IRIS[side][0]]
    margin = vertices[np.concatenate([chains[f"eye_{side}_upper"], chains[f"eye_{side}_lower"]])]
    target = EYE_RADIUS + LID_CLEARANCE
    lo, hi = iris[2] - 3 * EYE_RADIUS, iris[2]        # clearance grows as the centre goes back
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        centre = np.array([iris[0], iris[1], mid])
        if np.linalg.norm(margin - centre, axis=1).min() >= target:
            lo = mid
        else:
            hi = mid
    return np.array([iris[0], iris[1], lo])


def add_eye_socket(vertices, faces, margin_loop, centre):
    """Line the eye opening with skin that folds in around the eyeball (the conjunctival sac).

    Without it, an oblique view looks past the set-back eyeball into the empty head.
    The lining continues the skin from the lid margin: ring k sits just outside the
    eyeball, SOCKET_RINGS_DEG[k] further back (in polar angle from the gaze axis) than its
    margin vertex.  The skin stays one disk with holes; the eye holes just move
    behind the eyeball.  Returns new vertices, faces, the lining's vertex ids and, for
    each, its (margin vertex, ring) source.
    """
    loop_faces = topo.boundary_loops(faces)
    loop_set = {tuple(sorted(l.tolist())) for l in loop_faces}
    if tuple(sorted(margin_loop.tolist())) not in loop_set:
        raise RuntimeError("eye margin is not a boundary loop of the skin")
    hole = next(l for l in loop_faces if set(l.tolist()) == set(margin_loop.tolist()))
    d = vertices[hole] - centre
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    theta = np.arccos(np.clip(d[:, 2], -1, 1))
    phi = np.arctan2(d[:, 1], d[:, 0])
    rings, ids, source = [hole], [], []
    n = len(vertices)
    new = []
    for k, extra in enumerate(SOCKET_RINGS_DEG):
        th = theta + np.radians(extra)
        ring_dirs = np.stack([np.sin(th) * np.cos(phi), np.sin(th) * np.sin(phi), np.cos(th)], 1)
        new.append(centre + (EYE_RADIUS + SOCKET_GAP) * ring_dirs)
        ring_ids = n + k * len(hole) + np.arange(len(hole))
        rings.append(ring_ids)
        ids.append(ring_ids)
        source += [(int(h), k) for h in hole]
    vertices = np.vstack([vertices] + new)
    add = []
    for a_ring, b_ring in zip(rings[:-1], rings[1:]):
        # the hole loop runs against its neighbouring faces; keep that orientation inward
        a_next, b_next = np.roll(a_ring, -1), np.roll(b_ring, -1)
        add += [np.stack([a_next, a_ring, b_ring], 1), np.stack([a_next, b_ring, b_next], 1)]
    faces = np.vstack([faces] + add).astype(np.int32)
    return vertices, faces, np.concatenate(ids), source


def lid_curve(vertices: np.ndarray, chain: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Points (len(x), 3) on a lid or lip contour at the given x (linear along the contour)."""
    pts = vertices[chain]
    order = np.argsort(pts[:, 0])
    xs = pts[order, 0]
    return np.stack([x, np.interp(x, xs, pts[order, 1]), np.interp(x, xs, pts[order, 2])], 1)


def eye_opening(vertices: np.ndarray, chains: dict, side: str, x: float) -> float:
    up = lid_curve(vertices, chains[f"eye_{side}_upper"], np.array([x]))[0]
    lo = lid_curve(vertices, chains[f"eye_{side}_lower"], np.array([x]))[0]
    return float(up[1] - lo[1])


def _measures(vertices, landmarks, chains) -> dict:
    brow_y = np.mean(vertices[np.concatenate([chains["brow_left_lower"], chains["brow_right_lower"]]), 1])
    height = brow_y - landmarks[CHIN, 1]
    width = float(np.linalg.norm(landmarks[LIP_CORNERS_OUTER[1]] - landmarks[LIP_CORNERS_OUTER[0]]))
    iod = float(np.linalg.norm(landmarks[IRIS["left"][0]] - landmarks[IRIS["right"][0]]))
    e_left = eye_opening(vertices, chains, "left", landmarks[IRIS["left"][0], 0])
    iris_radius = float(np.mean(np.linalg.norm(
        landmarks[list(IRIS["left"][1:])] - landmarks[IRIS["left"][0]], axis=1)))
    return {"H": float(height), "W": width, "IOD": iod, "E": e_left, "iris_radius": iris_radius}


def _regions(skin: Skin) -> dict:
    """Boolean skin masks; shapes may only move the regions they name (see docs/template.md)."""
    ch, m = skin.chains, skin.measures
    H, W = m["H"], m["W"]
    regions = {}
    for side in ("left", "right"):
        lids = np.concatenate([ch[f"eye_{side}_upper"], ch[f"eye_{side}_lower"]])
        regions[f"eye_{side}"] = skin.geodesic(lids) < 0.13 * H
        brow = np.concatenate([ch[f"brow_{side}_lower"], ch[f"brow_{side}_upper"]])
        regions[f"brow_{side}"] = (skin.geodesic(brow) < 0.16 * H) & (
            skin.vertices[:, 1] > skin.vertices[lids, 1].max() - 0.01 * H)
        cheek_seed = _nearest_landmark(skin, side, np.array([0.78 * W, -0.35 * H]))
        regions[f"cheek_{side}"] = skin.geodesic([cheek_seed]) < 0.30 * H
        sneer_seed = _nearest_landmark(skin, side, np.array([0.40 * W, -0.30 * H]))
        regions[f"nose_{side}"] = skin.geodesic([sneer_seed]) < 0.20 * H
    lips = np.concatenate([ch[k] for k in ("lip_outer_upper", "lip_outer_lower",
                                           "lip_inner_upper", "lip_inner_lower")])
    nose = skin.geodesic(ch["nose"]) < 0.06 * H
    regions["nose"] = nose
    regions["mouth"] = (skin.geodesic(lips) < 0.55 * W) & ~nose
    regions["chin"] = skin.geodesic([CHIN]) < 0.40 * H
    regions["contour"] = skin.geodesic(ch["face_oval"]) < 0.06 * H
    socket = {side: np.zeros(len(skin.vertices), bool) for side in ("left", "right")}
    for side in socket:
        socket[side][ch[f"socket_{side}"]] = True
    lining = socket["left"] | socket["right"]
    for name in regions:
        if name.startswith("eye_"):
            regions[name] = regions[name] | socket[name[4:]]
        else:
            regions[name] = regions[name] & ~lining          # the lining belongs to its eye only
    regions["eyes"] = regions["eye_left"] | regions["eye_right"]
    regions["brows"] = regions["brow_left"] | regions["brow_right"]
    regions["cheeks"] = regions["cheek_left"] | regions["cheek_right"]
    return regions


def _nearest_landmark(skin: Skin, side: str, xy_left: np.ndarray) -> int:
    """Landmark closest (in the frontal x, y plane) to a point given for the left side."""
    xy = xy_left * ([1.0, 1.0] if side == "left" else [-1.0, 1.0])
    pts = skin.landmarks[:topo.N_LANDMARKS, :2]
    return int(np.argmin(np.linalg.norm(pts - xy, axis=1)))
