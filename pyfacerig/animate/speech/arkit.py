"""Viseme curves to the 52 ARKit weights: one mouth pose per viseme, loudness, lip closure.

The poses follow what each sound needs of the lips and jaw in conversational speech (the
ARKit shapes are described in /work/shared/ARKIT_SHAPES.md):
- speech opens the jaw far less than the shape's extreme (jawOpen 1 is a 20-25 degree yawn):
  an "ah" spoken at normal loudness is about 0.45, "ee"/"ih" under 0.2.  Cloud visemes that
  open the jaw much further are the most common complaint about them;
- p/b/m shut the lips with the jaw nearly closed: mouthClose cancels the gap the jaw leaves,
  mouthPress thins the lips (see :func:`close_lips` for the exact closure);
- f/v tuck the lower lip under the upper teeth (mouthRollLower, upper lip slightly raised);
- th shows the tongue tip between the teeth (tongueOut, small);
- sh/ch/j and r push the lips forward (mouthFunnel, mouthPucker);
- s/z and "ee" spread the lips over closed-ish teeth (mouthStretch, a little smile);
- "oo" rounds and narrows (mouthPucker), "oh" rounds open (mouthFunnel with the jaw open).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...templates import ARKIT_SHAPE_NAMES
from .visemes import VISEME_NAMES

_BOTH = ("Left", "Right")


def _pose(**weights) -> dict:
    """A pose dict; names ending in "_" are set on both sides (mouthPress_ -> Left and Right)."""
    pose = {}
    for name, value in weights.items():
        if name.endswith("_"):
            for side in _BOTH:
                pose[name[:-1] + side] = value
        else:
            pose[name] = value
    return pose


#: Viseme -> ARKit weights at full loudness.
VISEME_POSES: dict = {
    "sil": _pose(),
    "PP": _pose(jawOpen=0.04, mouthPress_=0.35, mouthRollLower=0.1, mouthRollUpper=0.05),
    "FF": _pose(jawOpen=0.07, mouthRollLower=0.5, mouthUpperUp_=0.15, mouthPress_=0.1),
    "TH": _pose(jawOpen=0.12, tongueOut=0.25, mouthUpperUp_=0.05),
    "DD": _pose(jawOpen=0.14, mouthLowerDown_=0.1, mouthStretch_=0.05),
    "kk": _pose(jawOpen=0.18, mouthLowerDown_=0.1, mouthStretch_=0.1),
    "CH": _pose(jawOpen=0.1, mouthFunnel=0.4, mouthPucker=0.2, mouthUpperUp_=0.1),
    "SS": _pose(jawOpen=0.06, mouthStretch_=0.2, mouthSmile_=0.12, mouthLowerDown_=0.1, mouthUpperUp_=0.05),
    "nn": _pose(jawOpen=0.13, mouthLowerDown_=0.05),
    "RR": _pose(jawOpen=0.12, mouthFunnel=0.25, mouthPucker=0.3),
    "aa": _pose(jawOpen=0.45, mouthLowerDown_=0.15, mouthUpperUp_=0.05),
    "E": _pose(jawOpen=0.3, mouthStretch_=0.2, mouthSmile_=0.1, mouthLowerDown_=0.15),
    "ih": _pose(jawOpen=0.16, mouthStretch_=0.2, mouthSmile_=0.2, mouthLowerDown_=0.05),
    "oh": _pose(jawOpen=0.38, mouthFunnel=0.55, mouthPucker=0.3),
    "ou": _pose(jawOpen=0.12, mouthPucker=0.75, mouthFunnel=0.4),
}

#: (15, 52) float32 pose matrix in VISEME_NAMES x ARKIT_SHAPE_NAMES order.
POSE_MATRIX = np.zeros((len(VISEME_NAMES), len(ARKIT_SHAPE_NAMES)), np.float32)
for _row, _viseme in enumerate(VISEME_NAMES):
    for _name, _value in VISEME_POSES[_viseme].items():
        POSE_MATRIX[_row, ARKIT_SHAPE_NAMES.index(_name)] = _value

_INDEX = {name: i for i, name in enumerate(ARKIT_SHAPE_NAMES)}
#: Shapes that open the mouth and so follow the loudness.
_LOUDNESS_SHAPES = [_INDEX[n] for n in ("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight",
                                        "mouthUpperUpLeft", "mouthUpperUpRight")]
#: Shapes that part the lips and are released while the lips are shut.
_PARTING_SHAPES = [_INDEX[n] for n in ("mouthFunnel", "mouthLowerDownLeft", "mouthLowerDownRight",
                                       "mouthUpperUpLeft", "mouthUpperUpRight", "mouthStretchLeft",
                                       "mouthStretchRight", "tongueOut")]
#: Jaw while the lips are shut (nearly closed: the teeth are just apart).
CLOSED_JAW = 0.04
#: Highest jawOpen speech reaches (a shout), well short of the shape's full yawn.
MAX_SPEECH_JAW = 0.55
#: Loudness gain range on the mouth-opening shapes, and the dB span that maps onto it.
GAIN_RANGE = (0.85, 1.1)
GAIN_DB_SPAN = 30.0
#: Lip gap the closure aims for (metres): touching, not pushed through each other.
CLOSED_GAP_M = 0.0002

#: MediaPipe inner-lip landmarks: (upper, lower) midpoint pairs (centre, subject's right, left).
INNER_LIP_PAIRS = ((13, 14), (82, 87), (312, 317))


@dataclass(frozen=True)
class LipGap:
    """How an avatar's lips part: the mesh is linear in the weights, so the vertical gap between
    the inner-lip landmark pairs is gap(w) = rest + w @ rates exactly.

    rest: (3,) float64 gap in metres at the neutral, per :data:`INNER_LIP_PAIRS` pair.
    rates: (52, 3) float64 gap change per unit weight of each ARKit shape.
    """

    rest: np.ndarray
    rates: np.ndarray

    @classmethod
    def from_skin(cls, vertices, shape_deltas, landmark_vertex_ids) -> "LipGap":
        """vertices (N, 3) neutral skin (+Y up), shape_deltas (52, N, 3) in ARKIT_SHAPE_NAMES
        order, landmark_vertex_ids (468,) skin vertex of each MediaPipe landmark."""
        ids = np.asarray(landmark_vertex_ids, dtype=np.int64)
        upper = ids[[u for u, _ in INNER_LIP_PAIRS]]
        lower = ids[[lo for _, lo in INNER_LIP_PAIRS]]
        vertices = np.asarray(vertices, dtype=np.float64)
        deltas = np.asarray(shape_deltas, dtype=np.float64)
        rest = vertices[upper, 1] - vertices[lower, 1]
        rates = deltas[:, upper, 1] - deltas[:, lower, 1]
        return cls(rest=rest, rates=rates)

    def gap(self, weights) -> np.ndarray:
        """(T, 3) gap in metres for weights (T, 52)."""
        return self.rest[None] + np.asarray(weights, dtype=np.float64) @ self.rates


def loudness_gain(levels_db: np.ndarray, speaking: np.ndarray) -> np.ndarray:
    """(T,) gain on the mouth-opening shapes from (T,) frame levels in dBFS.

    The reference is the 90th percentile of the frames with speech, so the same line read
    quietly or loudly opens the mouth the same; within a line, louder syllables open wider.
    """
    levels_db = np.asarray(levels_db, dtype=np.float64)
    if not np.any(speaking):
        return np.full(len(levels_db), GAIN_RANGE[0])
    reference = float(np.percentile(levels_db[speaking], 90))
    low, high = GAIN_RANGE
    return np.clip(1.0 + (levels_db - reference) / GAIN_DB_SPAN, low, high)


def visemes_to_weights(curves: np.ndarray, gain: np.ndarray | None = None) -> np.ndarray:
    """(T, 52) float64 ARKit weights from (15, T) viseme curves, before lip closure.

    gain: (T,) loudness gain on the mouth-opening shapes (default 1).
    """
    weights = np.asarray(curves, dtype=np.float64).T @ POSE_MATRIX.astype(np.float64)
    if gain is not None:
        weights[:, _LOUDNESS_SHAPES] *= np.asarray(gain, dtype=np.float64)[:, None]
    jaw = _INDEX["jawOpen"]
    weights[:, jaw] = np.minimum(weights[:, jaw], MAX_SPEECH_JAW)
    return weights


def close_lips(weights: np.ndarray, closure: np.ndarray, lips: LipGap | None = None) -> np.ndarray:
    """Shut the lips where ``closure`` (T,) is 1, blend where it is between 0 and 1.

    The jaw goes to :data:`CLOSED_JAW`, lip-parting shapes are released, the lips press, and
    mouthClose is raised until the lips meet.  Without ``lips`` mouthClose equals jawOpen (the
    ARKit meaning: it cancels the jaw's gap).  With the avatar's :class:`LipGap`, mouthClose is
    solved from the mesh so that every inner-lip pair closes to :data:`CLOSED_GAP_M` -- needed
    when the avatar's neutral keeps the photo's parted lips.
    Returns (T, 52) float64 in [0, 1].
    """
    w = np.array(weights, dtype=np.float64)
    c = np.clip(np.asarray(closure, dtype=np.float64), 0.0, 1.0)[:, None]
    jaw, close = _INDEX["jawOpen"], _INDEX["mouthClose"]
    w[:, jaw] = (1 - c[:, 0]) * w[:, jaw] + c[:, 0] * CLOSED_JAW
    w[:, _PARTING_SHAPES] *= 1 - c
    for side in _BOTH:
        press = _INDEX["mouthPress" + side]
        w[:, press] = np.maximum(w[:, press], 0.35 * c[:, 0])
    if lips is None:
        needed = w[:, jaw]
    else:
        without_close = w.copy()
        without_close[:, close] = 0.0
        gap = lips.gap(without_close)                                  # (T, 3)
        rate = lips.rates[close]                                       # (3,) negative: closing
        with np.errstate(divide="ignore", invalid="ignore"):
            per_pair = np.where(rate < 0, (gap - CLOSED_GAP_M) / -rate, 0.0)
        needed = np.clip(per_pair.max(axis=1), 0.0, 1.0)
    w[:, close] = np.maximum(w[:, close] * (1 - c[:, 0]), c[:, 0] * needed)
    return np.clip(w, 0.0, 1.0)
