"""What the video solver needs to know about one avatar, read from its .glb (or an Avatar).

* 470 solver landmarks: the 468 MediaPipe face-mesh landmarks, which are skin vertices
  ``template.landmark_vertex_ids``, plus the two iris centres (MediaPipe 468 and 473), which
  are the front poles of the eyeballs (the template eye vertex farthest along +Z).
* Their neutral positions (470, 3) and the avatar's own deltas (52, 470, 3), taken from the
  skin and eye primitives' morph targets, reordered by name to ARKit order.
* Gaze per unit weight: how far each shape turns each eyeball's pole (radians of yaw and
  pitch), so the eyeLook weights the solver finds become eye angles.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError
from ..landmarks import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR
from ..templates import load_default
from .take import SHAPE_NAMES

__all__ = ["AvatarRig", "IRIS_CENTRES", "FACE_OVAL", "EYE_AND_BROW"]

#: MediaPipe iris-centre landmark -> eye part (subject's right eye is 468).
IRIS_CENTRES = {468: "eye_right", 473: "eye_left"}
#: MediaPipe's face-oval landmarks (mediapipe.solutions.face_mesh_connections.FACEMESH_FACE_OVAL):
#: on a turned head they follow the silhouette, not the skin point, so they count less.
FACE_OVAL = (10, 21, 54, 58, 67, 93, 103, 109, 127, 132, 136, 148, 149, 150, 152, 162, 172, 176, 234, 251,
             284, 288, 297, 323, 332, 338, 356, 361, 365, 377, 378, 379, 389, 397, 400, 454)

#: Eye contours (pyfacerig.landmarks) and MediaPipe's eyebrow landmarks (FACEMESH_LEFT/RIGHT_EYEBROW).
EYE_AND_BROW = tuple(sorted(set(RIGHT_EYE_CONTOUR) | set(LEFT_EYE_CONTOUR) | {
    46, 52, 53, 55, 63, 65, 66, 70, 105, 107, 276, 282, 283, 285, 293, 295, 296, 300, 334, 336}))

#: MediaPipe's lip contours (FACEMESH_LIPS): refined by the attention model like the eyes.
LIPS = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269,
        270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)


@dataclass
class AvatarRig:
    """neutral (470, 3) metres; deltas (52, 470, 3) in ARKit order; landmark_ids (470,) the
    MediaPipe ids of the rows; gaze_per_weight (4, 52): d(left yaw, left pitch, right yaw,
    right pitch) / d(weight); eye_centres {"eye_left", "eye_right"} (3,); missing_shapes:
    ARKit names the avatar lacks (their deltas are zero)."""

    neutral: np.ndarray
    deltas: np.ndarray
    landmark_ids: np.ndarray
    gaze_per_weight: np.ndarray
    eye_centres: dict
    missing_shapes: tuple = ()
    #: (470,) how far the shapes move each landmark, for choosing the head-pose landmarks;
    #: None: from ``deltas``.  A rig calibrated to the detector (calibrate.py) keeps the
    #: avatar's own geometry here: the detector's deltas carry its jitter, which would
    #: reshuffle the choice.
    motion: np.ndarray | None = None

    @classmethod
    def from_glb(cls, path, template=None) -> "AvatarRig":
        from .avatar_file import load_avatar_glb
        avatar = load_avatar_glb(path)
        parts = {p.name: (p.positions, p.target_positions) for p in avatar.primitives}
        return cls._build(parts, avatar.target_names, template, str(path))

    @classmethod
    def from_avatar(cls, avatar, template=None) -> "AvatarRig":
        parts = {name: (part.vertices, part.shape_deltas) for name, part in avatar.parts.items()}
        return cls._build(parts, avatar.shape_names, template, "avatar")

    @classmethod
    def _build(cls, parts: dict, target_names, template, where: str) -> "AvatarRig":
        template = load_default() if template is None else template
        for needed in ("skin", "eye_left", "eye_right"):
            if needed not in parts:
                raise InvalidInputError(f"{where}: has no {needed!r} part; the video solver needs the skin and both eyes")
        names = list(target_names)
        order = [names.index(n) if n in names else -1 for n in SHAPE_NAMES]
        missing = tuple(n for n, k in zip(SHAPE_NAMES, order) if k < 0)

        def arkit(deltas):
            out = np.zeros((len(SHAPE_NAMES),) + deltas.shape[1:], np.float64)
            for j, k in enumerate(order):
                if k >= 0:
                    out[j] = deltas[k]
            return out

        skin_vertices, skin_deltas = parts["skin"]
        try:
            ids = template.skin_landmark_ids(len(skin_vertices))      # welded (Avatar) or split (.glb)
        except InvalidInputError as exc:
            raise InvalidInputError(f"{where}: {exc}") from None
        neutral = [np.asarray(skin_vertices, np.float64)[ids]]
        deltas = [arkit(np.asarray(skin_deltas)[:, ids])]
        centres, gaze = {}, np.zeros((4, len(SHAPE_NAMES)))
        for landmark, part_name in sorted(IRIS_CENTRES.items()):
            vertices, part_deltas = parts[part_name]
            vertices = np.asarray(vertices, np.float64)
            template_eye = np.asarray(template.parts[part_name].vertices, np.float64)
            if len(template_eye) != len(vertices):
                raise InvalidInputError(f"{where}: part {part_name!r} does not have the template's vertices")
            centre_t = template_eye.mean(axis=0)
            pole = int(np.argmax(template_eye[:, 2] - centre_t[2]))   # the iris centre looks along +Z
            centre = vertices.mean(axis=0)
            centres[part_name] = centre
            pole_deltas = arkit(np.asarray(part_deltas)[:, pole:pole + 1])[:, 0]   # (52, 3)
            neutral.append(vertices[pole][None])
            deltas.append(pole_deltas[:, None])
            rest = vertices[pole] - centre
            moved = rest[None] + pole_deltas
            yaw = np.arctan2(moved[:, 0], moved[:, 2]) - np.arctan2(rest[0], rest[2])
            # Pitch > 0 looks down (toward -Y).
            pitch = -(np.arctan2(moved[:, 1], np.hypot(moved[:, 0], moved[:, 2]))
                      - np.arctan2(rest[1], np.hypot(rest[0], rest[2])))
            row = 0 if part_name == "eye_left" else 2
            gaze[row], gaze[row + 1] = yaw, pitch
        return cls(neutral=np.concatenate(neutral), deltas=np.concatenate(deltas, axis=1),
                   landmark_ids=np.concatenate([np.arange(len(ids)), [468, 473]]).astype(np.int64),
                   gaze_per_weight=gaze, eye_centres=centres, missing_shapes=missing)

    def shape_reach(self) -> np.ndarray:
        """(52,) largest landmark displacement (metres) of each shape at weight 1."""
        return np.linalg.norm(self.deltas, axis=2).max(axis=1)

    def stable_landmarks(self, count: int = 60) -> np.ndarray:
        """Row indices of the ``count`` landmarks that the 52 shapes move least (for the head
        pose), leaving out the face oval, the iris centres and the eye and brow contours.

        The eye contours are left out whatever the avatar's own deltas say: the face mesh moves
        them on every blink and squint, and an avatar whose lid moves little in its own shape
        (the neutral astronaut's left upper lid, whose blink leaves the eyeball showing) would
        otherwise put lid points among the pose's anchors, and each blink would tilt the head."""
        motion = np.linalg.norm(self.deltas, axis=2).max(axis=0) if self.motion is None else self.motion
        excluded = set(FACE_OVAL) | set(EYE_AND_BROW)
        candidates = [k for k, lm in enumerate(self.landmark_ids) if lm < 468 and lm not in excluded]
        candidates = np.array(candidates)
        return np.sort(candidates[np.argsort(motion[candidates], kind="stable")[:count]])
