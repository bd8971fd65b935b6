"""``build()``: one portrait in, a rigged and textured game asset out.

The function reads top to bottom like Pan et al.'s Fig. 1: load -> (stylize) -> landmarks ->
coarse fit -> eye refinement -> fine fit -> texture -> rig -> export.  Every stage is a plain
function of arrays in its own module; this file only wires them together, times them and
writes the files.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

import engine_export

from . import fit, geometry, rig, runtime, skeleton, texture
from ._cache import once
from .errors import ExportError, InvalidInputError, PyFaceRigError
from .eye_refine import refine_eye_landmarks
from .glasses import frame_from_labels, remove_glasses
from .image_io import load_image
from .landmark_quality import assess_landmark_quality, check_landmark_quality
from .landmarks import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, detect_landmarks, mediapipe_to_ibug68
from .stylize import stylize
from .templates import TemplatePart, load_default

__all__ = ["Avatar", "AvatarPart", "build", "STAGES", "FORMATS", "PRESETS"]

#: Stage names in pipeline order, as reported to ``progress`` and in ``Avatar.timings``.
STAGES = ("load", "stylize", "landmarks", "coarse_fit", "eye_refine", "fine_fit", "texture", "rig", "skeleton", "export")
FORMATS = ("glb", "fbx", "frig")
PRESETS = ("unity", "unreal")
STYLES = (None, "cartoon")
#: ``build(landmarks=...)``: which landmark detector reads the face.
LANDMARK_SOURCES = ("auto", "photo", "cartoon")
#: Largest iris (angular radius on the eyeball, degrees) taken from the cartoon network's irises.
CARTOON_MAX_IRIS_DEG = 60.0
_DETECTOR_NAMES = {"photo": "mediapipe", "cartoon": "cartoon_network"}

#: Atlas sizes: the skin's fixed UV atlas and the eyeball texture.
SKIN_TEXTURE_SIZE = 1024
EYE_TEXTURE_SIZE = 256
#: Flat colours for the mouth interior parts (RGB), drawn into small textures.
_FLAT_MATERIAL_COLOURS = {"mouth": (112, 38, 44), "teeth": (232, 226, 212), "tongue": (184, 86, 92)}


# An avatar part is the same record as a template part (one mesh with its 52 shape deltas),
# holding the fitted neutral (float32) and the transferred deltas instead of the template's.
AvatarPart = TemplatePart


@dataclass
class Avatar:
    """What :func:`build` made.

    parts: name -> :class:`AvatarPart` (skin, eyes, mouth cavity, teeth, tongue).
    shape_names: the 52 ARKit names, Apple's order.
    textures: material -> PNG bytes ("skin" is the baked face atlas, "eye" the eyeballs).
    pose: world-to-camera :class:`pyfacerig.fit.Pose` of the fitted face.
    image_size: (width, height) of the input image.
    landmarks68: {"coarse": (68, 2), "fine": (68, 2)} the model's iBUG-68 points projected to
        input-image pixels after each fitting stage.
    coarse_skin: (N_skin, 3) float32 world vertices after the coarse fit, posed with the photo's
        expression as the photo shows it (for evaluation).
    posed_skin: (N_skin, 3) float32 world vertices of the fine fit as the photo shows it, with the
        photo's expression; the texture is baked on it, and the landmark figures are read off it.
    expression_weights: ARKit name -> weight in [0, 1], the photo's expression of the jaw, mouth
        and cheeks as the fit read it (the eyes and brows are 0: they stay in the rest pose as the
        photo shows them).  The avatar's rest pose (``parts``) is without it; setting these weights
        on the rig replays the photo's expression.
    glasses: whether glasses were painted out of the photo before the skin was baked
        (:mod:`pyfacerig.glasses`): {"painted_out", "found_by" ("geometry" | "face parser"),
        "pixels" painted, "loop_contrast" per eye, "bridge_contrast"}; also in the sidecar.
    landmark_quality: the landmark quality gate's record (:meth:`LandmarkQuality.as_dict`:
        per-region scores, thresholds, failing regions, evidence), also when ``force`` built anyway.
    skeleton: the calibrated head skeleton (:class:`pyfacerig.skeleton.Calibration`: joints, rest
        positions, skinning weights per part), or None for a template without one.
    timings: stage -> wall seconds (the texture stage runs beside the rig and skeleton stages,
        so the stages add up to more than the build took).
    paths: the files written (asset(s) and the JSON sidecar), empty without ``out``.
    """

    parts: dict
    shape_names: tuple
    textures: dict
    pose: fit.Pose
    image_size: tuple
    landmarks68: dict
    coarse_skin: np.ndarray = None
    posed_skin: np.ndarray = None
    expression_weights: dict = field(default_factory=dict)
    glasses: dict = field(default_factory=dict)
    landmark_quality: dict = field(default_factory=dict)
    skeleton: Optional[skeleton.Calibration] = None
    timings: dict = field(default_factory=dict)
    paths: tuple = ()

    @property
    def texture(self) -> bytes:
        """PNG bytes of the skin's baked atlas."""
        return self.textures["skin"]

    @property
    def blendshape_names(self) -> tuple:
        return self.shape_names

    def sidecar(self) -> dict:
        """The JSON sidecar's content."""
        return {
            "generator": "pyfacerig",
            "image_size": list(self.image_size),
            "pose": self.pose.as_dict(),
            "timings_s": {k: round(float(v), 6) for k, v in self.timings.items()},
            "landmarks68.coarse": np.round(self.landmarks68["coarse"], 3).tolist(),
            "landmarks68.fine": np.round(self.landmarks68["fine"], 3).tolist(),
            "expression_weights": self.expression_weights,
            "landmark_quality": self.landmark_quality,
            "glasses": self.glasses,
            "blendshapes": list(self.shape_names),
            # The .fbx geometry and the .frig rig concatenate the parts in this order.
            "parts": _vertex_ranges(self.parts),
            "files": [p.name for p in self.paths if p.suffix != ".json"],
        } | ({"skeleton": self.skeleton.as_dict()} if self.skeleton is not None else {})


def build(
    image,
    out=None,
    template=None,
    formats: Sequence[str] = ("glb",),
    preset: str = "unity",
    style: Optional[str] = None,
    face="error",
    parser=None,
    stylizer=None,
    landmark_detector=None,
    refine_eyes: bool = True,
    force: bool = False,
    landmarks: str = "auto",
    progress: Optional[Callable[[str], None]] = None,
) -> "Avatar":
    """Reconstruct, texture and rig the face in ``image``; write it if ``out`` is given.

    image: a path, encoded bytes or an RGB(A)/grey array (see :func:`pyfacerig.image_io.load_image`).
    out: asset path; each requested format is written next to it with its own suffix
        (``out/npc.glb`` + ``out/npc.fbx``), plus the sidecar ``out/npc.json``.
    template: a :class:`pyfacerig.templates.FaceTemplate`, default ``load_default()``.
    formats: any of "glb", "fbx", "frig" (the C runtime's rig, docs/rig_format.md).
    preset: "unity" or "unreal".
    style: None (photo) or "cartoon" (the ``stylizer`` network, else a classical filter).
    face: "error", "largest" or an index, when several faces are present.
    parser, stylizer, landmark_detector: optional networks (:mod:`pyfacerig.networks`).
    refine_eyes: snap the eye contours to the segmented eye boundary (§3.2.1) before the fine
        fit (default True; False keeps MediaPipe's eye contours as detected).
    force: build even when the landmark quality gate (:mod:`pyfacerig.landmark_quality`) judges
        that the landmarks do not fit the image; the scores are recorded in the sidecar either way.
    landmarks: which landmark detector reads the face (issue #14):
        ``"auto"`` (default) MediaPipe (or ``landmark_detector``), and when the quality gate
        refuses its landmarks, pyfacerig's cartoon network
        (:mod:`pyfacerig.cartoon_landmarks`) -- used if ITS landmarks pass the gate;
        ``"photo"`` MediaPipe only (the gate's refusal stands);
        ``"cartoon"`` the cartoon network only (say so for drawings and cartoons).
        The sidecar's ``landmark_quality.detector`` records which one was used.
    progress: called with each stage name from :data:`STAGES` as it starts.

    Raises LandmarkQualityError (a FaceDetectionError) when the landmarks do not fit the image
    and ``force`` is False; nothing is written then.
    """
    formats = _check_options(formats, preset, style, refine_eyes, force)
    if landmarks not in LANDMARK_SOURCES:
        raise InvalidInputError(f"landmarks must be one of {LANDMARK_SOURCES}, got {landmarks!r}")
    out_paths = _output_paths(out, formats) if out is not None else {}
    timings: dict[str, float] = {}
    announce = progress or (lambda stage: None)

    @contextmanager
    def stage(name):
        announce(name)
        start = time.perf_counter()
        yield
        timings[name] = time.perf_counter() - start

    with stage("load"):
        photo = load_image(image)
        template = load_default() if template is None else template
    with stage("stylize"):
        if style == "cartoon":
            photo = stylize(photo, stylizer)
    with stage("landmarks"):
        points, quality, source = _landmarks(photo, face, landmark_detector, landmarks, force)
    skin = template.parts["skin"]
    landmark_ids = np.asarray(template.landmark_vertex_ids, dtype=np.int64)

    with stage("coarse_fit"):
        # Identity and expression together (Pan et al. Eq. 1): the photo's smile goes into the
        # expression weights, so the identity -- the avatar's rest pose -- stays neutral.
        coarse = coarse_fit(template, points)
    with stage("eye_refine"):
        refined = points
        # The cartoon network was trained to put the contour on the drawn eye itself; the
        # refinement's segmentation would only re-read the drawing.
        if refine_eyes and source == "photo":
            refined = np.asarray(refine_eye_landmarks(photo, points, parser=parser), dtype=np.float64)
    with stage("fine_fit"):
        posed = fit.fine_fit(coarse.vertices, skin.faces, coarse.pose, landmark_ids, refined[:468, :2],
                             fixed_ids=_unseen_by_landmarks(template))
        posed = fold_safe(template, coarse.vertices, posed)
        # The rest pose is the fine fit with the fitted expression taken off again: it keeps the
        # fine fit's detail (Eq. 10) on the identity, not the photo's smile or open mouth.
        mouth = _mouth_shapes(template)
        expression = fit.refit_expression(posed, coarse.neutral_vertices, landmark_ids, skin.shape_deltas,
                                          coarse.expression_weights, mouth)
        # Only the mouth's expression is taken off.  From one photo a frown and a low brow ridge,
        # or a squint and narrow eyes, look alike, and taking a squint off opened the lids past
        # what the blink shapes close again (the eyeball showed through a blink).
        expression = np.where(mouth, expression, 0.0)
        fitted = posed - np.tensordot(expression.astype(np.float32), skin.shape_deltas, axes=1)
        # What the shapes could not take off (a laugh opens the mouth past jawOpen's reach)
        # would leave the rest pose's lips apart: close them as the template's touch.
        lip_ids = landmark_ids[np.asarray(INNER_LIP_PAIRS)]
        corner_ids = landmark_ids[list(MOUTH_CORNERS)]
        rest = skin.vertices
        size_ratio = fit.face_size_of(fitted, landmark_ids) / fit.face_size_of(rest, landmark_ids)
        rest_meet = 0.5 * (rest[lip_ids[:, 0], 1] + rest[lip_ids[:, 1], 1]).mean()
        fitted = fit.close_mouth(fitted, skin.faces, lip_ids, rest[lip_ids[:, 0]] - rest[lip_ids[:, 1]],
                                 corner_ids, size_ratio * (rest[corner_ids, 1] - rest_meet),
                                 coarse.neutral_vertices,
                                 radius=0.45 * fit.face_size_of(fitted, landmark_ids))
    pose = coarse.pose

    # The textures and the rig both need only the fit: the textures bake in a worker thread while
    # the rig's deformation transfer runs (both spend most of their time outside the GIL, so on
    # two cores the stages overlap; each stage's time is its own wall time).
    announce("texture")
    with ThreadPoolExecutor(max_workers=1) as worker:
        baking = worker.submit(_timed, timings, "texture", _bake_textures, template, photo, pose, posed, fitted,
                               refined, source, parser)
        with stage("rig"):
            skin_deltas = rig.transfer_skin_shapes(skin.vertices, skin.shape_deltas, fitted, skin.faces)
            iris = {"eye_left": refined[473, :2], "eye_right": refined[468, :2]}
            followers = rig.follow_parts(template, fitted, pose, iris)
            parts = {"skin": _part(skin, fitted, skin_deltas)}
            for name, (vertices, deltas) in followers.items():
                parts[name] = _part(template.parts[name], vertices, deltas)
            parts = {name: parts[name] for name in template.parts}  # keep the template's part order
        # The head skeleton, calibrated to this avatar's neutral (MAC2 §3.1.2, pyfacerig.skeleton).
        calibration = None
        if template.skeleton is not None:
            with stage("skeleton"):
                calibration = skeleton.calibrate(template.skeleton,
                                                 {name: part.vertices for name, part in template.parts.items()},
                                                 {name: part.vertices for name, part in parts.items()})

        textures, glasses = baking.result()
    timings.update({name: timings.pop(name) for name in STAGES if name in timings})  # pipeline order

    height, width = photo.shape[:2]
    avatar = Avatar(
        parts=parts,
        shape_names=tuple(template.shape_names),
        textures=textures,
        glasses=glasses,
        pose=pose,
        image_size=(width, height),
        # The 68 iBUG points are defined once on MediaPipe's topology (pyfacerig.landmarks), which
        # the skin's first 468 vertices carry: read them off the projected model.
        landmarks68={"coarse": mediapipe_to_ibug68(fit.project(coarse.vertices[landmark_ids[:468]], pose)),
                     "fine": mediapipe_to_ibug68(fit.project(posed[landmark_ids[:468]], pose))},
        coarse_skin=coarse.vertices.astype(np.float32),
        posed_skin=posed.astype(np.float32),
        expression_weights={name: float(round(weight, 4)) for name, weight
                            in zip(template.shape_names, expression)},
        landmark_quality={**quality.as_dict(), "detector": _DETECTOR_NAMES[source]},
        skeleton=calibration,
        timings=timings,
    )
    if out_paths:
        announce("export")
        _write_outputs(avatar, out_paths, preset, time.perf_counter())
    return avatar


# ----------------------------------------------------------------------------- helpers
def _timed(timings: dict, name: str, function, *args):
    """function(*args), its wall time stored as timings[name]."""
    start = time.perf_counter()
    try:
        return function(*args)
    finally:
        timings[name] = time.perf_counter() - start


def _bake_textures(template, photo, pose, posed, fitted, refined, source, parser) -> tuple[dict, dict]:
    """The avatar's textures as PNG bytes per material: the skin atlas baked from the photo, the
    eyeball with the photo's iris colour, and flat colours for the mouth's parts; and the record
    of the glasses painted out of the photo first (:attr:`Avatar.glasses`)."""
    skin = template.parts["skin"]
    labels = None if parser is None else parser.parse(photo)
    frame = None if labels is None else frame_from_labels(labels, photo.shape[:2])
    # The parser's glasses are painted out below, so their pixels count as face.
    parser_mask = None if labels is None else texture.face_mask_from_labels(labels, photo.shape[:2]) | frame
    face_mask = texture.face_region_mask(photo.shape[:2], refined, parser_mask)
    mirror = np.asarray(template.extras["skin_mirror"])
    # A glasses frame baked into the skin would move with it (a blink drags the rim over the lid).
    skin_photo, reading = remove_glasses(photo, refined, frame)
    if skin.uv_welded_ids is not None:      # a whole head: photo where seen, the person's skin elsewhere
        skin_atlas = texture.bake_head(skin_photo, pose.to_camera(posed), skin, mirror, face_mask, refined,
                                       template.regions, size=SKIN_TEXTURE_SIZE)
    else:
        skin_atlas, _ = texture.bake_skin(skin_photo, pose.to_camera(posed), skin.faces, skin.uvs, mirror,
                                          face_mask, size=SKIN_TEXTURE_SIZE)
    textures = {"skin": texture.encode_png(skin_atlas)}
    eye = template.parts["eye_left"]
    iris_rgb = texture.iris_colour(photo, refined)
    # A drawn eye's iris may be far larger than a person's (the eyeball follows the drawn
    # eye's size, rig.follow_parts, and so does its iris).
    if source == "cartoon":
        iris_angle = _iris_angle(refined, pose, template.eye_radius * _eyeball_scale(template, fitted),
                                 max_deg=CARTOON_MAX_IRIS_DEG)
    else:
        iris_angle = _iris_angle(refined, pose, template.eye_radius)
    textures["eye"] = texture.encode_png(texture.eyeball_texture(
        eye.vertices, eye.faces, eye.uvs, _eye_centre(template, "eye_left"), iris_angle, iris_rgb,
        size=EYE_TEXTURE_SIZE))
    for material, rgb in _FLAT_MATERIAL_COLOURS.items():
        if any(part.material == material for part in template.parts.values()):
            textures[material] = texture.encode_png(np.broadcast_to(np.array(rgb, np.uint8), (8, 8, 3)))
    glasses = {"painted_out": reading.worn, "found_by": "geometry" if labels is None else "face parser",
               "pixels": int(reading.mask.sum()),
               "loop_contrast": {side: round(value, 3) for side, value in reading.loop_contrast.items()},
               "bridge_contrast": round(reading.bridge_contrast, 3)}
    return textures, glasses


def _landmarks(photo, face, detector, source: str, force: bool):
    """(points (478, 3), LandmarkQuality, "photo" | "cartoon"): the landmarks the fit will use.

    "auto": the photo detector first; when the gate refuses it, the cartoon network, whose
    landmarks are used only if they pass the gate themselves -- otherwise the photo detector's
    refusal is raised (or, with ``force``, its landmarks are used, as before)."""
    from .cartoon_landmarks import default_cartoon_detector
    from .errors import LandmarkQualityError
    if source == "cartoon":
        cartoon = default_cartoon_detector()
        points = np.asarray(detect_landmarks(photo, face=face, detector=cartoon).points, dtype=np.float64)
        quality = assess_landmark_quality(photo, points, detector=cartoon)
        if not force:
            check_landmark_quality(quality)
        return points, quality, "cartoon"
    landmarks = detect_landmarks(photo, face=face, detector=detector)
    points = np.asarray(landmarks.points, dtype=np.float64)
    # Judge the landmarks before fitting: a detector misreading a drawing would otherwise
    # yield an avatar with the drawn eyes painted on its cheeks, silently (issue #14).
    quality = assess_landmark_quality(photo, points, detector=detector)
    if quality.passed or source == "photo":
        if not force:
            check_landmark_quality(quality)
        return points, quality, "photo"
    try:
        cartoon = default_cartoon_detector()
        cartoon_points = np.asarray(detect_landmarks(photo, face=face, detector=cartoon).points, dtype=np.float64)
        cartoon_quality = assess_landmark_quality(photo, cartoon_points, detector=cartoon)
    except PyFaceRigError:
        cartoon_quality = None
    if cartoon_quality is not None and cartoon_quality.passed:
        return cartoon_points, cartoon_quality, "cartoon"
    if not force:
        try:
            check_landmark_quality(quality)
        except LandmarkQualityError as exc:
            raise LandmarkQualityError(f"{exc}; the cartoon landmark network's landmarks did not fit either",
                                       region=exc.region, score=exc.score) from None
    return points, quality, "photo"


def _check_options(formats, preset, style, refine_eyes, force=False) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(dict.fromkeys(str(f).lower().lstrip(".") for f in formats))
    if not formats or any(f not in FORMATS for f in formats):
        raise InvalidInputError(f"formats must be a non-empty selection of {FORMATS}, got {formats}")
    if preset not in PRESETS:
        raise InvalidInputError(f"preset must be one of {PRESETS}, got {preset!r}")
    if style not in STYLES:
        raise InvalidInputError(f"style must be None or 'cartoon', got {style!r}")
    if not isinstance(refine_eyes, (bool, np.bool_)):
        raise InvalidInputError(f"refine_eyes must be True or False, got {refine_eyes!r}")
    if not isinstance(force, (bool, np.bool_)):
        raise InvalidInputError(f"force must be True or False, got {force!r}")
    return formats


def _output_paths(out, formats) -> dict[str, Path]:
    """format -> path; the sidecar is the asset path with a .json suffix."""
    out = Path(out)
    if out.name in ("", ".", "..") or out.is_dir():
        raise ExportError(f"output path {str(out)!r} is a directory; give a file name such as {out / 'avatar.glb'}")
    suffix = out.suffix.lower().lstrip(".")
    if out.suffix and suffix not in FORMATS + ("json",):
        # Checked before the pipeline runs: `-o npc.obj` must not turn into npc.obj.glb a minute later.
        raise ExportError(f"output path {str(out)!r} ends in {out.suffix!r}, which pyfacerig does not write; "
                          f"use .glb, .fbx or .frig (or no suffix)")
    _check_creatable(out.parent)
    stem = out.with_suffix("") if suffix else out
    paths = {fmt: stem.with_name(stem.name + "." + fmt) for fmt in formats}
    paths["json"] = stem.with_name(stem.name + ".json")
    return paths


def _check_creatable(directory: Path) -> None:
    """Raise ExportError now if ``directory`` cannot exist or take files (creates nothing)."""
    existing = Path(os.path.abspath(directory))
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ExportError(f"cannot create output directory {str(directory)!r}: {str(existing)!r} is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ExportError(f"output directory {str(existing)!r} is not writable")


# Identity modifiers that read as an expression: with them the fit could explain a smile or an
# open mouth as the person's shape and keep it in the rest pose (measured in docs/pipeline.md).
_EXPRESSION_LIKE_MODIFIERS = ("mouth/mouth-angles-", "chin/chin-jaw-drop-", "mouth/mouth-laugh-lines-",
                              "mouth/mouth-dimples-")


#: MediaPipe's inner-lip landmarks, upper with the lower one it meets when the mouth is closed.
INNER_LIP_PAIRS = ((13, 14), (82, 87), (312, 317), (81, 178), (311, 402), (80, 88), (310, 318))
def coarse_fit(template, points: np.ndarray) -> fit.CoarseFit:
    """build()'s coarse fit: pose, identity and expression of ``template`` to 468+ landmarks."""
    skin = template.parts["skin"]
    basis, _ = _identity_basis(template)
    return fit.coarse_fit(skin.vertices, np.asarray(template.landmark_vertex_ids, dtype=np.int64), points,
                          identity_basis=basis,
                          expression_basis=skin.shape_deltas, closed_pairs=INNER_LIP_PAIRS)


#: MediaPipe's mouth corners, outer (61, 291) and inner (78, 308).
MOUTH_CORNERS = (61, 291, 78, 308)


def _mouth_shapes(template) -> np.ndarray:
    """(E,) bool: the shapes of the jaw, mouth and cheeks: the fine fit re-reads them, and the rest
    pose is without them."""
    return np.array([name.startswith(("jaw", "mouth", "cheek")) for name in template.shape_names])


def _identity_basis(template):
    """The template's identity modifiers the joint fit may use (all but the expression-like),
    and their names (None when the template does not name them)."""
    basis = template.identity_basis
    names = template.extras.get("identity_modifiers")
    if basis is None or names is None:
        return basis, None
    # The subset is a 60 MB copy: made once per template (its basis is read-only), not per build.
    cached = _IDENTITY_SUBSETS.get(id(basis))
    if cached is None or cached[0] is not basis:
        keep = [i for i, name in enumerate(names) if not name.startswith(_EXPRESSION_LIKE_MODIFIERS)]
        subset = basis if len(keep) == len(names) else basis[keep]
        subset.setflags(write=False)
        cached = _IDENTITY_SUBSETS[id(basis)] = (basis, subset, [names[i] for i in keep])
    return cached[1], cached[2]


_IDENTITY_SUBSETS: dict = {}


#: How far (metres) from the nearest landmark vertex the fine fit reaches: the skin beyond stays
#: where the coarse fit put it (fit.fine_fit's fixed_ids).
FINE_FIT_REACH = 0.04
#: Radius (metres) of the fold-safe averaging of the fine fit's displacement (fit.fold_smoother).
#: The lids' and nostrils' tucked skin lies within 1-3 mm of the sheet above it; at 3 mm a lid
#: fold still cut through on obama's left eye, at 4 mm none did, and the fine fit's landmark
#: error fell slightly (docs/pipeline.md, "Folds").
FOLD_RADIUS = 0.004
#: The mouth interior follows the skin around it in space (fit.pocket_follower): its wall within
#: POCKET_SHELL metres of the skin takes the mean over the skin within POCKET_REACH metres beyond
#: the nearest, in full from POCKET_BLEND metres (along the surface) behind the lips; the deeper
#: sac is interpolated between (docs/pipeline.md, "The mouth pocket").
POCKET_SHELL = 0.015
POCKET_REACH = 0.015
POCKET_BLEND = 0.02


def fold_safe(template, coarse_vertices: np.ndarray, fine_vertices: np.ndarray) -> np.ndarray:
    """The fine fit with skin sheets that touch moved together: (N, 3) float64.

    A lid tucked under its fold, a nostril's rim, the lips' inner skin: the Laplacian fine fit
    moves such sheets independently and pushes one through the other, which shows as jagged
    ridges at rest and in every blink.  Its displacement from ``coarse_vertices`` is averaged
    over FOLD_RADIUS in space (fit.fold_smoother), and the landmarks get back what the
    averaging took from them (fit.anchor_spread).  The mouth interior, a sac hung from the lips
    that the Laplacian swings like a lever, takes the displacement of the skin around it in
    space instead of its own (fit.pocket_follower), so it stays inside the head."""
    motion = np.asarray(fine_vertices, dtype=np.float64) - coarse_vertices
    smoother, spread, pocket = _fold_operators(template)
    smoothed = smoother @ motion
    ids = np.asarray(template.landmark_vertex_ids, dtype=np.int64)
    return coarse_vertices + pocket @ (smoothed + spread @ (motion[ids] - smoothed[ids]))


def _unseen_by_landmarks(template) -> np.ndarray:
    """Skin vertices farther than FINE_FIT_REACH from every landmark vertex: the fine fit holds
    them where the coarse fit put them.  Made once per template."""
    from scipy.spatial import cKDTree

    skin = template.parts["skin"]

    def compute():
        vertices = np.asarray(skin.vertices, dtype=np.float64)
        ids = np.asarray(template.landmark_vertex_ids, dtype=np.int64)
        distance = cKDTree(vertices[ids[:468]]).query(vertices)[0]
        far = np.flatnonzero(distance > FINE_FIT_REACH)
        return far[~np.isin(far, ids[:468])]
    return once(_UNSEEN, (skin.vertices,), compute)


_UNSEEN: dict = {}


def _fold_operators(template):
    """(fit.fold_smoother, fit.anchor_spread, fit.pocket_follower) for the template's skin, made
    once per template: the mouth interior stays out of the averaging and follows the skin around
    it, and the parts that touch but must open apart never mix -- the upper and lower lip, each
    upper and lower eyelid (:func:`_opening_sides`)."""
    skin = template.parts["skin"]

    def compute():
        vertices = np.asarray(skin.vertices, dtype=np.float64)
        frozen = np.asarray(template.regions.get("mouth_interior", np.zeros(len(vertices), bool)), dtype=bool)
        return (fit.fold_smoother(vertices, FOLD_RADIUS, frozen=frozen, sides=_opening_sides(template)),
                fit.anchor_spread(vertices, template.landmark_vertex_ids, FOLD_RADIUS),
                fit.pocket_follower(vertices, skin.faces, frozen, POCKET_SHELL, POCKET_REACH, POCKET_BLEND))
    return once(_FOLD_OPERATORS, (skin.vertices,), compute)


_FOLD_OPERATORS: dict = {}


#: The mouth's and the eyes' openings: (upper, lower) landmarks, corners left out.
_OPENINGS = (
    ((185, 40, 39, 37, 0, 267, 269, 270, 409, 191, 80, 81, 82, 13, 312, 311, 310, 415),
     (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)),
    (RIGHT_EYE_CONTOUR[1:8], RIGHT_EYE_CONTOUR[9:]),
    (LEFT_EYE_CONTOUR[1:8], LEFT_EYE_CONTOUR[9:]),
)


def _opening_sides(template) -> np.ndarray:
    """(N,) int: for the skin within FOLD_RADIUS + 2 mm of the mouth's or an eye's landmarks, a
    label per side of that opening (the side whose landmarks are nearest along the surface);
    0 elsewhere.  Labels are per opening, so the lips and the lids never mix with each other."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import dijkstra
    from scipy.spatial import cKDTree

    skin = template.parts["skin"]
    vertices = np.asarray(skin.vertices, dtype=np.float64)
    faces = np.asarray(skin.faces, dtype=np.int64)
    ids = np.asarray(template.landmark_vertex_ids, dtype=np.int64)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    sides = np.zeros(len(vertices), dtype=np.int64)
    tree = cKDTree(vertices)
    for k, (upper, lower) in enumerate(_OPENINGS):
        seeds = np.concatenate([ids[list(upper)], ids[list(lower)]])
        near = np.concatenate(tree.query_ball_point(vertices[seeds], FOLD_RADIUS + 0.002))
        if k == 0 and "lips" in template.regions:      # the lips' inner skin reaches deeper
            near = np.concatenate([near, np.flatnonzero(template.regions["lips"])])
        near = np.unique(near)
        inside = np.zeros(len(vertices), bool)
        inside[near] = True
        local = np.full(len(vertices), -1, dtype=np.int64)
        local[near] = np.arange(len(near))
        e = edges[inside[edges].all(axis=1)]
        lengths = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
        graph = sp.csr_matrix((lengths, (local[e[:, 0]], local[e[:, 1]])), shape=(len(near), len(near)))
        _, _, source = dijkstra(graph, directed=False, indices=local[seeds], min_only=True, return_predecessors=True)
        reached = source >= 0
        is_upper = np.isin(source, local[ids[list(upper)]])
        sides[near[reached]] = np.where(is_upper[reached], 2 * k + 1, 2 * k + 2)
    return sides


def _part(template_part, vertices, deltas) -> AvatarPart:
    return dataclasses.replace(
        template_part,
        vertices=np.asarray(vertices, dtype=np.float32),
        faces=np.asarray(template_part.faces, dtype=np.int32),
        uvs=np.asarray(template_part.uvs, dtype=np.float32),
        uv_faces=None if template_part.uv_faces is None else np.asarray(template_part.uv_faces, dtype=np.int32),
        shape_deltas=np.asarray(deltas, dtype=np.float32),
    )


def _eye_centre(template, name: str) -> np.ndarray:
    """Template eyeball centre of part ``name`` (row 0 = subject's left, +X)."""
    centres = np.asarray(template.eye_centers, dtype=np.float64)
    return centres[0] if name == "eye_left" else centres[1]


def _eyeball_scale(template, fitted_skin: np.ndarray) -> float:
    """Mean scale of the two eyeballs as :func:`pyfacerig.rig.follow_parts` sizes them to the
    fitted eye openings (a drawn eye twice the template's gets an eyeball twice as large)."""
    ids = np.asarray(template.landmark_vertex_ids, dtype=np.int64)
    skin = template.parts["skin"].vertices
    return float(np.mean([rig.eye_similarity(skin[ids[contour]], fitted_skin[ids[contour]])[0]
                          for contour in rig.EYE_CONTOURS.values()]))


def _iris_angle(points: np.ndarray, pose: fit.Pose, eye_radius: float, max_deg: float = 40.0) -> float:
    """Angular radius of the person's iris on an eyeball of ``eye_radius`` metres.

    The iris rim landmarks give the iris radius in pixels; the pose's scale turns it into
    metres.  Clamped to a plausible human range (20-40 degrees), or up to ``max_deg`` for a
    cartoon's drawn iris.
    """
    radii = []
    for centre, rim in ((468, slice(469, 473)), (473, slice(474, 478))):
        radii.append(np.mean(np.linalg.norm(points[rim, :2] - points[centre, :2], axis=1)))
    radius_m = float(np.mean(radii)) / pose.scale
    return float(np.clip(np.arcsin(np.clip(radius_m / eye_radius, 0.0, 1.0)), np.radians(20), np.radians(max_deg)))


def _make_readable(path: Path) -> None:
    """Give a temporary file (created 0600) the permissions a plain ``open()`` would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _sidecar_bytes(avatar: Avatar) -> bytes:
    return (json.dumps(avatar.sidecar(), indent=1, sort_keys=False) + "\n").encode("utf-8")


def _write_outputs(avatar: Avatar, paths: dict[str, Path], preset: str, started: float) -> None:
    """Write every requested asset and the sidecar via temporary files, then move them all
    into place: nothing appears at the final paths unless every writer succeeded.

    ``started`` is when the export stage began; its timing (and ``avatar.paths``) is filled
    in just before the sidecar, which records them, is written.
    """
    directory = paths["json"].parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create output directory {str(directory)!r}: {exc.strerror or exc}") from None
    if not os.access(directory, os.W_OK):
        raise ExportError(f"output directory {str(directory)!r} is not writable")
    asset = _to_asset(avatar, preset)
    writers = {"glb": engine_export.write_gltf, "fbx": engine_export.write_fbx, "frig": _write_rig}
    temporaries: dict[str, Path] = {}
    try:
        for fmt, path in paths.items():
            fd, tmp = tempfile.mkstemp(prefix="." + path.stem + ".", suffix="." + fmt, dir=directory)
            os.close(fd)
            temporaries[fmt] = Path(tmp)
            if fmt != "json":
                writers[fmt](asset, temporaries[fmt], preset=preset)
        avatar.paths = tuple(paths.values())
        avatar.timings["export"] = time.perf_counter() - started
        temporaries["json"].write_bytes(_sidecar_bytes(avatar))
        for fmt, tmp in temporaries.items():
            _make_readable(tmp)
            os.replace(tmp, paths[fmt])
    except OSError as exc:
        avatar.paths = ()
        raise ExportError(f"cannot write {str(directory)!r}: {exc.strerror or exc}") from None
    except ValueError as exc:  # engine_export.ExportError: the exporter refused the asset
        avatar.paths = ()
        raise ExportError(str(exc)) from None
    finally:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)


_ROUGHNESS = {"skin": 0.6, "eye": 0.15, "mouth": 0.7, "teeth": 0.3, "tongue": 0.45}


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals of one or many poses of a mesh.

    vertices (..., N, 3); faces (F, 3).  Returns float64 (..., N, 3); +Z where a vertex has
    no area.  One sparse vertex-face incidence product handles every pose at once.
    """
    from scipy.sparse import csr_matrix

    vertices = np.asarray(vertices, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    corners = vertices[..., faces, :]  # (..., F, 3, 3)
    face_normals = np.cross(corners[..., 1, :] - corners[..., 0, :], corners[..., 2, :] - corners[..., 0, :])
    count = vertices.shape[-2]
    incidence = csr_matrix((np.ones(faces.size), (faces.ravel(), np.repeat(np.arange(len(faces)), 3))),
                           shape=(count, len(faces)))
    flat = np.moveaxis(face_normals, -2, 0).reshape(len(faces), -1)  # (F, ...*3)
    summed = np.moveaxis((incidence @ flat).reshape((count,) + face_normals.shape[:-2] + (3,)), 0, -2)
    length = np.linalg.norm(summed, axis=-1, keepdims=True)
    return np.where(length > 0, summed / np.where(length > 0, length, 1.0), [0.0, 0.0, 1.0])


def _vertex_ranges(parts: dict) -> list:
    """[{"name", "first", "count"}] of each part's exported vertices (UV seams split) in the
    concatenated vertex order."""
    ranges, first = [], 0
    for name, part in parts.items():
        count = len(part.uvs)
        ranges.append({"name": name, "first": first, "count": count})
        first += count
    return ranges


def _to_rig(asset) -> "runtime.Rig":
    """The asset's mesh as a rig of the embedded C runtime (docs/rig_format.md).

    Vertices are the primitives (the avatar's parts) concatenated in order -- the FBX
    geometry's vertex order, listed in the sidecar's "parts" -- with the same neutral
    normals and normal deltas as the exported morph targets, all float32 (lossless).
    """
    primitives = asset.meshes[0].primitives
    joined = lambda attr: np.concatenate([getattr(p, attr) for p in primitives], axis=-2)
    return runtime.Rig.from_arrays(joined("positions"), joined("target_positions"),
                                   asset.meshes[0].target_names, normals=joined("normals"),
                                   normal_deltas=joined("target_normals"))


def _write_rig(asset, path: Path, preset: str) -> None:
    """Writer for "frig": axes and units are the glTF frame whatever the preset."""
    _to_rig(asset).save(path)


def _skin_influences(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, J) weights -> the 4 largest per vertex: joints (N, 4) uint16, weights (N, 4) float32."""
    order = np.argsort(-weights, axis=1, kind="stable")[:, :4]
    picked = np.take_along_axis(weights, order, axis=1).astype(np.float64)
    return order.astype(np.uint16), (picked / picked.sum(axis=1, keepdims=True)).astype(np.float32)


def _export_skeleton(calibration, preset: str):
    """The calibrated skeleton as engine_export's, with the preset's bone names."""
    count = len(calibration.joint_names)
    return engine_export.Skeleton(joint_names=list(skeleton.BONE_NAMES[preset]),
                                  parents=np.asarray(calibration.parents, np.int64),
                                  translations=calibration.local_translations(),
                                  rotations=np.tile([0.0, 0.0, 0.0, 1.0], (count, 1)))


def _to_asset(avatar: Avatar, preset: str = "unity"):
    """The avatar as an engine_export Asset: one mesh "face" with one primitive per part, skinned
    to the calibrated head skeleton (bone names per ``preset``) when the avatar has one."""
    ee = engine_export

    material_names = list(dict.fromkeys(part.material for part in avatar.parts.values()))
    materials = [
        ee.Material(name=name, base_color_texture=ee.Texture(name=name, data=avatar.textures[name]),
                    roughness=_ROUGHNESS.get(name, 0.5))
        for name in material_names
    ]
    primitives = []
    for part in avatar.parts.values():
        # Normals are taken on the welded mesh, so UV seams do not show as shading seams.
        normals = _vertex_normals(part.vertices, part.faces)
        primitives.append(ee.Primitive(
            positions=part.split(part.vertices),
            normals=part.split(normals.astype(np.float32)),
            indices=part.export_faces,
            uvs=part.uvs,
            material=material_names.index(part.material),
            target_positions=part.split(part.shape_deltas),
            # Normal morphs keep the shading right in expressions (engines that recompute them ignore these).
            target_normals=part.split(geometry.vertex_normal_deltas(part.vertices, part.faces, normals,
                                                                       part.shape_deltas)),
        ))
        if avatar.skeleton is not None:
            joints, joint_weights = _skin_influences(part.split(avatar.skeleton.weights[part.name]))
            primitives[-1] = dataclasses.replace(primitives[-1], joints=joints, joint_weights=joint_weights)
    mesh = ee.Mesh(name="face", primitives=primitives, target_names=list(avatar.shape_names))
    bones = None if avatar.skeleton is None else _export_skeleton(avatar.skeleton, preset)
    return ee.Asset(meshes=[mesh], materials=materials, skeleton=bones, name="pyfacerig_avatar")
