"""The skin's mouth pocket, before and after it follows the skin (docs/mouth_pocket.png,
docs/pipeline.md "The mouth pocket").

    python tools/make_pocket_figure.py docs/mouth_pocket.png [--names obama3 grace_hopper]

Builds each portrait twice with the pyfacerig on the path: once as it is, once with the mouth
pocket left to the Laplacian fine fit (fit.pocket_follower replaced by the identity, which is
the fine fit before the pocket followed the skin, up to float rounding).  Renders the rest pose's skin alone,
double-sided, in clay with the mouth pocket's triangles red, from the subject's left at 40
degrees seen from 35 degrees below and from the side.  Prints, per view, the pixels where the
pocket is in front of the outer skin facing the camera (tests/test_build_pocket.py's measure).
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools"))

VIEWS = ((40, -35), (90, 0))
SIZE = 360


def picture(avatar, template) -> tuple[np.ndarray, list]:
    from pyfacerig import render
    from test_build_pocket import mouth_pocket_faces, pocket_in_front

    skin = avatar.parts["skin"]
    vertices = np.asarray(skin.vertices, dtype=np.float64)
    faces = np.asarray(skin.faces, dtype=np.int64)
    pocket = mouth_pocket_faces(template)
    # one vertex per corner, so each triangle takes its own flat colour
    corners = vertices[faces].reshape(-1, 3)
    colours = np.repeat(np.where(pocket[:, None], [[215, 45, 45]], [[205, 190, 180]]), 3, axis=0).astype(float)
    tiles, counts = [], []
    for yaw, pitch in VIEWS:
        camera = render.face_camera(avatar, yaw_deg=yaw, distance=0.6)
        camera.pitch_deg = pitch
        image = render.render([render.Mesh(corners, np.arange(len(corners)).reshape(-1, 3), double_sided=True,
                                           vertex_colors=colours)], camera, SIZE, SIZE)
        counts.append(int(np.count_nonzero(pocket_in_front(vertices, faces, pocket, camera, SIZE))))
        tiles.append(image)
    return np.concatenate(tiles, axis=1), counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--names", nargs="+", default=["obama3"])
    args = parser.parse_args()

    from pyfacerig import fit
    from pyfacerig.templates import load_default
    from make_neutral_figure import portrait
    builder = importlib.import_module("pyfacerig.build")

    template = load_default()
    follower = fit.pocket_follower
    rows = []
    for name in args.names:
        row = []
        for label, follow in (("before", False), ("after", True)):
            builder._FOLD_OPERATORS.clear()
            fit.pocket_follower = follower if follow else (lambda vertices, *_: _identity(len(vertices)))
            try:
                avatar = builder.build(portrait(name), template=template)
            finally:
                fit.pocket_follower = follower
                builder._FOLD_OPERATORS.clear()
            image, counts = picture(avatar, template)
            print(name, label, "pocket pixels in front of the skin, per view", dict(zip(VIEWS, counts)), flush=True)
            tile = Image.fromarray(image)
            ImageDraw.Draw(tile).text((6, 4), f"{name}, {label}", fill=(0, 0, 0))
            row += [np.asarray(tile), np.full((SIZE, 8, 3), 255, np.uint8)]
        rows += [np.concatenate(row[:-1], axis=1)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.path, optimize=True)


def _identity(count: int):
    import scipy.sparse as sp
    return sp.identity(count, format="csr")


if __name__ == "__main__":
    main()
