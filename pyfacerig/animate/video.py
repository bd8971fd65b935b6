"""``animate``: a video (or frames) in, a :class:`~pyfacerig.animate.take.Take` for an avatar out.

Per frame (Pan et al. §4 animate their faces from video the same way, by fitting the rig to
tracked landmarks):

1. MediaPipe's face mesh in tracking mode (static_image_mode=False, refine_landmarks=True):
   478 points, the face box carried from frame to frame.
2. Head pose: a similarity Procrustes fit of the avatar's least-moving landmarks (posed
   with the first pass's weights) to the detected ones, in 3-D (MediaPipe's z is scaled
   like x), refined in the image plane under a weak-perspective, then a pinhole camera
   whose field of view is given or estimated over the take (:func:`estimate_focal`).
   Rotation -> yaw, pitch, roll; the camera-frame translation -> translation.
3. The 52 weights: box-constrained least squares on the avatar's landmark deltas in the
   image plane (:class:`pyfacerig.animate.solve.ExpressionSolver`), with an L2 prior that
   keeps the shapes landmarks cannot see (tongueOut, cheekPuff, mouthRoll...) near 0.
   :func:`animate` first calibrates a .glb avatar to the face mesh
   (:mod:`pyfacerig.animate.calibrate`): the landmarks and deltas are then where, and how
   far, MediaPipe sees this avatar's own.
4. Gaze: the iris centres are two more landmarks (the eyeballs' front poles), so the
   eyeLook weights come out of the same solve; the avatar's own eye rotation per unit
   eyeLook weight turns them into eye yaw and pitch.

Over the take: a per-landmark neutral calibration (the median residual the weights cannot
explain, removed in a second pass: a different face, or the detector's own bias on this
one, is not turned into expressions), a One-Euro filter (fast motion like blinks passes
without lag), and frames without a face hold the last pose, then ease to neutral.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from ..errors import ExportError, InvalidInputError, NoFaceError, VideoReadError
from .rig import EYE_AND_BROW, FACE_OVAL, LIPS, AvatarRig
from .solve import (ExpressionSolver, OneEuroFilter, perspective_start, project, projection_jacobian,
                    refine_perspective, refine_weak_perspective, rotation_to_angles, similarity_fit, solve_box_qp)
from .take import SHAPE_NAMES, Take

__all__ = ["animate", "track_landmarks", "solve_take", "read_video_frames", "SolveSettings"]

# L2 prior per shape, relative to the data term's mean curvature (see ExpressionSolver).
# Measured on renders of an avatar with known weights (tests/test_animate_video.py): 0.1
# keeps the weights the detector's oblique-view errors would invent small while blinks and
# brows still reach ~0.7-1.  Shapes whose landmark motion the face mesh does not see, or sees
# only as something another shape explains better, are held near 0 unless the evidence is
# strong; the eyeLook shapes are pinned by the iris centres, which the face mesh tracks
# well, so they get a light prior.
_BASE_PRIOR = 0.1
_SHAPE_PRIOR = {"tongueOut": 10.0, "cheekPuff": 1.0, "mouthRollLower": 0.3, "mouthRollUpper": 0.3,
                "jawForward": 0.3, "mouthClose": 0.2, "mouthPressLeft": 0.3, "mouthPressRight": 0.3,
                **{f"eyeLook{d}{s}": 0.01 for d in ("Down", "In", "Out", "Up") for s in ("Left", "Right")}}


#: Per eye: iris-centre landmark, then upper lid, lower lid, outer and inner corner.
_EYE_OPENNESS = ((468, (159, 145, 33, 133)), (473, (386, 374, 263, 362)))
_UNTRUSTED_GAZE_PRIOR = 1.0
#: Field of view assumed before a take's own is known (only as a start: see estimate_focal).
_DEFAULT_FOV = 40.0
#: Gaze shapes of the two eyes that move together (looking to one side turns one eye out and
#: the other in), tied by a coupling prior so both eyes' evidence counts for each.
_GAZE_PAIRS = (("eyeLookOutLeft", "eyeLookInRight"), ("eyeLookInLeft", "eyeLookOutRight"),
               ("eyeLookUpLeft", "eyeLookUpRight"), ("eyeLookDownLeft", "eyeLookDownRight"))


class SolveSettings:
    """Tuning of :func:`solve_take`; the defaults are what the tests and docs measure.

    hold_s / ease_s: without a face, hold the last pose this long, then ease to neutral over ease_s.
    calibrate: remove the per-landmark median residual in a second pass.
    smoothing: run the One-Euro filter (min_cutoff Hz and beta per channel group).
    prior_scale: multiplies every shape's L2 prior.
    eye_weight, lip_weight, iris_weight, other_weight: landmark weights of the eye and brow
        contours, the lip contours, the iris centres and every other landmark (the face oval
        counts 0.2).
    stable_count: landmarks used for the head pose.  gaze_coupling: prior tying the eyes' gaze.
    fov_deg: the camera's vertical field of view (degrees); None estimates it from the take
        (:func:`estimate_focal`).
    """

    def __init__(self, hold_s: float = 0.25, ease_s: float = 0.5, calibrate: bool = True, smoothing: bool = True,
                 weight_min_cutoff: float = 2.0, weight_beta: float = 2.0, pose_min_cutoff: float = 1.0,
                 pose_beta: float = 30.0, prior_scale: float = 1.0, eye_weight: float = 5.0,
                 iris_weight: float = 20.0, stable_count: int = 60, gaze_coupling: float = 0.05,
                 lip_weight: float = 3.0, other_weight: float = 0.5, fov_deg: float | None = None):
        self.hold_s, self.ease_s = float(hold_s), float(ease_s)
        self.calibrate, self.smoothing = bool(calibrate), bool(smoothing)
        self.weight_min_cutoff, self.weight_beta = float(weight_min_cutoff), float(weight_beta)
        self.pose_min_cutoff, self.pose_beta = float(pose_min_cutoff), float(pose_beta)
        self.prior_scale = float(prior_scale)
        self.eye_weight = float(eye_weight)
        self.iris_weight = float(iris_weight)
        self.stable_count = int(stable_count)
        self.gaze_coupling = float(gaze_coupling)
        self.lip_weight, self.other_weight = float(lip_weight), float(other_weight)
        if fov_deg is not None and not (isinstance(fov_deg, (int, float)) and 1.0 <= fov_deg <= 150.0):
            raise InvalidInputError("SolveSettings: fov_deg must be a vertical field of view in degrees (1-150), "
                                    f"got {fov_deg!r}")
        self.fov_deg = None if fov_deg is None else float(fov_deg)


# ----------------------------------------------------------------------------- input
def read_video_frames(source) -> tuple[Iterable[np.ndarray], float, Optional[int]]:
    """(frames iterator of (H, W, 3) uint8 RGB, fps or 0 if unknown, frame count or None).

    source: a video file path (anything OpenCV's FFmpeg backend reads), or frames: an
    (T, H, W, 3) uint8 array or a sequence of (H, W, 3) uint8 RGB arrays.
    """
    if isinstance(source, (str, os.PathLike)):
        return _video_file_frames(Path(source))
    if isinstance(source, np.ndarray):
        if source.ndim != 4 or source.shape[-1] != 3 or source.dtype != np.uint8:
            raise InvalidInputError(f"frames: expected a (T, H, W, 3) uint8 RGB array, got {source.shape} {source.dtype}")
        return iter(source), 0.0, len(source)
    if isinstance(source, (list, tuple)):
        for k, frame in enumerate(source):
            if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
                raise InvalidInputError(f"frames[{k}]: expected an (H, W, 3) uint8 RGB array")
        return iter(source), 0.0, len(source)
    raise InvalidInputError(f"animate: expected a video path or frames, got {type(source).__name__}")


def _video_file_frames(path: Path):
    import cv2

    if not path.is_file():
        raise VideoReadError(f"{str(path)!r}: no such video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoReadError(f"{str(path)!r}: cannot be opened as a video")
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise VideoReadError(f"{str(path)!r}: no frame could be decoded (not a video, or corrupt)")

    def frames():
        try:
            frame = first
            while frame is not None:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                ok, frame = capture.read()
                if not ok:
                    break
        finally:
            capture.release()

    return frames(), (fps if math.isfinite(fps) and fps > 0 else 0.0), count


# ----------------------------------------------------------------------------- tracking
class VideoFaceTracker:
    """MediaPipe's face mesh in video mode: 478 landmarks per frame, tracked between frames."""

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5):
        import mediapipe as mp  # loaded on first use: it brings TensorFlow Lite

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=False, max_num_faces=1, refine_landmarks=True,
            min_detection_confidence=min_detection_confidence, min_tracking_confidence=min_tracking_confidence)

    def __call__(self, rgb: np.ndarray) -> Optional[np.ndarray]:
        """(478, 3) float64 pixels (x right, y down, z scaled like x, smaller = nearer) or None."""
        height, width = rgb.shape[:2]
        result = self._mesh.process(rgb)
        if not result.multi_face_landmarks:
            return None
        marks = result.multi_face_landmarks[0].landmark
        points = np.array([(p.x, p.y, p.z) for p in marks], np.float64)
        points *= (width, height, width)
        return points

    def close(self) -> None:
        self._mesh.close()


def track_landmarks(source, tracker=None, progress=None) -> tuple[np.ndarray, float, tuple, dict]:
    """Run the tracker over every frame: ((T, 478, 3) with NaN rows where no face, fps,
    (width, height), timings)."""
    frames, fps, _ = read_video_frames(source)
    own = tracker is None
    tracker = VideoFaceTracker() if own else tracker
    points, size, detect_s = [], None, 0.0
    try:
        for k, frame in enumerate(frames):
            if size is None:
                size = (frame.shape[1], frame.shape[0])
            elif (frame.shape[1], frame.shape[0]) != size:
                raise VideoReadError(f"frame {k}: is {frame.shape[1]}x{frame.shape[0]}, the first was {size[0]}x{size[1]}")
            start = time.perf_counter()
            found = tracker(np.ascontiguousarray(frame))
            detect_s += time.perf_counter() - start
            points.append(np.full((478, 3), np.nan) if found is None else found)
            if progress is not None:
                progress(k)
    finally:
        if own:
            tracker.close()
    if not points:
        raise VideoReadError("the video has no frames")
    return np.stack(points), fps, size, {"detect_s": detect_s}


# ----------------------------------------------------------------------------- solving
def _prior(rig: AvatarRig, scale: float = 1.0) -> np.ndarray:
    prior = np.full(len(SHAPE_NAMES), _BASE_PRIOR * scale)
    for name, value in _SHAPE_PRIOR.items():
        prior[SHAPE_NAMES.index(name)] = value * scale
    # A shape that moves no landmark at all (e.g. tongueOut on the skin) must stay at 0.
    prior[rig.shape_reach() < 1e-6] = 1e3
    return prior


def _landmark_weights(rig: AvatarRig, eye_weight: float, iris_weight: float, lip_weight: float,
                      other_weight: float) -> np.ndarray:
    # The face mesh refines the lips, eyes and irises with its attention model; those contours
    # are its most precise points and carry the expressions, so they count more than the
    # cheeks, nose and chin (measured on renders: lips x3, others x0.5 lowered the weight error
    # from 0.052 to 0.047 and brought jawOpen and smile peaks closer to the truth).
    weights = np.full(len(rig.landmark_ids), other_weight)
    weights[np.isin(rig.landmark_ids, LIPS)] = lip_weight
    weights[np.isin(rig.landmark_ids, FACE_OVAL)] = 0.2
    # The refined eye and brow contours are the face mesh's most precise points; blinks and
    # brow raises move them only millimetres, so they count more.
    weights[np.isin(rig.landmark_ids, EYE_AND_BROW)] = eye_weight
    weights[rig.landmark_ids >= 468] = iris_weight   # the iris centres carry the whole gaze
    return weights


class FrameSolver:
    """Head pose + weights for a run of frames: the pose and the QPs' matrices of all frames
    are computed together (array operations over the take), then the QPs are solved in
    order, each warm-started from the frame before.

    The camera is a pinhole at the image centre with focal length ``focal`` (pixels);
    poses are (R (T, 3, 3), T (T, 3)) in its frame (x right, y up, looking along -z).
    """

    def __init__(self, rig: AvatarRig, settings: "SolveSettings", image_size: tuple, focal: float | None = None):
        self.rig = rig
        ids = list(rig.landmark_ids)
        # Per eye: the iris-centre row, and the lid/corner rows that measure how open the eye is.
        self._eyes = [(ids.index(iris), [ids.index(i) for i in lids]) for iris, lids in _EYE_OPENNESS]
        groups = np.zeros((len(self._eyes), len(ids)), bool)
        for k, (iris_row, _) in enumerate(self._eyes):
            groups[k, iris_row] = True
        couplings = [(SHAPE_NAMES.index(a), SHAPE_NAMES.index(b), settings.gaze_coupling) for a, b in _GAZE_PAIRS]
        self.expression = ExpressionSolver(rig.neutral, rig.deltas,
                                           _landmark_weights(rig, settings.eye_weight, settings.iris_weight,
                                                             settings.lip_weight, settings.other_weight),
                                           _prior(rig, settings.prior_scale), couplings, groups)
        self.stable = rig.stable_landmarks(settings.stable_count)
        self._stable_basis = rig.deltas[:, self.stable].transpose(1, 2, 0)   # (S, 3, 52)
        self.neutral_offset = None
        width, height = image_size
        self.centre = np.array([width / 2.0, height / 2.0])
        self.focal = float(focal) if focal is not None else focal_from_fov(height, settings.fov_deg or _DEFAULT_FOV)

    def observed(self, points: np.ndarray, image_height: float) -> np.ndarray:
        """(T, 478, 3) MediaPipe pixels -> (T, K, 3) solver landmarks in an image frame with y up
        and z toward the camera (right-handed, like the avatar's)."""
        picked = np.asarray(points, np.float64)[:, self.rig.landmark_ids]
        return np.stack([picked[..., 0], image_height - picked[..., 1], -picked[..., 2]], axis=-1)

    def _neutral(self) -> np.ndarray:
        return self.rig.neutral if self.neutral_offset is None else self.rig.neutral + self.neutral_offset

    def pose(self, observed: np.ndarray, reference_weights: np.ndarray | None = None, focal: float | None = None,
             start=None):
        """(R (T, 3, 3), T (T, 3), rms (T,) pixels) of the stable landmarks, the avatar posed
        with ``reference_weights`` (T, 52) (e.g. a previous pass) or at rest.

        A 3-D similarity (MediaPipe's z is scaled like x) and a weak-perspective refinement
        give the start (``start``: that of :meth:`pose_start`, if already computed); the
        pinhole refinement gives the pose."""
        focal = self.focal if focal is None else focal
        model, stable, (scale, rotation, offset_xy) = start or self.pose_start(observed, reference_weights)
        translation = perspective_start(scale, offset_xy, focal, self.centre)
        return refine_perspective(model, stable[..., :2], rotation, translation, focal, self.centre)

    def pose_start(self, observed: np.ndarray, reference_weights: np.ndarray | None = None):
        """(model (T, S, 3), observed stable landmarks (T, S, 3), weak-perspective (s, R, t)):
        what :meth:`pose` starts from, which does not depend on the focal length."""
        model = self._neutral()[self.stable][None]
        if reference_weights is not None:
            model = model + np.einsum("sam,tm->tsa", self._stable_basis, reference_weights)
        model = np.broadcast_to(model, (len(observed),) + model.shape[1:])
        stable = observed[:, self.stable]
        scale, rotation, offset = similarity_fit(model, stable)
        weak = refine_weak_perspective(model, stable[..., :2], scale, rotation, offset[:, :2])
        return model, stable, weak

    def solve(self, observed: np.ndarray, reference_weights: np.ndarray | None = None,
              start: np.ndarray | None = None):
        """observed (T, K, 3) -> (weights (T, 52), R (T, 3, 3), T (T, 3))."""
        rotation, translation, _ = self.pose(observed, reference_weights)
        g, b = self.systems(observed, rotation, translation)
        weights = np.empty((len(b), len(SHAPE_NAMES)))
        previous = np.zeros(len(SHAPE_NAMES)) if start is None else np.asarray(start, np.float64)
        for k in range(len(b)):
            previous = weights[k] = solve_box_qp(g[k], b[k], previous)
        return weights, rotation, translation

    def linearised(self, rotation, translation):
        """(predicted (T, K, 2), projection (T, 2, 3)): where the posed neutral landmarks
        project, and the map from an avatar-space displacement to pixels -- the pinhole's
        Jacobian at the face's centre times R.  Using one Jacobian for the whole face keeps
        the per-avatar precomputation of the QP (ExpressionSolver); across a face 10 cm deep
        at 60 cm it differs from each point's own by a few per cent of the displacement."""
        posed = np.einsum("tij,kj->tki", rotation, self._neutral()) + translation[:, None]
        predicted = project(posed, self.focal, self.centre)
        centre = posed[:, self.stable].mean(axis=1)
        projection = projection_jacobian(centre, self.focal) @ rotation
        return predicted, projection

    def systems(self, observed, rotation, translation):
        """Every frame's QP (g (T, 52, 52), b (T, 52)) for the posed avatar."""
        trust = self.iris_trust(observed)
        # Without a trusted iris the gaze shapes of that eye have no evidence of their own (their
        # lid motion would otherwise soak up a blink): hold them near 0 instead.
        extra = np.zeros((len(observed), len(SHAPE_NAMES)))
        for k, side in enumerate(("Right", "Left")):          # _EYE_OPENNESS order: 468 right, 473 left
            for direction in ("Down", "In", "Out", "Up"):
                extra[:, SHAPE_NAMES.index(f"eyeLook{direction}{side}")] = (1.0 - trust[:, k]) * _UNTRUSTED_GAZE_PRIOR
        predicted, projection = self.linearised(rotation, translation)
        return self.expression.systems(observed[..., :2], projection, predicted, trust, extra)

    def iris_trust(self, observed: np.ndarray) -> np.ndarray:
        """(T, 2) weight factor of each iris centre: 1 while its eye is open, falling to 0 as
        the lids close (relative to the take's median opening).  Under a closing lid the face
        mesh's iris slides down with it, which the solver would otherwise read as a look down."""
        trust = np.ones((len(observed), len(self._eyes)))
        for k, (_, (upper, lower, outer, inner)) in enumerate(self._eyes):
            xy = observed[..., :2]
            opening = np.linalg.norm(xy[:, upper] - xy[:, lower], axis=1) / \
                np.maximum(np.linalg.norm(xy[:, outer] - xy[:, inner], axis=1), 1e-9)
            relative = opening / max(float(np.median(opening)), 1e-9)
            trust[:, k] = np.clip((relative - 0.4) / 0.4, 0.0, 1.0)
        return trust


def focal_from_fov(height: float, fov_deg: float) -> float:
    """Focal length in pixels of a camera whose vertical field of view is ``fov_deg``."""
    return 0.5 * float(height) / math.tan(math.radians(fov_deg) / 2.0)


def estimate_focal(solver: FrameSolver, observed: np.ndarray, height: float, frames: int = 48) -> float:
    """The focal length (pixels) under which the avatar's stable landmarks fit the take best.

    A pinhole's focal length sets how much nearer points are magnified, which the known
    depth relief of the face measures: on exact projections of the avatar the fit's error
    is smallest at the true focal length.  Golden-section search on the field of view
    (8-100°), over up to ``frames`` frames spread through the take."""
    pick = np.unique(np.linspace(0, len(observed) - 1, min(frames, len(observed))).round().astype(int))
    sample = observed[pick]
    start = solver.pose_start(sample)

    def cost(fov):
        return float(np.mean(solver.pose(sample, focal=focal_from_fov(height, fov), start=start)[2] ** 2))

    low, high = 8.0, 100.0
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    ca, cb = cost(a), cost(b)
    for _ in range(14):                       # brackets the minimum to about 0.3°
        if ca <= cb:
            high, b, cb = b, a, ca
            a = high - ratio * (high - low)
            ca = cost(a)
        else:
            low, a, ca = a, b, cb
            b = low + ratio * (high - low)
            cb = cost(b)
    return focal_from_fov(height, 0.5 * (low + high))


def solve_take(landmarks: np.ndarray, fps: float, image_size: tuple, rig: AvatarRig,
               settings: SolveSettings | None = None) -> Take:
    """Solve a take from tracked landmarks (T, 478, 3) (NaN rows = no face) for ``rig``."""
    settings = settings or SolveSettings()
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (478, 3):
        raise InvalidInputError(f"landmarks: expected (T, 478, 3), got {landmarks.shape}")
    frames = len(landmarks)
    found = np.isfinite(landmarks).all(axis=(1, 2))
    if not found.any():
        raise NoFaceError(f"no face was found in any of the {frames} frames")
    width, height = image_size
    started = time.perf_counter()
    solver = FrameSolver(rig, settings, image_size)
    observed = solver.observed(np.where(found[:, None, None], landmarks, 0.0), height)
    if settings.fov_deg is None:
        solver.focal = estimate_focal(solver, observed[found], height)
    raw = _solve_pass(solver, observed, found)
    passes = 1
    if settings.calibrate and found.sum() >= 3:
        solver.neutral_offset = _neutral_offset(solver, observed, raw, found)
        raw = _solve_pass(solver, observed, found, reference=raw[0])
        passes = 2
    solve_s = time.perf_counter() - started

    weights, angles, rotation, translation = raw
    # Head translation: the avatar origin in the camera frame (metres), relative to the
    # first tracked frame.
    first = int(np.flatnonzero(found)[0])
    translation = np.where(found[:, None], translation - translation[first], 0.0)
    head = np.concatenate([angles, translation], axis=1)
    gaze = weights @ rig.gaze_per_weight.T

    missing = _fill_gaps(found, fps, settings, weights, head, gaze)
    if settings.smoothing:
        weights, head, gaze = _smooth(weights, head, gaze, fps, settings)
    weights = np.clip(weights, 0.0, 1.0)
    report = {"frames": frames, "frames_without_face": int(missing), "fps": fps,
              "solve_s": solve_s, "solve_fps": passes * int(found.sum()) / max(solve_s, 1e-9),
              "fov_deg": math.degrees(2.0 * math.atan(0.5 * height / solver.focal)),
              "fov_estimated": settings.fov_deg is None,
              "calibrated": solver.neutral_offset is not None,
              "neutral_offset_mm": float(np.abs(solver.neutral_offset).max() * 1000) if solver.neutral_offset is not None else 0.0}
    return Take(weights, head, gaze, fps, report)


def _solve_pass(solver: FrameSolver, observed, found, reference=None):
    """One pass over the tracked frames: arrays over all T frames (zeros where no face)."""
    frames = len(found)
    weights = np.zeros((frames, len(SHAPE_NAMES)))
    angles = np.zeros((frames, 3))
    translation = np.zeros((frames, 3))
    rotation = np.tile(np.eye(3), (frames, 1, 1))
    tracked = np.flatnonzero(found)
    w, r, t = solver.solve(observed[tracked], None if reference is None else reference[tracked])
    weights[tracked], rotation[tracked], translation[tracked] = w, r, t
    angles[tracked] = np.array([rotation_to_angles(m) for m in r])
    return weights, angles, rotation, translation


def _neutral_offset(solver: FrameSolver, observed, raw, found) -> np.ndarray:
    """(K, 3) per-landmark neutral correction in avatar metres: the median over the take of
    what the NEUTRAL avatar, posed, misses.  Each expression is on for a minority of the
    frames, so the median sees the performer's rest face (eyes open, looking ahead, mouth
    at rest); the difference from the avatar's -- another face, or the detector's bias on
    this one -- is then not read as expression."""
    _, _, rotation, translation = raw
    tracked = np.flatnonzero(found)
    predicted, projection = solver.linearised(rotation[tracked], translation[tracked])
    residual = observed[tracked, :, :2] - predicted
    # Minimum-norm lift of each image residual into avatar space: A⁺ e = Aᵀ (A Aᵀ)⁻¹ e.
    inverse = np.linalg.inv(projection @ projection.transpose(0, 2, 1))
    lifted = np.einsum("tij,tjl,tkl->tki", projection.transpose(0, 2, 1), inverse, residual)
    return np.median(lifted, axis=0)


def _fill_gaps(found, fps, settings: SolveSettings, *channels) -> int:
    """Frames without a face: hold the last solved values for hold_s, then ease (smoothstep)
    to neutral (zeros) over ease_s; before the first face, neutral.  In place; returns the count."""
    hold, ease = settings.hold_s * fps, max(settings.ease_s * fps, 1e-9)
    last, gap = None, 0
    for k in range(len(found)):
        if found[k]:
            last, gap = k, 0
            continue
        gap += 1
        for channel in channels:
            if last is None:
                channel[k] = 0.0
                continue
            e = np.clip((gap - hold) / ease, 0.0, 1.0)
            channel[k] = channel[last] * (1.0 - e * e * (3 - 2 * e))
    return int((~found).sum())


def _smooth(weights, head, gaze, fps, settings: SolveSettings):
    weights = OneEuroFilter(fps, settings.weight_min_cutoff, settings.weight_beta)(weights)
    # Angles in radians and translations in metres move on similar numeric scales here.
    head = OneEuroFilter(fps, settings.pose_min_cutoff, settings.pose_beta)(head)
    gaze = OneEuroFilter(fps, settings.pose_min_cutoff, settings.pose_beta * 2)(gaze)
    return weights, head, gaze


# ----------------------------------------------------------------------------- API
def _check_destination(path, suffixes) -> None:
    if path is None:
        return
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ExportError(f"{str(path)!r}: must end in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise ExportError(f"{str(path)!r}: folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise ExportError(f"{str(path)!r}: is a folder")


def animate(video_or_frames, avatar, *, fps: float | None = None, out=None, csv=None, clip_name: str = "take",
            preset: str = "unity", settings: SolveSettings | None = None, tracker=None, progress=None,
            detector_calibration: bool = True, cache_dir=None) -> Take:
    """Solve a take of ``avatar`` from a video and optionally write it.

    video_or_frames: a video file path, or (T, H, W, 3) uint8 RGB frames (array or list).
    avatar: an avatar .glb written by :func:`pyfacerig.build` (path), or an
        :class:`pyfacerig.build.Avatar` (then ``out`` cannot be written: there is no file to add to).
    fps: frame rate; default the video's own (frames: 30).
    out: write the avatar with the take as clip ``clip_name`` (.glb, or .fbx with ``preset``).
    csv: write the take as a Live Link Face CSV.
    detector_calibration: solve with the avatar calibrated to the face mesh
        (:mod:`pyfacerig.animate.calibrate`: computed once per avatar .glb, ~60 renders, then
        cached in ``cache_dir``, default :func:`~pyfacerig.animate.calibrate.default_cache_dir`).
        An Avatar object is solved uncalibrated (there is no file to render from).
    Returns the :class:`Take`; ``take.report`` holds frame counts (``frames_without_face``),
    timings and the clip report.  Raises VideoReadError (unreadable video), NoFaceError (no
    face in any frame), InvalidInputError (bad arguments), ExportError (unwritable output).
    """
    calibration_s = None
    if isinstance(avatar, (str, os.PathLike)):
        rig = AvatarRig.from_glb(avatar)
    elif hasattr(avatar, "parts") and hasattr(avatar, "shape_names"):
        if out is not None:
            raise InvalidInputError("animate: out= needs the avatar as a .glb path (the clip is added to that file)")
        rig = AvatarRig.from_avatar(avatar)
    else:
        raise InvalidInputError(f"animate: avatar must be a .glb path or an Avatar, got {type(avatar).__name__}")
    if fps is not None and (not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0):
        raise InvalidInputError(f"animate: fps must be a positive number, got {fps!r}")
    # Refuse unwritable destinations before the (long) tracking, not after it.
    _check_destination(out, (".glb", ".fbx"))
    _check_destination(csv, (".csv",))
    started = time.perf_counter()
    landmarks, video_fps, size, timings = track_landmarks(video_or_frames, tracker, progress)
    fps = float(fps or video_fps or 30.0)
    if detector_calibration and isinstance(avatar, (str, os.PathLike)) and np.isfinite(landmarks).any():
        # After tracking, so that an unreadable video costs no renders.
        from .calibrate import load_or_calibrate
        calibrate_start = time.perf_counter()
        calibration, computed = load_or_calibrate(avatar, rig, cache_dir)
        rig = calibration.apply(rig)
        calibration_s = time.perf_counter() - calibrate_start if computed else 0.0
    take = solve_take(landmarks, fps, size, rig, settings)
    take.report.update(timings)
    take.report["image_size"] = list(size)
    take.report["detector_calibrated"] = calibration_s is not None
    take.report["calibration_s"] = calibration_s or 0.0
    take.report["total_s"] = time.perf_counter() - started
    if csv is not None:
        from .livelink import write_livelink_csv
        write_livelink_csv(take, csv)
    if out is not None:
        from .clip import write_take
        take.report["clip"] = write_take(avatar, take, out, clip_name=clip_name, preset=preset)
    return take
