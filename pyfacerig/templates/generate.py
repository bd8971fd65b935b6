"""Builds the default template from real portraits; ``tools/make_template.py`` calls it.

Order of work (each step a plain function of the previous one's data):
  1. MediaPipe landmarks of the source portraits (:mod:`.neutral` names them);
  2. Procrustes average, mirror symmetry, metres -> neutral landmarks;
  3. refined skin, its contours and regions (:mod:`.face`) and UV chart (:mod:`.uv`);
  4. eyeballs fitted to the eye openings, mouth cavity, teeth, tongue (:mod:`.parts`);
  5. the 52 ARKit shapes (:mod:`.expressions`);
  6. the deterministic asset file (:mod:`.asset`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.spatial import cKDTree

from ..landmarks import ibug68_nearest_landmarks
from . import ARKIT_SHAPE_NAMES, PART_NAMES, asset, neutral, parts
from .expressions import Rig, author_all, mouth_corner_neighbourhood, shape_regions, smoothstep
from .face import EYE_RADIUS, LID_CLEARANCE, Skin, build_skin
from .topology import check_mirror, edges_of
from .uv import fill_ratio

POSITION_QUANTUM = 1e-7       # metres; neutral positions are rounded to this

MATERIALS = {"skin": "skin", "eye_left": "eye", "eye_right": "eye", "mouth_cavity": "mouth",
             "teeth_upper": "teeth", "teeth_lower": "teeth", "tongue": "tongue"}
DEFAULT_PATH = Path(__file__).with_name("default_template.frt")


def jaw_weights(skin: Skin) -> np.ndarray:
    """Smooth 0..1 weight of the jaw's rigid motion on the skin (harmonic interpolation).

    1 on the lower lip and below the chin boss, 0 on the upper lip and from the
    nose base up; the band in between (cheeks, mouth corners) is harmonic.
    """
    v, ch, lm = skin.vertices, skin.chains, skin.landmarks
    W = skin.measures["W"]
    n = len(v)
    value = np.full(n, np.nan)
    value[v[:, 1] > lm[2, 1]] = 0.0                                  # above the nose base
    value[v[:, 1] < lm[17, 1] - 0.25 * W] = 1.0                      # chin and jaw line
    for k in ("lip_inner_upper", "lip_outer_upper"):
        value[ch[k][1:-1]] = 0.0
    for k in ("lip_inner_lower", "lip_outer_lower"):
        value[ch[k][1:-1]] = 1.0
    edges, _ = edges_of(skin.faces)
    adj = sp.coo_matrix((np.ones(2 * len(edges)), (edges.ravel(), edges[:, ::-1].ravel())),
                        shape=(n, n)).tocsr()
    lap = (sp.diags(np.asarray(adj.sum(1)).ravel()) - adj).tocsr()
    fixed = ~np.isnan(value)
    free = np.flatnonzero(~fixed)
    rhs = -lap[free][:, np.flatnonzero(fixed)] @ value[fixed]
    value[free] = spla.spsolve(lap[free][:, free].tocsc(), rhs)
    value = smoothstep(value)            # flat at 0 and 1: no crease where the weight saturates
    value[value < 1e-4] = 0.0
    return value


def quantize(positions: np.ndarray) -> np.ndarray:
    """Round to POSITION_QUANTUM; last-bit solver noise (and the sign of zero) cannot survive it."""
    return np.round(positions / POSITION_QUANTUM) * POSITION_QUANTUM + 0.0


def _part_mirror(vertices: np.ndarray) -> np.ndarray:
    dist, idx = cKDTree(vertices).query(vertices * [-1.0, 1.0, 1.0])
    if dist.max() > 1e-9 or not np.array_equal(idx[idx], np.arange(len(idx))):
        raise RuntimeError("part is not mirror-symmetric")
    return idx


def build_rig(landmarks: np.ndarray, landmark_mirror: np.ndarray) -> Rig:
    skin = build_skin(landmarks, landmark_mirror)
    centres = skin.eye_centres
    eye_v, eye_f, eye_uv = parts.eyeball(centres["left"], EYE_RADIUS)
    eye_rv, eye_rf = parts.mirror_part(eye_v, eye_f)

    mouth_loop = np.concatenate([skin.chains["lip_inner_upper"],
                                 skin.chains["lip_inner_lower"][::-1][1:-1]])
    upper = np.zeros(len(mouth_loop), bool)
    upper[:len(skin.chains["lip_inner_upper"])] = True
    cav_v, cav_f, cav_blend = parts.mouth_cavity(skin.vertices[mouth_loop], upper)
    rim_index = np.concatenate([np.tile(np.arange(len(mouth_loop)), len(parts.CAVITY_RINGS) + 1),
                                [0]])
    # Teeth at rest are slightly apart under closed lips (the freeway space); the upper
    # incisal edge sits just below the lip line so it shows as soon as the lips part.
    seam = landmarks[[13, 14]].mean(0)
    upper_front = seam + [0.0, -0.0025, -0.009]
    lower_front = np.array([0.0, seam[1] - 0.0045, upper_front[2] - 0.0015])
    tu_v, tu_f = parts.teeth(upper_front, upper=True)
    tl_v, tl_f = parts.teeth(lower_front, upper=False)
    to_v, to_f = parts.tongue(np.array([0.0, seam[1] - 0.0135, lower_front[2] - 0.005]),
                              width=0.040, thickness=0.016)
    meshes = {"eye_left": (eye_v, eye_f), "eye_right": (eye_rv, eye_rf),
              "mouth_cavity": (cav_v, cav_f), "teeth_upper": (tu_v, tu_f),
              "teeth_lower": (tl_v, tl_f), "tongue": (to_v, to_f)}
    ear = landmarks[454]
    jaw_pivot = np.array([0.0, ear[1], ear[2] - 0.012])
    cavity_jaw = np.clip(0.5 - (cav_v[:, 1] - seam[1]) / 0.008, 0.0, 1.0)
    rig = Rig(skin=skin, parts=meshes, eye_centres=centres, eye_radius=EYE_RADIUS,
              lid_clearance=LID_CLEARANCE, jaw_pivot=jaw_pivot, jaw_weight=jaw_weights(skin),
              eye_uv=eye_uv,
              part_jaw_weight={"teeth_lower": np.ones(len(tl_v)), "tongue": np.ones(len(to_v)),
                               "mouth_cavity": cavity_jaw},
              cavity_rim=mouth_loop[rim_index], cavity_blend=cav_blend,
              part_mirror={k: _part_mirror(meshes[k][0]) for k in ("teeth_upper", "teeth_lower", "tongue")})
    # the cavity's rim pairs coincide (closed lips), so its mirror follows the rim loop's
    rim_position = {int(s): j for j, s in enumerate(mouth_loop)}
    rim_mirror = np.array([rim_position[int(skin.mirror[s])] for s in mouth_loop])
    ring_count = len(parts.CAVITY_RINGS) + 1
    cav_mirror = np.concatenate([k * len(mouth_loop) + rim_mirror for k in range(ring_count)]
                                + [[ring_count * len(mouth_loop)]])
    check_mirror(cav_mirror, cav_v)
    rig.part_mirror["mouth_cavity"] = cav_mirror
    # the jaw region: where the jaw weight acts, plus the re-solved mouth-corner neighbourhoods
    rig.skin.regions["jaw"] = (rig.jaw_weight > 0) | mouth_corner_neighbourhood(skin)
    return rig


def _part_uvs(rig: Rig, name: str) -> np.ndarray:
    """Non-skin UVs: eyes use the iris map; the mouth parts a simple planar projection."""
    if name.startswith("eye_"):
        return rig.eye_uv
    v = rig.parts[name][0]
    lo, hi = v.min(0), v.max(0)
    u = (v[:, 0] - lo[0]) / max(hi[0] - lo[0], 1e-9)
    w = 1.0 - (v[:, 1] - lo[1]) / max(hi[1] - lo[1], 1e-9)
    return np.stack([u, w], 1)


def generate(detections: dict | None = None) -> tuple[dict, dict]:
    """Run the whole pipeline; returns (header, arrays) ready for :func:`asset.write`.

    detections: source landmarks (see :mod:`.neutral`); by default the committed
    ``source_landmarks.frt`` that ``tools/make_template.py --detect`` writes.
    """
    if detections is None:
        detections = neutral.read_detections()
    detections = neutral.round_detections(detections)
    built = neutral.build_neutral(detections)
    landmarks = quantize(built["landmarks"])
    rig = build_rig(landmarks, built["mirror"])
    shapes = author_all(rig)

    skin = rig.skin
    all_parts = {"skin": (skin.vertices, skin.faces)} | rig.parts
    arrays, part_info = {}, {}
    for name in PART_NAMES:
        verts, faces = all_parts[name]
        uvs = skin.uvs if name == "skin" else _part_uvs(rig, name)
        dense = np.stack([shapes[s].get(name, np.zeros_like(verts)) for s in ARKIT_SHAPE_NAMES])
        offsets, ids, values = asset.sparse_deltas(dense)
        arrays[f"{name}/vertices"] = quantize(verts).astype(np.float32)
        arrays[f"{name}/faces"] = np.asarray(faces, np.int32)
        arrays[f"{name}/uvs"] = np.clip(uvs, 0.0, 1.0).astype(np.float32)
        arrays[f"{name}/delta_offsets"] = offsets
        arrays[f"{name}/delta_ids"] = ids
        arrays[f"{name}/delta_values"] = values
        part_info[name] = {"material": MATERIALS[name], "vertex_count": len(verts),
                           "face_count": len(faces)}
    for region, mask in sorted(skin.regions.items()):
        arrays[f"regions/{region}"] = np.packbits(mask.astype(np.uint8))
    arrays["skin_mirror"] = skin.mirror.astype(np.int32)
    arrays["landmarks"] = landmarks.astype(np.float32)
    arrays["jaw_weight"] = rig.jaw_weight.astype(np.float32)
    arrays["eye_centers"] = np.stack([rig.eye_centres["left"], rig.eye_centres["right"]]).astype(np.float32)
    arrays["jaw_pivot"] = rig.jaw_pivot.astype(np.float32)
    # The 68 iBUG points are defined once, in pyfacerig.landmarks; the template stores their
    # vertex-id form on its own frontal neutral (the skin's first 468 vertices are MediaPipe's).
    frontal = np.column_stack([landmarks[:468, 0], -landmarks[:468, 1]])
    arrays["landmarks68_vertex_ids"] = ibug68_nearest_landmarks(frontal).astype(np.int32)
    iris_theta = np.arcsin(min(1.0, skin.measures["iris_radius"] / rig.eye_radius))
    pupil_theta = np.arcsin(min(1.0, 0.4 * skin.measures["iris_radius"] / rig.eye_radius))
    header = {
        "shape_names": list(ARKIT_SHAPE_NAMES),
        "parts": part_info,
        "part_order": list(PART_NAMES),
        "eye_radius": round(rig.eye_radius, 9),
        "measures": {k: round(float(v), 7) for k, v in skin.measures.items()},
        "shape_regions": {s: list(shape_regions(s)) for s in ARKIT_SHAPE_NAMES},
        "iris_uv_radius": round(float(iris_theta / (2 * np.pi)), 6),
        "pupil_uv_radius": round(float(pupil_theta / (2 * np.pi)), 6),
        "uv_fill_ratio": round(fill_ratio(skin.uvs, skin.faces), 6),
        "face_vertex_count": int(skin.face_vertex_count),
        "sources": built["sources"],
        "chains": {k: [int(i) for i in v] for k, v in skin.coarse_chains.items()},
    }
    return header, arrays


def write_default(path: str | Path = DEFAULT_PATH, detections: dict | None = None) -> Path:
    header, arrays = generate(detections)
    asset.write(path, header, arrays)
    return Path(path)
