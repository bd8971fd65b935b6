"""Calibrating an avatar to the face mesh: what MediaPipe reports on this avatar's own renders.

The solver fits the avatar's landmark vertices to MediaPipe's landmarks.  The two disagree
in ways that are the detector's, not the performer's, and they bias the take:

* **Rest geometry.**  MediaPipe's 3-D face model puts many landmarks at another depth than
  the avatar's vertices (up to 2 cm: the nose, the eye corners, the cheeks).  A head pose
  fitted with the avatar's depths misreads a turn: on the known-motion render the yaw of a
  30° turn came out 5-7° short on one side, and the pitch 4° off throughout.
* **Amplitude and pattern.**  MediaPipe moves its landmarks less than the avatar's vertices
  move (a smile at weight 1 moves them 36-46 % as far, a blink 48-55 %), and moves some
  that the avatar's shape leaves in place.  Fitted with the avatar's deltas, peaks came
  out at 0.55-0.6 of the truth.

So once per avatar, :func:`calibrate` renders it (pyfacerig.render, its own textures, a
pinhole camera of known field of view) and runs the face mesh on the renders:

* the neutral face at nine head poses (yaw to ±30°, pitch ±15°): per landmark, the 3-D
  offset that best explains, by linear least squares over the known poses, where MediaPipe
  puts it (the turns make the depth observable);
* every shape that moves a landmark more than 1 mm, alone at weight 1, facing the camera:
  MediaPipe's displacement of each landmark, lifted back to avatar metres through the
  pinhole (the depth component is the avatar's own, scaled by the shape's least-squares
  gain, since a frontal view does not see depth).

The calibrated rig (:meth:`DetectorCalibration.apply`) solves in the detector's terms: its
neutral is where MediaPipe sees this avatar's rest face, and weight 1 of a shape is what
MediaPipe reports for this avatar's shape at weight 1.  A performer's face is read through
the same detector, whose tendencies (its own depth model, its pull toward an average face)
do not depend on whose face it is; the performer's own rest face is still removed per take.

A calibration takes ~60 renders (about 15-25 s on the 2-core CI machine) and is cached on
disk by the glb's SHA-256 (:func:`load_or_calibrate`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError

__all__ = ["DetectorCalibration", "calibrate", "load_or_calibrate", "default_cache_dir", "CALIBRATION_VERSION"]

#: Bump when what a calibration holds or how it is computed changes: cached files of another
#: version are recomputed.
CALIBRATION_VERSION = 1
#: (yaw, pitch) in degrees of the neutral renders: both sides of the turn, up and down, and
#: two diagonals, so every landmark's offset is seen from several directions.
#: (Pitch > 0 is the face tipped down; these are the renders of version 1, whose pitch sign was the
#: opposite, so the calibration and its cache are unchanged.)
POSES = ((0, 0), (-30, 0), (-15, 0), (15, 0), (30, 0), (0, 15), (0, -15), (-20, -10), (20, 10))
#: Render size (pixels) and the weight each shape is rendered at.
SIZE = 320
SHAPE_WEIGHT = 1.0
#: Shapes whose largest landmark motion is below this (metres) are not rendered: the
#: solver's priors hold them at 0 and the detector cannot measure them.
MIN_REACH = 1e-3


@dataclasses.dataclass
class DetectorCalibration:
    """neutral_offset (K, 3): metres to add to the rig's neutral landmarks; deltas (52, K, 3):
    the shapes as the detector sees them (the avatar's own for shapes not measured);
    gains (52,): least-squares scale of the detector's displacement on the avatar's (1 where
    not measured); measured (52,) bool; rest_error_px (2,): mean landmark error over the
    pose renders before and after the offset."""

    neutral_offset: np.ndarray
    deltas: np.ndarray
    gains: np.ndarray
    measured: np.ndarray
    rest_error_px: np.ndarray

    def apply(self, rig):
        """The rig solved in the detector's terms (the head-pose landmarks are still chosen
        from the avatar's own deltas)."""
        if self.deltas.shape != rig.deltas.shape:
            raise InvalidInputError(f"calibration: deltas {self.deltas.shape} do not match "
                                    f"the rig's {rig.deltas.shape}")
        motion = np.linalg.norm(rig.deltas, axis=2).max(axis=0) if rig.motion is None else rig.motion
        return dataclasses.replace(rig, neutral=rig.neutral + self.neutral_offset, deltas=self.deltas,
                                   motion=motion)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, version=np.array(CALIBRATION_VERSION), **dataclasses.asdict(self))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "DetectorCalibration | None":
        """The calibration in ``data``, or None if it is of another version or unreadable."""
        try:
            with np.load(io.BytesIO(data)) as archive:
                if int(archive["version"]) != CALIBRATION_VERSION:
                    return None
                return cls(**{f.name: np.array(archive[f.name]) for f in dataclasses.fields(cls)})
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None


class _Camera:
    """The renderer's pinhole: avatar points -> camera frame (x right, y up, looking along
    -z) and image (x right, y up, pixels)."""

    def __init__(self, renderer):
        camera = renderer.camera
        if camera.yaw_deg or camera.pitch_deg:
            raise InvalidInputError("calibration expects the renderer's camera to face the avatar")
        self.target = np.asarray(camera.target, np.float64)
        self.distance = float(camera.distance)
        self.focal = 0.5 * renderer.height / np.tan(np.radians(camera.fov_deg) / 2)
        self.centre = np.array([renderer.width / 2.0, renderer.height / 2.0])
        self.pivot = np.asarray(renderer.pivot, np.float64)

    def posed(self, points, rotation):
        """Camera-frame points of the avatar's ``points`` with the head turned by ``rotation``
        about the renderer's neck pivot."""
        return (points - self.pivot) @ rotation.T + self.pivot - self.target - np.array([0.0, 0.0, self.distance])


def _detector():
    import mediapipe as mp  # loaded on first use: it brings TensorFlow Lite

    return mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)


def _detect(mesh, image: np.ndarray, ids: np.ndarray):
    """(K, 2) landmarks ``ids`` of ``image`` in pixels with y up, or None."""
    result = mesh.process(np.ascontiguousarray(image))
    if not result.multi_face_landmarks:
        return None
    height, width = image.shape[:2]
    marks = result.multi_face_landmarks[0].landmark
    points = np.array([(marks[k].x * width, height - marks[k].y * height) for k in ids], np.float64)
    return points


def calibrate(avatar_glb, rig=None) -> DetectorCalibration:
    """Render ``avatar_glb`` at known poses and shapes, run the face mesh, and fit the
    detector's rest geometry and shape deltas (module docstring).  Raises NoFaceError when
    the face mesh finds no face on the neutral frontal render."""
    from ..errors import NoFaceError
    from .clip import head_rotation_matrices
    from .preview import AvatarRenderer
    from .rig import AvatarRig
    from .solve import project, projection_jacobian

    rig = AvatarRig.from_glb(avatar_glb) if rig is None else rig
    renderer = AvatarRenderer(avatar_glb, SIZE, SIZE)
    camera = _Camera(renderer)
    ids = rig.landmark_ids
    count = len(ids)
    mesh = _detector()
    try:
        # Rest geometry: per landmark, J_ik R_i δ_k = q_ik - π(P_ik) over the pose renders.
        normal = np.zeros((count, 3, 3))
        rhs = np.zeros((count, 3))
        seen = []
        for yaw, pitch in POSES:
            rotation = head_rotation_matrices(np.radians([yaw]), np.radians([pitch]))[0]
            found = _detect(mesh, renderer(None, yaw=np.radians(yaw), pitch=np.radians(pitch)), ids)
            if found is None:
                if (yaw, pitch) == (0, 0):
                    raise NoFaceError(f"{avatar_glb}: the face mesh finds no face on the avatar's frontal render")
                continue
            points = camera.posed(rig.neutral, rotation)
            jr = projection_jacobian(points, camera.focal) @ rotation
            normal += np.einsum("kia,kib->kab", jr, jr)
            rhs += np.einsum("kia,ki->ka", jr, found - project(points, camera.focal, camera.centre))
            seen.append((rotation, found))
        # A small ridge (relative to each landmark's own curvature) keeps a landmark that the
        # renders see from one direction only from running off along the unseen one.
        ridge = 1e-3 * np.trace(normal, axis1=1, axis2=2)[:, None, None] * np.eye(3)
        offset = np.linalg.solve(normal + ridge, rhs[..., None])[..., 0]
        errors = [[np.linalg.norm(found - project(camera.posed(rig.neutral + d, rotation), camera.focal,
                                                   camera.centre), axis=1).mean() for rotation, found in seen]
                  for d in (0.0, offset)]

        # Shapes, facing the camera, against the neutral frontal detection.
        rest_rotation, rest_found = seen[0]
        rest_points = camera.posed(rig.neutral + offset, rest_rotation)
        jac = projection_jacobian(rest_points, camera.focal)                        # (K, 2, 3)
        deltas = np.array(rig.deltas, np.float64)
        gains = np.ones(len(deltas))
        measured = np.zeros(len(deltas), bool)
        for j in np.flatnonzero(rig.shape_reach() > MIN_REACH):
            weights = np.zeros(len(deltas))
            weights[j] = SHAPE_WEIGHT
            found = _detect(mesh, renderer(weights), ids)
            if found is None:
                continue                                 # keeps the avatar's own deltas
            seen_move = (found - rest_found) / SHAPE_WEIGHT                          # (K, 2) pixels
            own_move = np.einsum("kia,ka->ki", jac, rig.deltas[j])
            gain = float((seen_move * own_move).sum() / max((own_move * own_move).sum(), 1e-12))
            gain = max(gain, 0.05)
            depth = gain * rig.deltas[j, :, 2]
            deltas[j, :, 0] = (seen_move[:, 0] - jac[:, 0, 2] * depth) / jac[:, 0, 0]
            deltas[j, :, 1] = (seen_move[:, 1] - jac[:, 1, 2] * depth) / jac[:, 1, 1]
            deltas[j, :, 2] = depth
            gains[j] = gain
            measured[j] = True
    finally:
        mesh.close()
    return DetectorCalibration(offset, deltas, gains, measured, np.array([np.mean(e) for e in errors]))


def default_cache_dir() -> Path:
    """$PYFACERIG_CACHE_DIR, else $XDG_CACHE_HOME/pyfacerig, else ~/.cache/pyfacerig."""
    if os.environ.get("PYFACERIG_CACHE_DIR"):
        return Path(os.environ["PYFACERIG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pyfacerig"


_MEMORY: dict = {}


def load_or_calibrate(avatar_glb, rig=None, cache_dir=None) -> tuple[DetectorCalibration, bool]:
    """(calibration, computed_now) for ``avatar_glb``: from this process's memory, else from
    ``cache_dir`` (default :func:`default_cache_dir`) under the glb's SHA-256, else computed
    by :func:`calibrate` and stored there (atomically; a cache that cannot be written is
    skipped, the calibration is still returned)."""
    from engine_export.atomic import write_files_atomically
    from engine_export.errors import ExportError

    digest = hashlib.sha256(Path(avatar_glb).read_bytes()).hexdigest()
    key = f"detector-v{CALIBRATION_VERSION}-{digest}"
    if key in _MEMORY:
        return _MEMORY[key], False
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = folder / "animate" / f"{key}.npz"
    if path.is_file():
        cached = DetectorCalibration.from_bytes(path.read_bytes())
        if cached is not None and (rig is None or cached.deltas.shape == rig.deltas.shape):
            _MEMORY[key] = cached
            return cached, False
    result = calibrate(avatar_glb, rig)
    _MEMORY[key] = result
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_files_atomically({path: result.to_bytes()})
    except (OSError, ExportError):      # a read-only or full cache only costs the next run the time
        pass
    return result, True
