"""Render an avatar .glb posed by ARKit weights and a head rotation (CPU, pyfacerig.render).

Used to look at a take and, in the tests and benchmark, to make videos with KNOWN motion:
the avatar is drawn with its own baked textures, so MediaPipe tracks it like a face.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from .. import render
from .avatar_file import AvatarFile, load_avatar_glb
from .clip import head_rotation_matrices
from .take import SHAPE_NAMES

__all__ = ["AvatarRenderer"]


class AvatarRenderer:
    """Draws one avatar: ``renderer(weights, yaw=, pitch=, roll=)`` -> (H, W, 3) uint8 RGB.

    weights: (52,) in ARKit order (missing targets are skipped).  The head turns about a
    neck pivot behind and below the face; the camera is fixed, framing the neutral face.
    """

    def __init__(self, avatar, width: int = 384, height: int = 384, distance: float = 0.6, fov_deg: float = 20.0):
        self.avatar: AvatarFile = avatar if isinstance(avatar, AvatarFile) else load_avatar_glb(avatar)
        self.width, self.height = int(width), int(height)
        document = self.avatar.document
        textures = {}
        for k, material in enumerate(document.get("materials", [])):
            pbr = material.get("pbrMetallicRoughness") or {}
            if pbr.get("baseColorTexture") is not None:
                data, _ = self.avatar.image_bytes(document["textures"][pbr["baseColorTexture"]["index"]]["source"])
                textures[k] = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        self._textures = textures
        index = {name: k for k, name in enumerate(self.avatar.target_names)}
        self._order = [(j, index[name]) for j, name in enumerate(SHAPE_NAMES) if name in index]
        skin = self.avatar.part("skin").positions.astype(np.float64)
        centre = skin.mean(axis=0)
        self.pivot = centre + np.array([0.0, -0.06, -0.07])
        self.camera = render.Camera(target=np.array([0.0, centre[1], centre[2]]), distance=distance, fov_deg=fov_deg)

    def __call__(self, weights=None, yaw: float = 0.0, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
        w = np.zeros(len(SHAPE_NAMES)) if weights is None else np.asarray(weights, np.float64)
        rotation = head_rotation_matrices(np.array([yaw]), np.array([pitch]), np.array([roll]))[0]
        meshes = []
        for primitive in self.avatar.primitives:
            vertices = primitive.positions.astype(np.float64).copy()
            for j, m in self._order:
                if w[j] != 0.0:
                    vertices += w[j] * primitive.target_positions[m]
            vertices = (vertices - self.pivot) @ rotation.T + self.pivot
            texture = self._textures.get(primitive.material)
            meshes.append(render.Mesh(vertices, primitive.indices, primitive.uvs if texture is not None else None,
                                      texture))
        return render.render(meshes, self.camera, self.width, self.height)


def _bump(frames: int, start: float, stop: float, peak: float) -> np.ndarray:
    """A raised-cosine bump from ``start`` to ``stop`` (frame numbers) reaching ``peak``."""
    k = np.arange(frames, dtype=np.float64)
    phase = np.clip((k - start) / (stop - start), 0.0, 1.0)
    return peak * 0.5 * (1.0 - np.cos(2 * np.pi * phase))


def demo_take(frames: int = 72, fps: float = 24.0):
    """A take with known motion for checks and benchmarks: two blinks (frames ~12 and ~48),
    a jaw opening, smiles, brows up then down, a look to the subject's left then up, and the
    head turning between +30 and -30 degrees of yaw.  Returns a :class:`Take`."""
    from .take import Take

    f = frames / 72.0          # the schedule below is written for 72 frames
    w = np.zeros((frames, len(SHAPE_NAMES)))

    def put(name, start, stop, peak):
        w[:, SHAPE_NAMES.index(name)] += _bump(frames, start * f, stop * f, peak)

    for name in ("eyeBlinkLeft", "eyeBlinkRight"):
        put(name, 9, 15, 1.0)
    put("eyeBlinkLeft", 45, 51, 1.0)
    put("eyeBlinkRight", 45, 51, 1.0)
    put("jawOpen", 14, 36, 0.6)
    put("mouthSmileLeft", 40, 66, 0.7)
    put("mouthSmileRight", 44, 70, 0.6)
    put("browInnerUp", 18, 40, 0.8)
    put("browOuterUpLeft", 18, 40, 0.5)
    put("browOuterUpRight", 18, 40, 0.5)
    put("browDownLeft", 50, 70, 0.6)
    put("browDownRight", 50, 70, 0.6)
    put("eyeLookOutLeft", 20, 42, 0.6)
    put("eyeLookInRight", 20, 42, 0.6)
    put("eyeLookUpLeft", 52, 70, 0.5)
    put("eyeLookUpRight", 52, 70, 0.5)
    head = np.zeros((frames, 6))
    head[:, 0] = np.radians(30.0) * np.sin(2 * np.pi * np.arange(frames) / frames)
    return Take(np.clip(w, 0, 1), head, np.zeros((frames, 4)), fps, {"source": "demo_take"})
