"""The face of an avatar as a user sees it: rendered from the front with its own texture
and read back by MediaPipe (issue #11; tests/test_build_neutral.py, tools/make_neutral_figure.py)."""
from __future__ import annotations

import io

import numpy as np


#: The views a figure read back by MediaPipe is taken over (distance m, yaw degrees):
#: MediaPipe's reading of one view moves with sub-millimetre changes (a camera 0.3 mm to the
#: side took Grace Hopper's right blink from 0.587 to 0.632; obama2's closed lips read 0.005
#: to 0.084 apart over these nine), so each figure is the median over nine nearby views.
VIEWS = tuple((distance, yaw) for distance in (0.5, 0.55, 0.6) for yaw in (-4.0, 0.0, 4.0))


def over_views(views: list, figure) -> float:
    """The median of ``figure(read-back)`` over the read-backs of the views."""
    return float(np.median([figure(points) for points in views]))


def front_render(avatar_or_template, weights=None, distance: float = 0.55, yaw_deg: float = 0.0) -> np.ndarray:
    """(512, 512, 3) uint8: the project's renderer, ``distance`` m in front (turned by
    ``yaw_deg``), the avatar's own texture."""
    from PIL import Image
    from pyfacerig import render
    texture = None
    if hasattr(avatar_or_template, "texture"):
        texture = np.asarray(Image.open(io.BytesIO(avatar_or_template.texture)).convert("RGB"))
    camera = render.face_camera(avatar_or_template, distance=distance, yaw_deg=yaw_deg)
    return render.render(render.template_meshes(avatar_or_template, weights, texture), camera, 512, 512)


def read_back(avatar_or_template, weights=None, distance: float = 0.55, yaw_deg: float = 0.0) -> np.ndarray:
    """MediaPipe's 478 points (pixels, y down) on :func:`front_render`."""
    from pyfacerig.landmarks import detect_landmarks
    return detect_landmarks(front_render(avatar_or_template, weights, distance, yaw_deg)).points[:, :2]


def read_back_views(avatar_or_template, weights=None) -> list:
    """:func:`read_back` in each of :data:`VIEWS`."""
    return [read_back(avatar_or_template, weights, distance, yaw) for distance, yaw in VIEWS]


def lip_gap(points: np.ndarray) -> float:
    """Inner-lip gap (13-14) as a fraction of the inner mouth width (78-308)."""
    return float(np.linalg.norm(points[13] - points[14]) / np.linalg.norm(points[78] - points[308]))


def corners(points: np.ndarray, reference: np.ndarray) -> dict:
    """The mouth corners (61, 291) of ``points`` against those of ``reference``.

    Compared in each face's own mouth frame: origin between the outer lip centres (0, 17),
    x along the eye line (33 -> 263), lengths in face heights (10 -> 152), so neither the head's
    pose nor its size counts.  Returns {"lift": (2,), "distance": (2,)} as fractions of the
    face height; ``lift`` > 0 means higher than the reference.
    """
    def frame(q):
        eye_line = q[263] - q[33]
        angle = np.arctan2(eye_line[1], eye_line[0])
        c, s = np.cos(-angle), np.sin(-angle)
        rotation = np.array([[c, -s], [s, c]])
        height = np.linalg.norm(q[10] - q[152])
        return np.stack([rotation @ (q[i] - 0.5 * (q[0] + q[17])) / height for i in (61, 291)])
    ours, theirs = frame(points), frame(reference)
    return {"lift": theirs[:, 1] - ours[:, 1],             # image y points down
            "distance": np.linalg.norm(ours - theirs, axis=1)}
