"""``Take``: one recorded or solved facial performance, frame by frame.

A take is plain arrays on a fixed frame rate, so it is independent of any avatar: the 52
weights are keyed by the ARKit names (:data:`pyfacerig.templates.ARKIT_SHAPE_NAMES`, Apple's
order), which every pyfacerig avatar carries as its morph-target names.  That is what lets a
take solved on one avatar play on any other ("retargeting by name").

Angle conventions (radians, right-handed glTF frame of the avatar: +X the subject's left,
+Y up, +Z out of the face):

* head_pose[:, 0:3] = yaw, pitch, roll.  The head's rotation is R = Ry(yaw) Rx(pitch) Rz(roll):
  yaw > 0 turns the face toward +X (the subject's left), pitch > 0 tips the face down (toward
  -Y), roll > 0 tilts the top of the head toward -X (the subject's right).
* head_pose[:, 3:6] = translation x, y, z in metres of the head from where it was in the
  first tracked frame, in the same axes (+Z toward the camera).
* gaze = left eye yaw, pitch, right eye yaw, pitch, with the same signs as the head (yaw > 0
  looks toward the subject's left, pitch > 0 looks down).  "Left" is the subject's left.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import TakeError
from ..templates import ARKIT_SHAPE_NAMES

__all__ = ["Take", "SHAPE_NAMES", "HEAD_POSE_NAMES", "GAZE_NAMES"]

SHAPE_NAMES: tuple[str, ...] = ARKIT_SHAPE_NAMES
HEAD_POSE_NAMES = ("yaw", "pitch", "roll", "x", "y", "z")
GAZE_NAMES = ("left_yaw", "left_pitch", "right_yaw", "right_pitch")


@dataclass
class Take:
    """A facial performance sampled at ``fps`` frames per second; T frames.

    weights: (T, 52) float32 in [0, 1], columns in ARKIT_SHAPE_NAMES order.
    head_pose: (T, 6) float32 yaw, pitch, roll (radians), translation x, y, z (metres).
    gaze: (T, 4) float32 left eye yaw, pitch, right eye yaw, pitch (radians).
    fps: frames per second (> 0); frame k is at time k / fps seconds.
    report: free-form facts about how the take was made (frames without a face, timings...).

    The arrays are converted to float32 and validated on construction; bad data raises
    :class:`pyfacerig.errors.TakeError` naming the field.
    """

    weights: np.ndarray
    head_pose: np.ndarray
    gaze: np.ndarray
    fps: float
    report: dict = field(default_factory=dict)

    def __post_init__(self):
        self.weights = _array(self.weights, "weights", len(SHAPE_NAMES))
        frames = len(self.weights)
        self.head_pose = _array(self.head_pose, "head_pose", 6, frames)
        self.gaze = _array(self.gaze, "gaze", 4, frames)
        if frames == 0:
            raise TakeError("take: has no frames")
        # 1e-6 of slack: values that went through a text file or float32 rounding stay valid.
        if self.weights.min() < -1e-6 or self.weights.max() > 1 + 1e-6:
            raise TakeError(f"take.weights: must lie in [0, 1], found "
                            f"[{self.weights.min():.6g}, {self.weights.max():.6g}]")
        np.clip(self.weights, 0.0, 1.0, out=self.weights)
        try:
            fps = float(self.fps)
        except (TypeError, ValueError):
            raise TakeError(f"take.fps: must be a number, got {self.fps!r}") from None
        if not np.isfinite(fps) or fps <= 0:
            raise TakeError(f"take.fps: must be a positive finite number, got {self.fps!r}")
        self.fps = fps
        if not isinstance(self.report, dict):
            raise TakeError(f"take.report: must be a dict, got {type(self.report).__name__}")

    @property
    def frame_count(self) -> int:
        return len(self.weights)

    @property
    def times(self) -> np.ndarray:
        """(T,) float64 seconds of each frame."""
        return np.arange(self.frame_count, dtype=np.float64) / self.fps

    def weight(self, name: str) -> np.ndarray:
        """(T,) float32 curve of one ARKit shape by name."""
        if name not in SHAPE_NAMES:
            raise TakeError(f"take: unknown ARKit shape name {name!r}")
        return self.weights[:, SHAPE_NAMES.index(name)]

    @classmethod
    def neutral(cls, frames: int, fps: float) -> "Take":
        """A take of ``frames`` frames at rest (all weights, angles and offsets 0)."""
        frames = int(frames)
        return cls(np.zeros((frames, len(SHAPE_NAMES)), np.float32), np.zeros((frames, 6), np.float32),
                   np.zeros((frames, 4), np.float32), fps)


def _array(value, name: str, columns: int, frames: int | None = None) -> np.ndarray:
    try:
        array = np.array(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise TakeError(f"take.{name}: must be a numeric array") from None
    if array.ndim != 2 or array.shape[1] != columns:
        raise TakeError(f"take.{name}: must have shape (T, {columns}), got {array.shape}")
    if frames is not None and len(array) != frames:
        raise TakeError(f"take.{name}: has {len(array)} frames but weights has {frames}")
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise TakeError(f"take.{name}: contains NaN or infinity (first at frame {row})")
    return np.ascontiguousarray(array)
