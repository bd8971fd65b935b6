"""The default face template: topology, UVs, parts and the 52 ARKit expressions.

Rig generation (Pan et al. §3.3) transfers a template's expression shapes onto
each user's face.  pyfacerig ships its own template, generated from real faces
by ``tools/make_template.py``; :func:`load_default` reads the committed asset.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Apple's 52 ARKit blendshape names, in Apple's order.  "Left"/"Right" are the subject's.
ARKIT_SHAPE_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)

#: Part names in the order every consumer sees them.
PART_NAMES: tuple[str, ...] = (
    "skin", "eye_left", "eye_right", "mouth_cavity", "teeth_upper", "teeth_lower", "tongue",
)


@dataclass(frozen=True)
class TemplatePart:
    """One mesh of the template.

    vertices: (N, 3) float64 neutral positions in metres (+Y up, face toward +Z).
    faces: (F, 3) int32, counter-clockwise seen from outside.
    uvs: (N, 2) float32 in [0, 1], glTF convention (origin at the image's top-left).
    shape_deltas: (52, N, 3) float32, one per ARKIT_SHAPE_NAMES entry; zeros where a
        shape does not move this part.
    material: "skin", "eye", "mouth", "teeth" or "tongue".
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    shape_deltas: np.ndarray
    material: str


@dataclass(frozen=True)
class FaceTemplate:
    """The whole template: parts plus the anchors that tie it to landmarks.

    shape_names: the 52 ARKit names, in Apple's order.
    parts: name -> TemplatePart, in PART_NAMES order.
    landmark_vertex_ids: (468,) int32 skin vertex of each MediaPipe face-mesh landmark
        (the subdivided skin keeps the 468 originals first, so this is arange(468)).
    iris_landmarks: (10,) int32, the MediaPipe iris landmark ids 468..477; 468..472 belong
        to eye_right (subject's right: 468 centre, 469..472 rim), 473..477 to eye_left.
    landmarks68_vertex_ids: (68,) int32 skin vertex for each iBUG-68 point: the vertex-id form
        (:func:`pyfacerig.landmarks.ibug68_nearest_landmarks`) of the one 68-point definition
        in :mod:`pyfacerig.landmarks`, taken on this template's frontal neutral.  The exact
        points of a posed or fitted skin are ``mediapipe_to_ibug68`` of its first 468 vertices.
    regions: name -> (N_skin,) bool masks on the skin ("eyes", "nose", "brows", "mouth",
        "contour", ... see docs/template.md).
    eye_centers: (2, 3) float64 eyeball centres, row 0 the subject's left eye, row 1 the right.
    eye_radius: eyeball radius in metres.
    jaw_pivot: (3,) float64 point on the jaw's rotation axis (the axis is +X).
    extras: generator facts (see docs/template.md): measures, shape_regions, skin_mirror,
        landmarks (478, 3), jaw_weight, iris/pupil UV radii, uv_fill_ratio, sources, chains,
        face_vertex_count (skin vertices before the eye-socket lining), iris_landmarks_by_part.
    """

    shape_names: tuple[str, ...]
    parts: dict[str, TemplatePart]
    landmark_vertex_ids: np.ndarray
    iris_landmarks: np.ndarray
    landmarks68_vertex_ids: np.ndarray
    regions: dict[str, np.ndarray]
    eye_centers: np.ndarray
    eye_radius: float
    jaw_pivot: np.ndarray
    extras: dict = field(default_factory=dict)


_CACHE: dict = {}


def load(path) -> FaceTemplate:
    """Read a template file written by :mod:`pyfacerig.templates.generate`.

    Raises InvalidInputError naming the file if it is not a complete template.
    """
    from ..errors import InvalidInputError
    from .asset import read
    header, arrays = read(path)
    try:
        return _assemble(header, arrays, path)
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        if isinstance(exc, InvalidInputError):
            raise
        raise InvalidInputError(f"template file {path} is incomplete or inconsistent: {exc!r}") from None


def _assemble(header: dict, arrays: dict, path) -> FaceTemplate:
    from .asset import dense_deltas
    names = tuple(header["shape_names"])
    if names != ARKIT_SHAPE_NAMES:
        from ..errors import InvalidInputError
        raise InvalidInputError(f"template {path} does not carry the 52 ARKit shapes in Apple's order")
    parts = {}
    for name in header["part_order"]:
        verts = arrays[f"{name}/vertices"].astype(np.float64)
        deltas = dense_deltas(arrays[f"{name}/delta_offsets"], arrays[f"{name}/delta_ids"],
                              arrays[f"{name}/delta_values"], len(names), len(verts))
        parts[name] = TemplatePart(name=name, vertices=verts, faces=arrays[f"{name}/faces"],
                                   uvs=arrays[f"{name}/uvs"], shape_deltas=deltas,
                                   material=header["parts"][name]["material"])
    n_skin = len(parts["skin"].vertices)
    regions = {key[len("regions/"):]: np.unpackbits(arr)[:n_skin].astype(bool)
               for key, arr in arrays.items() if key.startswith("regions/")}
    extras = {k: header[k] for k in ("measures", "shape_regions", "iris_uv_radius", "pupil_uv_radius",
                                     "uv_fill_ratio", "sources", "chains", "face_vertex_count")}
    extras["skin_mirror"] = arrays["skin_mirror"].astype(np.int64)
    extras["landmarks"] = arrays["landmarks"].astype(np.float64)
    extras["jaw_weight"] = arrays["jaw_weight"]
    # MediaPipe's iris landmarks by eyeball part: centre first, then the four rim points
    extras["iris_landmarks_by_part"] = {"eye_left": np.arange(473, 478, dtype=np.int32),
                                        "eye_right": np.arange(468, 473, dtype=np.int32)}
    for part in parts.values():
        for arr in (part.vertices, part.faces, part.uvs, part.shape_deltas):
            arr.setflags(write=False)
    return FaceTemplate(
        shape_names=names, parts=parts,
        landmark_vertex_ids=np.arange(468, dtype=np.int32),
        iris_landmarks=np.arange(468, 478, dtype=np.int32),
        landmarks68_vertex_ids=arrays["landmarks68_vertex_ids"],
        regions=regions,
        eye_centers=arrays["eye_centers"].astype(np.float64),
        eye_radius=float(header["eye_radius"]),
        jaw_pivot=arrays["jaw_pivot"].astype(np.float64),
        extras=extras)


def load_default() -> FaceTemplate:
    """The template shipped with pyfacerig (read once, then cached; arrays are read-only)."""
    if "default" not in _CACHE:
        from .generate import DEFAULT_PATH
        _CACHE["default"] = load(DEFAULT_PATH)
    return _CACHE["default"]
