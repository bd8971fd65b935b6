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
#: The mouth interior is a pocket of the skin itself (as on the MakeHuman head), not a part.
PART_NAMES: tuple[str, ...] = (
    "skin", "eye_left", "eye_right", "teeth_upper", "teeth_lower", "tongue",
)


@dataclass(frozen=True)
class TemplatePart:
    """One mesh of the template.

    vertices: (N, 3) float64 neutral positions in metres (+Y up, face toward +Z).
    faces: (F, 3) int32, counter-clockwise seen from outside.
    uvs: (N, 2) float32 in [0, 1], glTF convention (origin at the image's top-left); for a
        part with UV seams (the skin), (M, 2) per UV vertex, see ``uv_welded_ids``.
    shape_deltas: (52, N, 3) float32, one per ARKIT_SHAPE_NAMES entry; zeros where a
        shape does not move this part.
    material: "skin", "eye", "teeth" or "tongue".
    uv_welded_ids, uv_faces: for a part whose UV atlas has seams, (M,) int32 the vertex each UV
        vertex copies and (F, 3) int32 the faces over the UV vertices (same order as ``faces``).
        Geometry (fits, transfer) works on the welded vertices; exporters and texture baking on
        the UV vertices (:meth:`split`).  None when every vertex has one UV.
    """

    name: str
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    shape_deltas: np.ndarray
    material: str
    uv_welded_ids: np.ndarray | None = None
    uv_faces: np.ndarray | None = None

    def split(self, per_vertex: np.ndarray) -> np.ndarray:
        """A per-vertex array (..., N, C) on the UV vertices (..., M, C)."""
        if self.uv_welded_ids is None:
            return per_vertex
        # np.take returns a C-contiguous array (indexing [..., ids, :] does not for stacked shapes,
        # which made every exporter's per-shape slice a strided copy) and is ~3x faster.
        return np.take(np.asarray(per_vertex), self.uv_welded_ids, axis=-2)

    def uv_vertex_of(self, vertex_ids) -> np.ndarray:
        """The first UV vertex copying each given vertex: ids into the exported (split) vertices."""
        vertex_ids = np.asarray(vertex_ids, dtype=np.int64)
        if self.uv_welded_ids is None:
            return vertex_ids
        first = np.full(len(self.vertices), -1, np.int64)
        first[self.uv_welded_ids[::-1]] = np.arange(len(self.uv_welded_ids))[::-1]
        return first[vertex_ids]

    @property
    def export_faces(self) -> np.ndarray:
        """Faces over the UV vertices: what an exporter writes."""
        return self.faces if self.uv_faces is None else self.uv_faces


@dataclass(frozen=True)
class TemplateSkeleton:
    """The template's head skeleton (docs/template.md, "Skeleton"); rest rotations are the identity.

    joint_names: ("root", "neck", "head", "jaw", "eye_l", "eye_r"), parents before children.
    parents: (J,) int32, -1 for the root.
    positions: (J, 3) float64 joint positions in the template frame (metres).
    weights: part name -> (N, J) float32 linear blend skinning weights, rows summing to 1 (the
        skin's from MakeHuman's default rig, at most 4 joints per vertex; each rigid part wholly
        on one joint: eyes on their eye joints, upper teeth on the head, lower teeth and
        tongue on the jaw).
    """

    joint_names: tuple[str, ...]
    parents: np.ndarray
    positions: np.ndarray
    weights: dict[str, np.ndarray]


@dataclass(frozen=True)
class FaceTemplate:
    """The whole template: parts plus the anchors that tie it to landmarks.

    shape_names: the 52 ARKit names, in Apple's order.
    parts: name -> TemplatePart, in PART_NAMES order.
    landmark_vertex_ids: (468,) int32 skin vertex of each MediaPipe face-mesh landmark: the
        vertex nearest the landmark's surface point (``extras["landmark_triangles"]`` and
        ``extras["landmark_barycentrics"]``), distinct for every landmark.
    iris_landmarks: (10,) int32, the MediaPipe iris landmark ids 468..477; 468..472 belong
        to eye_right (subject's right: 468 centre, 469..472 rim), 473..477 to eye_left.
    landmarks68_vertex_ids: (68,) int32 skin vertex for each iBUG-68 point: the vertex-id form
        (:func:`pyfacerig.landmarks.ibug68_nearest_landmarks`) of the one 68-point definition
        in :mod:`pyfacerig.landmarks`, taken on this template's frontal neutral.  The exact
        points of a posed or fitted skin are ``mediapipe_to_ibug68`` of its landmark vertices.
    regions: name -> (N_skin,) bool masks on the skin ("face", "lips"; see docs/template.md).
    eye_centers: (2, 3) float64 eyeball centres, row 0 the subject's left eye, row 1 the right.
    eye_radius: eyeball radius in metres.
    jaw_pivot: (3,) float64 point on the jaw's rotation axis (the axis is +X).
    skeleton: the head skeleton and skinning weights (:class:`TemplateSkeleton`).
    identity_basis: (P, N_skin, 3) float32 identity modifiers (MakeHuman's semantic targets on
        the head), the coarse fit's α_id basis (Pan et al. Eq. 1); ``extras["identity_modifiers"]``
        names them.  None for a template made from a glTF head (:mod:`.from_gltf`): the coarse fit
        then uses its generic shape modes (:func:`pyfacerig.fit.shape_basis`).
    extras: generator facts (see docs/template.md): measures, skin_mirror, landmarks (478, 3),
        landmark_triangles/barycentrics, iris/pupil UV radii, sources, identity_modifiers,
        neck_cap_first, atlas_charts, skin_uv_charts, iris_landmarks_by_part.
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
    identity_basis: np.ndarray = None
    skeleton: TemplateSkeleton = None
    extras: dict = field(default_factory=dict)

    def skin_landmark_ids(self, vertex_count: int) -> np.ndarray:
        """(468,) landmark vertex ids for a skin of ``vertex_count`` vertices of this template:
        the welded skin (fits, :class:`pyfacerig.Avatar`) or the exported one with its UV seams
        split (a .glb, .fbx or .frig).  Raises InvalidInputError for any other count."""
        skin = self.parts["skin"]
        if vertex_count == len(skin.vertices):
            return np.asarray(self.landmark_vertex_ids, dtype=np.int64)
        if vertex_count == len(skin.uvs):
            return skin.uv_vertex_of(self.landmark_vertex_ids)
        from ..errors import InvalidInputError
        raise InvalidInputError(f"a skin of {vertex_count} vertices was not built from this template "
                                f"({len(skin.vertices)} vertices, {len(skin.uvs)} with UV seams split)")


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
                                   material=header["parts"][name]["material"],
                                   uv_welded_ids=arrays.get(f"{name}/uv_welded_ids"),
                                   uv_faces=arrays.get(f"{name}/uv_faces"))
    n_skin = len(parts["skin"].vertices)
    regions = {key[len("regions/"):]: np.unpackbits(arr)[:n_skin].astype(bool)
               for key, arr in arrays.items() if key.startswith("regions/")}
    extras = {k: header[k] for k in ("measures", "iris_uv_radius", "pupil_uv_radius", "sources",
                                     "identity_modifiers", "neck_cap_first", "atlas_charts", "landmark_views")}
    # a template made from a studio's glTF head (from_gltf) also says what the maker decided
    extras["notes"] = list(header.get("notes", []))
    extras["skin_mirror"] = arrays["skin_mirror"].astype(np.int64)
    extras["landmarks"] = arrays["landmarks"].astype(np.float64)
    extras["landmark_triangles"] = arrays["landmark_triangles"]
    extras["landmark_barycentrics"] = arrays["landmark_barycentrics"].astype(np.float64)
    extras["skin_uv_charts"] = arrays["skin/uv_charts"]
    # MediaPipe's iris landmarks by eyeball part: centre first, then the four rim points
    extras["iris_landmarks_by_part"] = {"eye_left": np.arange(473, 478, dtype=np.int32),
                                        "eye_right": np.arange(468, 473, dtype=np.int32)}
    identity = None     # a head without identity modifiers: the coarse fit uses fit.shape_basis
    if "identity/delta_offsets" in arrays:
        import scipy.sparse as sp
        refine = sp.csr_matrix((arrays["skin/refine_weights"].astype(np.float64), arrays["skin/refine_indices"],
                                arrays["skin/refine_indptr"]),
                               shape=(n_skin, int(arrays["skin/refine_indices"].max()) + 1))
        base = dense_deltas(arrays["identity/delta_offsets"], arrays["identity/delta_ids"],
                            arrays["identity/delta_values"], len(header["identity_modifiers"]), refine.shape[1])
        identity = np.stack([refine @ b for b in base.astype(np.float64)]).astype(np.float32)
        identity.setflags(write=False)
    for part in parts.values():
        for arr in (part.vertices, part.faces, part.uvs, part.shape_deltas, part.uv_welded_ids, part.uv_faces):
            if arr is not None:
                arr.setflags(write=False)
    # A head made from a studio's glTF (from_gltf) carries no skeleton: its avatars export unskinned.
    skeleton = _skeleton(header["skeleton"], arrays, parts) if "skeleton" in header else None
    return FaceTemplate(
        shape_names=names, parts=parts,
        landmark_vertex_ids=arrays["landmark_vertex_ids"],
        iris_landmarks=np.arange(468, 478, dtype=np.int32),
        landmarks68_vertex_ids=arrays["landmarks68_vertex_ids"],
        regions=regions,
        eye_centers=arrays["eye_centers"].astype(np.float64),
        eye_radius=float(header["eye_radius"]),
        jaw_pivot=arrays["jaw_pivot"].astype(np.float64),
        identity_basis=identity,
        skeleton=skeleton,
        extras=extras)


def _skeleton(entry: dict, arrays: dict, parts: dict) -> TemplateSkeleton:
    names = tuple(entry["joint_names"])
    weights = {"skin": arrays["skin/joint_weights"].astype(np.float32)}
    for name, joint in entry["part_joints"].items():
        w = np.zeros((len(parts[name].vertices), len(names)), np.float32)
        w[:, names.index(joint)] = 1.0
        weights[name] = w
    if set(weights) != set(parts) or weights["skin"].shape != (len(parts["skin"].vertices), len(names)):
        raise ValueError("the skeleton's weights do not cover every part")
    for w in weights.values():
        w.setflags(write=False)
    positions = arrays["skeleton/joint_positions"].astype(np.float64)
    positions.setflags(write=False)
    return TemplateSkeleton(joint_names=names, parents=np.asarray(entry["parents"], np.int32),
                            positions=positions, weights=weights)


def load_default() -> FaceTemplate:
    """The template shipped with pyfacerig (read once, then cached; arrays are read-only)."""
    if "default" not in _CACHE:
        from .generate import DEFAULT_PATH
        _CACHE["default"] = load(DEFAULT_PATH)
    return _CACHE["default"]
