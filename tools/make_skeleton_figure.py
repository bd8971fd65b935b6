#!/usr/bin/env python
"""Draw docs/skeleton_poses.png: the astronaut avatar posed by its calibrated head skeleton.

Columns: rest, jaw turned 20°, eye_l turned 20° about the vertical, head turned 30°, neck bent 20°;
front view above, 3/4 view below.  The poses are the avatar's own linear blend skinning
(pyfacerig.skeleton.skin) rendered by pyfacerig.render.
Usage: python tools/make_skeleton_figure.py [output]
"""
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# After the installed packages: an installed pyfacerig (with its compiled core) wins over this
# source tree, which has no compiled core until tools/dev_build.sh has run.
sys.path.append(str(ROOT))

from pyfacerig import render, skeleton  # noqa: E402
from pyfacerig.build import build  # noqa: E402
from pyfacerig.cli import EXAMPLES  # noqa: E402


def rotation(axis: int, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def main(argv) -> int:
    out = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "skeleton_poses.png"
    avatar = build(EXAMPLES["astronaut"])
    cal = avatar.skeleton
    texture = np.asarray(Image.open(io.BytesIO(avatar.textures["skin"])).convert("RGB"))
    poses = [{}, {3: rotation(0, 20)}, {4: rotation(1, 20)}, {2: rotation(1, 30)}, {1: rotation(0, 20)}]
    rows = []
    for yaw in (0, 35):
        row = []
        for pose in poses:
            meshes = render.template_meshes(avatar, skin_texture=texture)
            for mesh, (name, part) in zip(meshes, avatar.parts.items()):
                mesh.vertices = part.split(skeleton.skin(part.vertices, cal.weights[name], cal.positions,
                                                         cal.parents, pose))
            row.append(render.render(meshes, render.face_camera(avatar, yaw_deg=yaw, distance=0.85), 300, 300))
        rows.append(np.concatenate(row, axis=1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(out, optimize=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
