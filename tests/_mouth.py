"""The mouth of a rest pose as a user sees it: rendered from the front with its own texture
and read back by MediaPipe (issue #11; tests/test_build_neutral.py, tools/make_neutral_figure.py)."""
from __future__ import annotations

import io

import numpy as np


def front_render(avatar_or_template, weights=None) -> np.ndarray:
    """(512, 512, 3) uint8: the project's renderer, 55 cm in front, the avatar's own texture."""
    from PIL import Image
    from pyfacerig import render
    texture = None
    if hasattr(avatar_or_template, "texture"):
        texture = np.asarray(Image.open(io.BytesIO(avatar_or_template.texture)).convert("RGB"))
    camera = render.face_camera(avatar_or_template, distance=0.55)
    return render.render(render.template_meshes(avatar_or_template, weights, texture), camera, 512, 512)


def read_back(avatar_or_template, weights=None) -> np.ndarray:
    """MediaPipe's 478 points (pixels, y down) on :func:`front_render`."""
    from pyfacerig.landmarks import detect_landmarks
    return detect_landmarks(front_render(avatar_or_template, weights)).points[:, :2]


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
