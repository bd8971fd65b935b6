"""Draw docs/pipeline.png: the astronaut portrait, its baked atlas and the built avatar posed.

    PYTHONPATH=$PWD python tools/make_pipeline_figure.py

Uses build() and the template engineer's CPU renderer (pyfacerig.render); deterministic.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pyfacerig import render
from pyfacerig.build import build
from pyfacerig.cli import EXAMPLES
from pyfacerig.image_io import load_image
from pyfacerig.templates import load_default

POSES = (
    ("neutral", {}, 0),
    ("jawOpen + eyeBlinkLeft", {"jawOpen": 1.0, "eyeBlinkLeft": 1.0}, 0),
    ("smile + look left", {"mouthSmileLeft": 1.0, "mouthSmileRight": 1.0, "eyeLookOutLeft": 1.0,
                           "eyeLookInRight": 1.0}, 30),
)
TILE = 320


def main() -> int:
    template = load_default()
    photo = load_image(EXAMPLES["astronaut"])
    avatar = build(photo, template=template)
    textures = {k: np.asarray(Image.open(io.BytesIO(v)).convert("RGB")) for k, v in avatar.textures.items()}
    tiles = [cv2.resize(photo, (TILE, TILE), interpolation=cv2.INTER_AREA),
             cv2.resize(textures["skin"], (TILE, TILE), interpolation=cv2.INTER_AREA)]
    for _, weights, yaw in POSES:
        w = np.zeros(len(avatar.shape_names))
        for name, value in weights.items():
            w[avatar.shape_names.index(name)] = value
        meshes = []
        for part in avatar.parts.values():
            vertices = part.vertices + np.tensordot(w, part.shape_deltas, axes=1)
            texture = textures[part.material] if part.material in ("skin", "eye") else None
            meshes.append(render.Mesh(part.split(vertices), part.export_faces, part.uvs, texture,
                                      color=render.MOUTH_COLOURS.get(part.material, (200, 200, 200))))
        tiles.append(render.render(meshes, render.face_camera(avatar, yaw_deg=yaw, distance=0.75), TILE, TILE))
    figure = np.concatenate(tiles, axis=1)
    out = Path(__file__).resolve().parents[1] / "docs" / "pipeline.png"
    ok, data = cv2.imencode(".png", cv2.cvtColor(figure, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    out.write_bytes(data.tobytes())
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
