"""The 52 ARKit expressions, authored as semantic handle motions.

Each shape moves a few landmark contours (eyelid margins, lip contours, brows,
cheek and chin patches) by amounts taken from docs/template.md (after the
project's ARKit design table), in units of the face's own measures:
H (brow line to chin), W (mouth width), E (eye opening at the pupil).  The rest
of the shape's region follows by Laplacian deformation (Pan et al. Eq. 9-10,
``pyfacerig.geometry.LaplacianDeformer``); everything outside the region is
anchored, so shapes stay local and add linearly.  Jaw shapes are a rigid jaw
transform blended by a smooth jaw weight, with the mouth corners re-solved by the
same Laplacian deformation; mouthClose is a corrective field relative to jawOpen.
Right shapes are the mirror images of the Left ones; symmetric shapes are
symmetrised exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..geometry import LaplacianDeformer
from . import ARKIT_SHAPE_NAMES
from .face import Skin, lid_curve

ANCHOR_WEIGHT = 1.0e4
JAW_OPEN_DEGREES = 20.0
CORNER_RELAX_RADIUS = 0.2          # of mouth width: neighbourhood of each mouth corner re-solved
MOUTH_CLOSE_UPPER_SHARE = 0.3      # share of jawOpen's lip gap that mouthClose gives the upper lip
EYE_LOOK_DEGREES = {"Down": 25.0, "Up": 20.0, "In": 25.0, "Out": 25.0}

# Regions each shape may move ("{s}" is the shape's side).  Checked by the tests.
SHAPE_REGIONS = {
    "eyeBlink{S}": ("eye_{s}",), "eyeLookDown{S}": ("eye_{s}",), "eyeLookIn{S}": ("eye_{s}",),
    "eyeLookOut{S}": ("eye_{s}",), "eyeLookUp{S}": ("eye_{s}",), "eyeSquint{S}": ("eye_{s}",),
    "eyeWide{S}": ("eye_{s}",),
    "jawForward": ("jaw",), "jaw{S}": ("jaw",), "jawOpen": ("jaw",),
    "mouthClose": ("mouth",), "mouthFunnel": ("mouth",), "mouthPucker": ("mouth",),
    "mouth{S}": ("mouth",), "mouthSmile{S}": ("mouth", "cheek_{s}"), "mouthFrown{S}": ("mouth",),
    "mouthDimple{S}": ("mouth",), "mouthStretch{S}": ("mouth",), "mouthRollLower": ("mouth",),
    "mouthRollUpper": ("mouth",), "mouthShrugLower": ("mouth", "chin"), "mouthShrugUpper": ("mouth",),
    "mouthPress{S}": ("mouth",), "mouthLowerDown{S}": ("mouth",), "mouthUpperUp{S}": ("mouth",),
    "browDown{S}": ("brow_{s}",), "browInnerUp": ("brows",), "browOuterUp{S}": ("brow_{s}",),
    "cheekPuff": ("cheeks", "mouth"), "cheekSquint{S}": ("cheek_{s}", "eye_{s}"),
    "noseSneer{S}": ("nose_{s}",), "tongueOut": (),
}


def shape_regions(name: str) -> tuple[str, ...]:
    """Region names a shape may move on the skin."""
    for pattern, regions in SHAPE_REGIONS.items():
        for side, s in (("Left", "left"), ("Right", "right")):
            if pattern.replace("{S}", side) == name:
                return tuple(r.replace("{s}", s) for r in regions)
        if pattern == name:
            return regions
    raise KeyError(name)


def smoothstep(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass
class Rig:
    """Everything the shapes need: the skin, the parts and their attachment data."""

    skin: Skin
    parts: dict                 # name -> (vertices, faces)
    eye_centres: dict           # "left"/"right" -> (3,)
    eye_radius: float
    lid_clearance: float
    jaw_pivot: np.ndarray
    jaw_weight: np.ndarray      # (N_skin,) 0..1
    part_jaw_weight: dict       # part name -> (N_part,) 0..1
    cavity_rim: np.ndarray      # skin vertex id feeding each cavity vertex
    cavity_blend: np.ndarray    # (N_cavity,) 1 at the rim, 0 deep in the sac
    part_mirror: dict           # part name -> (N,) mirror permutation (eyes: same order)
    eye_uv: np.ndarray = None   # (N_eye, 2) iris-centred UVs shared by both eyeballs


# --------------------------------------------------------------------------- solving
class Handles:
    """Accumulates prescribed displacements of skin vertices (later writes win)."""

    def __init__(self):
        self.disp: dict[int, np.ndarray] = {}

    def set(self, ids, disp):
        disp = np.broadcast_to(np.asarray(disp, float), (len(ids), 3))
        for i, d in zip(np.asarray(ids).tolist(), disp):
            self.disp[int(i)] = np.array(d)

    def hold(self, ids):
        """Keep these vertices still unless something else already moves them."""
        for i in np.asarray(ids).tolist():
            self.disp.setdefault(int(i), np.zeros(3))


def solve_skin(rig: Rig, handles: Handles, region: np.ndarray, hold_holes: bool = True) -> np.ndarray:
    """(N, 3) skin displacement: handles exact, region solved, outside exactly zero."""
    skin = rig.skin
    v = skin.vertices
    if hold_holes:
        handles.hold(np.concatenate([skin.chains[k] for k in skin.chains
                                     if k.startswith(("eye_", "lip_inner"))]))
    ids = np.array(sorted(handles.disp), dtype=np.int64)
    disp = np.array([handles.disp[i] for i in ids]).reshape(-1, 3)
    inside = region.copy()
    inside[ids] = True
    outside = np.flatnonzero(~inside)
    anchors = np.concatenate([ids, outside]).astype(np.int32)
    targets = np.vstack([v[ids] + disp, v[outside]])
    deformer = LaplacianDeformer(v, skin.faces, anchors, weight=ANCHOR_WEIGHT, laplacian="cotangent")
    delta = deformer.solve(targets) - v
    delta[~inside] = 0.0
    delta[ids] = disp
    return delta


def region_mask(rig: Rig, name: str) -> np.ndarray:
    mask = np.zeros(len(rig.skin.vertices), bool)
    for r in shape_regions(name):
        mask |= rig.skin.regions[r]
    return mask


# --------------------------------------------------------------------------- eyes
def _lid_bump(x, outer, inner):
    """0 at the eye corners, 1 midway: how much of a lid motion a margin point takes."""
    t = (x - inner) / (outer - inner)
    return np.clip(np.sin(np.pi * np.clip(t, 0.0, 1.0)), 0.0, 1.0)


def _onto_sphere(points, centre, min_radius):
    """Slide points radially so none lies closer than min_radius to the eyeball centre."""
    rel = points - centre
    dist = np.linalg.norm(rel, axis=1, keepdims=True)
    return centre + rel / dist * np.maximum(dist, min_radius)


def _lid_motion(rig: Rig, side: str, upper_dy: float, lower_dy: float, close: bool = False):
    """Handles for the lid margins: vertical moves (in m at mid-lid) that slide over the eyeball."""
    skin, c = rig.skin, rig.eye_centres[side]
    v = skin.vertices
    up_ids, lo_ids = skin.chains[f"eye_{side}_upper"], skin.chains[f"eye_{side}_lower"]
    outer_x, inner_x = v[up_ids[0], 0], v[up_ids[-1], 0]
    h = Handles()
    lo_rest = v[lo_ids]
    lo_bump = _lid_bump(lo_rest[:, 0], outer_x, inner_x)
    lo_new = lo_rest + np.outer(lo_bump * lower_dy, [0, 1, 0])
    lo_new = c + (lo_new - c) * (np.linalg.norm(lo_rest - c, axis=1)
                                 / np.linalg.norm(lo_new - c, axis=1))[:, None]
    h.set(lo_ids, lo_new - lo_rest)
    up_rest = v[up_ids]
    if close:
        # MediaPipe's upper and lower lid contours have the same number of landmarks, paired
        # corner to corner (385 with 380, 386 with 374 ...); refined alike, vertex k of the
        # upper margin closes onto vertex k of the raised lower margin, so the gap is exactly 0.
        if len(up_ids) != len(lo_ids):
            raise RuntimeError("upper and lower lid contours are not paired")
        up_new = lo_new.copy()
    else:
        bump = _lid_bump(up_rest[:, 0], outer_x, inner_x)
        up_new = up_rest + np.outer(bump * upper_dy, [0, 1, 0])
        up_new = c + (up_new - c) * (np.linalg.norm(up_rest - c, axis=1)
                                     / np.linalg.norm(up_new - c, axis=1))[:, None]
    h.set(up_ids, up_new - up_rest)
    return h


def _keep_outside_eyeball(rig: Rig, side: str, delta: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Eyelid skin may slide over the eyeball but never through it.

    Lid skin keeps the lid clearance; the socket lining (which rests closer) keeps its own gap.
    """
    from .face import SOCKET_GAP
    v = rig.skin.vertices
    c = rig.eye_centres[side]
    moved = v + delta
    lining = np.zeros(len(v), bool)
    lining[rig.skin.chains[f"socket_{side}"]] = True
    dist = np.linalg.norm(moved - c, axis=1)
    near = region & (np.linalg.norm(v - c, axis=1) < 2.0 * rig.eye_radius)
    lid = near & ~lining & (v[:, 2] > c[2]) & (dist < rig.eye_radius + rig.lid_clearance)
    lin = near & lining & (dist < rig.eye_radius + SOCKET_GAP)
    delta = delta.copy()
    delta[lid] = _onto_sphere(moved[lid], c, rig.eye_radius + rig.lid_clearance) - v[lid]
    delta[lin] = _onto_sphere(moved[lin], c, rig.eye_radius + SOCKET_GAP) - v[lin]
    return delta


def _eye_rotation(rig: Rig, side: str, direction: str) -> np.ndarray:
    """Delta of that side's eyeball for an eyeLook shape."""
    deg = EYE_LOOK_DEGREES[direction]
    toward_nose = -1.0 if side == "left" else 1.0       # nose is at x = 0
    if direction == "Down":
        rot = Rotation.from_rotvec(np.radians(deg) * np.array([1.0, 0, 0]))
    elif direction == "Up":
        rot = Rotation.from_rotvec(-np.radians(deg) * np.array([1.0, 0, 0]))
    else:
        sign = toward_nose if direction == "In" else -toward_nose
        # rotating +Z about +Y by phi gives (sin phi, 0, cos phi)
        rot = Rotation.from_rotvec(sign * np.radians(deg) * np.array([0, 1.0, 0]))
    verts = rig.parts[f"eye_{side}"][0]
    c = rig.eye_centres[side]
    return rot.apply(verts - c) + c - verts


def eye_shape(rig: Rig, name: str, side: str) -> dict:
    E = rig.skin.measures["E"]
    region = region_mask(rig, name)
    out = {}
    kind = name[3:-len("Left" if side == "left" else "Right")]
    if kind == "Blink":
        h = _lid_motion(rig, side, 0.0, 0.10 * E, close=True)
    elif kind == "LookDown":
        h = _lid_motion(rig, side, -0.30 * E, -0.10 * E)
    elif kind == "LookUp":
        h = _lid_motion(rig, side, 0.15 * E, 0.05 * E)
    elif kind in ("LookIn", "LookOut"):
        h = _lid_motion(rig, side, 0.0, 0.0)
    elif kind == "Squint":
        h = _lid_motion(rig, side, -0.05 * E, 0.35 * E)
    elif kind == "Wide":
        h = _lid_motion(rig, side, 0.40 * E, -0.03 * E)
    else:
        raise KeyError(name)
    delta = solve_skin(rig, h, region)
    out["skin"] = _keep_outside_eyeball(rig, side, delta, region)
    if kind.startswith("Look"):
        out[f"eye_{side}"] = _eye_rotation(rig, side, kind[4:])
    return out


# --------------------------------------------------------------------------- jaw
def jaw_transform(rig: Rig, name: str):
    """Function p -> p' of the rigid jaw motion of a jaw shape (Left side for jawLeft)."""
    H, W = rig.skin.measures["H"], rig.skin.measures["W"]
    if name == "jawOpen":
        rot = Rotation.from_rotvec(np.radians(JAW_OPEN_DEGREES) * np.array([1.0, 0, 0]))
        return lambda p: rot.apply(p - rig.jaw_pivot) + rig.jaw_pivot
    if name == "jawForward":
        return lambda p: p + [0.0, 0.0, 0.05 * H]
    if name == "jawLeft":
        return lambda p: p + [0.15 * W, 0.0, 0.0]
    raise KeyError(name)


def mouth_corner_neighbourhood(skin) -> np.ndarray:
    """(N,) bool: skin within CORNER_RELAX_RADIUS * W (geodesic) of the four lip-corner landmarks."""
    corners = [skin.chains[k][e] for k in ("lip_inner_upper", "lip_outer_upper") for e in (0, -1)]
    return skin.geodesic(corners) < CORNER_RELAX_RADIUS * skin.measures["W"]


def _relax_mouth_corners(rig: Rig, delta: np.ndarray) -> np.ndarray:
    """Re-solve the skin around the mouth corners by Laplacian deformation.

    A linearly blended jaw shears the commissure's tucked-in triangles; letting the
    Laplacian (which keeps each vertex's local shape) place the corner neighbourhoods,
    with everything else anchored where the blend put it, removes most of the folds.
    """
    skin = rig.skin
    near = mouth_corner_neighbourhood(skin)
    h = Handles()
    outside = np.flatnonzero(~near)
    h.set(outside, delta[outside])
    return solve_skin(rig, h, near | (np.abs(delta).sum(1) > 0), hold_holes=False)


def jaw_shape(rig: Rig, name: str) -> dict:
    move = jaw_transform(rig, name)
    v = rig.skin.vertices
    out = {"skin": _relax_mouth_corners(rig, rig.jaw_weight[:, None] * (move(v) - v))}
    for part, w in rig.part_jaw_weight.items():
        pv = rig.parts[part][0]
        out[part] = w[:, None] * (move(pv) - pv)
    return out


# --------------------------------------------------------------------------- mouth
def _lip_ids(rig: Rig) -> dict:
    return {k: rig.skin.chains[k] for k in ("lip_outer_upper", "lip_outer_lower",
                                            "lip_inner_upper", "lip_inner_lower")}


def _side(x, half_width, side: str, reach: float = 0.6):
    """Weight of a one-sided lip motion: 1 at that corner, fading past the midline."""
    sign = 1.0 if side == "left" else -1.0
    return smoothstep((sign * x / half_width + reach) / (1.0 + reach))


def _taper(x, half_width, corner_share: float = 0.25):
    """Lip-only motions fade toward the corners, which both lips share."""
    return 1.0 - (1.0 - corner_share) * np.clip(np.abs(x) / half_width, 0, 1) ** 4


def _lip_thickness(rig: Rig, chain_outer: str, chain_inner: str, x):
    v = rig.skin.vertices
    return (lid_curve(v, rig.skin.chains[chain_outer], x)[:, 1]
            - lid_curve(v, rig.skin.chains[chain_inner], x)[:, 1])


def _curvature_dz(rig: Rig, x, dx):
    """Depth change that keeps a sideways-moving lip point on the face's curve."""
    corner = rig.skin.landmarks[291]
    centre = rig.skin.landmarks[0]
    a = (centre[2] - corner[2]) / corner[0] ** 2
    dz = -a * ((x + dx) ** 2 - x ** 2)
    return np.clip(dz, -0.5 * np.abs(dx), 0.5 * np.abs(dx))   # the parabola overshoots past the corners


def _patch(rig: Rig, seed: int, radius: float, disp, core: float = 1.0) -> Handles:
    """Handles moving a smooth patch: full at the seed, cos^2 to zero at ``radius`` (geodesic).

    Only the inner ``core`` fraction of the radius is prescribed; beyond it the Laplacian
    solve decides, so the patch can meet other handles without creasing.
    """
    d = rig.skin.geodesic([seed])
    ids = np.flatnonzero(d < core * radius)
    w = np.cos(0.5 * np.pi * d[ids] / radius) ** 2
    h = Handles()
    h.set(ids, w[:, None] * np.asarray(disp, float))
    return h


def _nearest(rig: Rig, xy) -> int:
    pts = rig.skin.landmarks[:468, :2]
    return int(np.argmin(np.linalg.norm(pts - np.asarray(xy), axis=1)))


def mouth_shape(rig: Rig, name: str, side: str | None) -> dict:
    skin = rig.skin
    v = skin.vertices
    H, W = skin.measures["H"], skin.measures["W"]
    hw = 0.5 * W
    lips = _lip_ids(rig)
    region = region_mask(rig, name)
    h = Handles()
    all_lip = np.concatenate(list(lips.values()))
    x_all = v[all_lip, 0]
    kind = name if side is None else name[:-len("Left" if side == "left" else "Right")]
    if name in ("mouthLeft", "mouthRight"):
        kind = name

    def corner_motion(d):
        w = _side(x_all, hw, side)
        h.set(all_lip, w[:, None] * np.asarray(d))

    if kind == "mouthSmile":
        corner_motion([0.08 * W, 0.15 * W, -0.10 * W])
        seed = _nearest(rig, [0.80 * W, -0.33 * H])
        cheek = _patch(rig, seed, 0.16 * H, [0.0, 0.04 * H, 0.01 * H])
        for i, d in cheek.disp.items():
            h.disp.setdefault(i, d)
    elif kind == "mouthFrown":
        corner_motion([0.01 * W, -0.10 * W, -0.01 * W])
    elif kind == "mouthDimple":
        corner_motion([0.03 * W, 0.0, -0.10 * W])
    elif kind == "mouthStretch":
        corner_motion([0.09 * W, -0.08 * W, -0.02 * W])
    elif kind in ("mouthLeft", "mouthRight"):
        dx = 0.20 * W * (1.0 if kind == "mouthLeft" else -1.0)
        h.set(all_lip, np.stack([np.full_like(x_all, dx), np.zeros_like(x_all),
                                 _curvature_dz(rig, x_all, dx)], 1))
    elif kind == "mouthPress":
        for outer, inner, sign in (("lip_outer_upper", "lip_inner_upper", -1.0),
                                   ("lip_outer_lower", "lip_inner_lower", 1.0)):
            ids = lips[outer]
            x = v[ids, 0]
            thick = np.abs(_lip_thickness(rig, outer, inner, x))
            w = _side(x, hw, side, reach=0.4)
            h.set(ids, np.stack([0 * x, sign * 0.4 * thick * w, -0.1 * thick * w], 1))
        h.set(lips["lip_inner_upper"], 0.0)
        h.set(lips["lip_inner_lower"], 0.0)
    elif kind == "mouthLowerDown":
        for k, f in (("lip_inner_lower", 1.0), ("lip_outer_lower", 0.85)):
            x = v[lips[k], 0]
            w = _side(x, hw, side, reach=0.3) * _taper(x, hw) * f
            h.set(lips[k], w[:, None] * [0.0, -0.10 * W, -0.01 * W])
        h.hold(np.concatenate([lips["lip_inner_upper"], lips["lip_outer_upper"]]))
    elif kind == "mouthUpperUp":
        for k, f in (("lip_inner_upper", 1.0), ("lip_outer_upper", 0.9)):
            x = v[lips[k], 0]
            w = _side(x, hw, side, reach=0.3) * _taper(x, hw) * f
            h.set(lips[k], w[:, None] * [0.0, 0.08 * W, 0.005 * W])
        h.hold(np.concatenate([lips["lip_inner_lower"], lips["lip_outer_lower"]]))
    elif kind == "mouthClose":
        # A corrective of jawOpen.  With D jawOpen's skin delta and J the rigid jaw motion
        # of a point, mouthClose = m (a J - D): on the lips (m = 1) jawOpen + mouthClose
        # moves every point by a J, so the paired inner-lip vertices (together at rest)
        # meet there; m fades to 0 across the mouth region, so the field is as smooth as D.
        # a = 0.3: the soft lower lip travels 70 % of the gap, the upper lip 30 %.
        rigid = jaw_transform(rig, "jawOpen")(v) - v
        jaw_delta = jaw_shape(rig, "jawOpen")["skin"]
        d_lips = skin.geodesic(all_lip)
        m = smoothstep((0.5 * W - d_lips) / (0.4 * W)) * region
        return {"skin": m[:, None] * (MOUTH_CLOSE_UPPER_SHARE * rigid - jaw_delta)}
    elif kind in ("mouthPucker", "mouthFunnel"):
        narrow = 0.30 if kind == "mouthPucker" else 0.25
        for k in lips:
            ids = lips[k]
            x = v[ids, 0]
            r = np.clip(np.abs(x) / hw, 0, 1)
            forward = (0.10 if "inner" in k else 0.12) * W * (1.0 - 0.5 * r ** 2)
            dx = -narrow * x
            dy = np.zeros_like(x)
            if kind == "mouthFunnel":
                opening = 0.07 * W * np.sqrt(np.clip(1.0 - r ** 2, 0.0, 1.0))
                dy = opening * {"lip_inner_upper": 1.0, "lip_inner_lower": -1.0,
                                "lip_outer_upper": 1.2, "lip_outer_lower": -1.2}[k]
                forward = forward + (0.02 * W if "outer" in k else 0.0)
            h.set(ids, np.stack([dx, dy, forward + _curvature_dz(rig, x, dx)], 1))
    elif kind in ("mouthRollLower", "mouthRollUpper"):
        lip = "lower" if kind == "mouthRollLower" else "upper"
        sign = 1.0 if lip == "lower" else -1.0          # toward the other lip
        outer, inner = lips[f"lip_outer_{lip}"], lips[f"lip_inner_{lip}"]
        xo = v[outer, 0]
        thick = np.abs(_lip_thickness(rig, f"lip_outer_{lip}", f"lip_inner_{lip}", xo))
        t = _taper(xo, hw, 0.1)
        h.set(outer, np.stack([0 * xo, sign * 0.75 * thick * t, -0.10 * W * t], 1))
        xi = v[inner, 0]
        ti = _taper(xi, hw, 0.1)
        h.set(inner, np.stack([0 * xi, -sign * 0.10 * W * 0.25 * ti, -0.12 * W * ti], 1))
    elif kind == "mouthShrugLower":
        for k, d in (("lip_inner_lower", [0, 0.02 * H, 0.006 * H]),
                     ("lip_inner_upper", [0, 0.02 * H, 0.003 * H]),
                     ("lip_outer_lower", [0, 0.035 * H, 0.015 * H]),
                     ("lip_outer_upper", [0, 0.012 * H, 0.003 * H])):
            x = v[lips[k], 0]
            h.set(lips[k], _taper(x, hw)[:, None] * np.asarray(d))
        # the chin boss pushes up from below the lip; prescribed only at its centre
        chin_boss = _nearest(rig, [0.0, 0.4 * skin.landmarks[17, 1] + 0.6 * skin.landmarks[152, 1]])
        for i, d in _patch(rig, chin_boss, 0.16 * H, [0, 0.05 * H, 0.01 * H], core=0.5).disp.items():
            h.disp.setdefault(i, d)
    elif kind == "mouthShrugUpper":
        for k, d in (("lip_outer_upper", [0, 0.03 * H, 0.005 * H]),
                     ("lip_inner_upper", [0, 0.03 * H, 0.004 * H]),
                     ("lip_inner_lower", [0, 0.03 * H, 0.004 * H]),
                     ("lip_outer_lower", [0, 0.012 * H, 0.002 * H])):
            x = v[lips[k], 0]
            h.set(lips[k], _taper(x, hw)[:, None] * np.asarray(d))
    else:
        raise KeyError(name)
    return {"skin": solve_skin(rig, h, region)}


# --------------------------------------------------------------------------- brows, cheeks, nose
def brow_shape(rig: Rig, name: str, sides: tuple[str, ...]) -> dict:
    skin = rig.skin
    v = skin.vertices
    H = skin.measures["H"]
    h = Handles()
    for side in sides:
        ids = np.concatenate([skin.chains[f"brow_{side}_lower"], skin.chains[f"brow_{side}_upper"]])
        x = np.abs(v[ids, 0])
        inner = np.clip((x.max() - x) / (x.max() - x.min()), 0, 1)
        toward_centre = -1.0 if side == "left" else 1.0
        if name.startswith("browDown"):
            d = np.stack([toward_centre * 0.012 * H * inner, -0.04 * H * (0.6 + 0.4 * inner),
                          -0.004 * H * np.ones_like(x)], 1)
        elif name == "browInnerUp":
            d = np.stack([toward_centre * 0.006 * H * inner, 0.05 * H * inner ** 1.5,
                          0.0 * x], 1)
        else:                                             # browOuterUp
            d = np.stack([0.0 * x, 0.05 * H * (1.0 - inner) ** 1.5, 0.0 * x], 1)
        h.set(ids, d)
    return {"skin": solve_skin(rig, h, region_mask(rig, name))}


def _vertex_normals(vertices, faces):
    n = np.zeros_like(vertices)
    fn = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def cheek_nose_shape(rig: Rig, name: str, side: str | None) -> dict:
    skin = rig.skin
    H, W, E = skin.measures["H"], skin.measures["W"], skin.measures["E"]
    sx = 1.0 if side in (None, "left") else -1.0
    h = Handles()
    if name == "cheekPuff":
        # Each cheek bulges along its patch's mean normal (vertex normals in the mouth
        # corners point every which way); the lips stay closed and still.
        normals = _vertex_normals(skin.vertices, skin.faces)
        for s in (1.0, -1.0):
            seed = _nearest(rig, [s * 0.80 * W, -0.45 * H])
            d = skin.geodesic([seed])
            radius = 0.30 * H
            ids = np.flatnonzero(d < 0.75 * radius)
            w = np.cos(0.5 * np.pi * d[ids] / radius) ** 2
            direction = (w[:, None] * normals[ids]).sum(0)
            direction /= np.linalg.norm(direction)
            h.set(ids, 0.05 * H * w[:, None] * direction)
        lips = np.concatenate(list(_lip_ids(rig).values()))
        h.set(lips, 0.0)
    elif name.startswith("cheekSquint"):
        seed = _nearest(rig, [sx * 0.62 * W, -0.20 * H])
        h = _patch(rig, seed, 0.14 * H, [0.0, 0.03 * H, 0.006 * H])
        lid = _lid_motion(rig, side, 0.0, 0.12 * E)
        h.disp.update(lid.disp)
    elif name.startswith("noseSneer"):
        seed = _nearest(rig, [sx * 0.40 * W, -0.30 * H])
        h = _patch(rig, seed, 0.11 * H, [-sx * 0.004 * H, 0.03 * H, 0.004 * H])
    else:
        raise KeyError(name)
    return {"skin": solve_skin(rig, h, region_mask(rig, name))}


# --------------------------------------------------------------------------- tongue
def tongue_out(rig: Rig) -> dict:
    """The tongue slides out over the lower lip: tip 0.15 H past the lips.

    The tongue rides on the jaw like the lower lip, so in the jaw's frame the path is
    the same at any jawOpen: forward and up until the tip's underside is level with
    the lip line, i.e. resting on the lower lip once the jaw opens.
    """
    verts = rig.parts["tongue"][0]
    H = rig.skin.measures["H"]
    lm = rig.skin.landmarks
    lips_front = lm[[0, 17], 2].max()
    seam_y = lm[[13, 14], 1].mean()
    tip_z = verts[:, 2].max()
    reach = lips_front - tip_z + 0.15 * H
    z0 = verts[:, 2].min()
    t = np.clip((verts[:, 2] - z0) / (tip_z - z0), 0.0, 1.0) ** 1.5   # the root stays, the tip goes furthest
    front = verts[:, 2] > tip_z - 0.01
    lift = seam_y + 0.0015 - verts[front, 1].mean()
    centre_y = verts[:, 1].mean()
    d = np.zeros_like(verts)
    d[:, 2] = reach * t
    rise = smoothstep(3.0 * t)                                    # the moving part rises as a whole
    d[:, 1] = lift * rise - 0.10 * t * (verts[:, 1] - centre_y)  # to the lip line, flattening
    d[:, 0] = -0.10 * t * verts[:, 0]                             # narrows
    return {"tongue": d}


# --------------------------------------------------------------------------- all 52
def _cavity_follow(rig: Rig, deltas: dict, name: str) -> None:
    """The mouth cavity's rim follows the skin's inner lips; the jaw carries its floor."""
    cav = rig.parts["mouth_cavity"][0]
    skin_d = deltas.get("skin", np.zeros_like(rig.skin.vertices))
    d = rig.cavity_blend[:, None] * skin_d[rig.cavity_rim]
    if name in ("jawOpen", "jawForward", "jawLeft"):
        move = jaw_transform(rig, name)
        d += (1.0 - rig.cavity_blend)[:, None] * rig.part_jaw_weight["mouth_cavity"][:, None] * (move(cav) - cav)
    deltas["mouth_cavity"] = d


def mirror_deltas(rig: Rig, deltas: dict) -> dict:
    """The mirror image (x -> -x) of one shape's deltas on every part."""
    flip = np.array([1.0, 1.0, 1.0])
    flip[0] = -1.0
    out = {}
    for part, d in deltas.items():
        if part == "skin":
            out[part] = d[rig.skin.mirror] * flip
        elif part in ("eye_left", "eye_right"):
            other = "eye_right" if part == "eye_left" else "eye_left"
            out[other] = d * flip
        else:
            out[part] = d[rig.part_mirror[part]] * flip
    return out


def symmetrize_deltas(rig: Rig, deltas: dict) -> dict:
    mirrored = mirror_deltas(rig, deltas)
    keys = set(deltas) | set(mirrored)
    return {k: 0.5 * (deltas.get(k, 0.0) + mirrored.get(k, 0.0)) for k in keys}


def author_left_or_symmetric(rig: Rig, name: str) -> dict:
    side = "left" if name.endswith("Left") else None
    if name.startswith("eye"):
        return eye_shape(rig, name, "left")
    if name in ("jawOpen", "jawForward", "jawLeft"):
        return jaw_shape(rig, name)
    if name.startswith("mouth"):
        return mouth_shape(rig, name, side)
    if name.startswith("brow"):
        return brow_shape(rig, name, ("left", "right") if name == "browInnerUp" else ("left",))
    if name.startswith(("cheek", "noseSneer")):
        return cheek_nose_shape(rig, name, side)
    if name == "tongueOut":
        return tongue_out(rig)
    raise KeyError(name)


MIRROR_OF = {"jawRight": "jawLeft", "mouthRight": "mouthLeft"}


def author_all(rig: Rig) -> dict:
    """name -> {part: (N_part, 3) delta} for all 52 shapes, Right shapes mirrored from Left."""
    shapes = {}
    for name in ARKIT_SHAPE_NAMES:
        if name.endswith("Right") or name in MIRROR_OF:
            continue
        deltas = author_left_or_symmetric(rig, name)
        if not name.endswith("Left") and name not in ("jawLeft", "mouthLeft"):
            deltas = symmetrize_deltas(rig, deltas)
        _cavity_follow(rig, deltas, name)
        shapes[name] = deltas
    for name in ARKIT_SHAPE_NAMES:
        if name in shapes:
            continue
        source = MIRROR_OF.get(name, name[:-len("Right")] + "Left")
        shapes[name] = mirror_deltas(rig, shapes[source])
    return shapes
