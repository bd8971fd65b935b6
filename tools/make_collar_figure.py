"""The head beyond the face, before and after the fine fit holds it (docs/fine_fit_reach.png,
docs/pipeline.md "Fine fit").

    python tools/make_collar_figure.py docs/fine_fit_reach.png [--names obama biden]

Builds each portrait twice with the pyfacerig on the path: once as it is, once with the fine
fit reaching over the whole head (``build.FINE_FIT_REACH`` set past the head's size, which is
the fine fit before it held the skin beyond the face).  Renders the posed skin from the side
and from behind, coloured by how far the fine fit moved it from the coarse fit (clay: not at
all, red: 10 mm or more).  Prints the collar's largest motion (the skin within 2 cm of the
neck's lowest point) and the median over the skin the fine fit now holds.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

VIEWS = (90, 180)
SIZE = 360
COLOUR_MM = 10.0
COLLAR = 0.02


def picture(avatar) -> np.ndarray:
    """Side and back views of the posed skin, coloured by how far the fine fit moved each vertex
    from the coarse fit: clay at 0, full red at COLOUR_MM and beyond."""
    from pyfacerig import render

    faces = np.asarray(avatar.parts["skin"].faces, dtype=np.int64)
    fine = np.asarray(avatar.posed_skin, dtype=np.float64)
    moved = 1e3 * np.linalg.norm(fine - np.asarray(avatar.coarse_skin, dtype=np.float64), axis=1)
    share = np.clip(moved / COLOUR_MM, 0.0, 1.0)[:, None]
    colours = (1.0 - share) * np.array([205.0, 195.0, 185.0]) + share * np.array([220.0, 30.0, 30.0])
    tiles = []
    for yaw in VIEWS:
        camera = render.face_camera(avatar, yaw_deg=yaw, distance=1.0)
        tiles.append(render.render([render.Mesh(fine, faces, vertex_colors=colours)], camera, SIZE, SIZE))
    return np.concatenate(tiles, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--names", nargs="+", default=["obama", "biden"])
    args = parser.parse_args()

    from pyfacerig.templates import load_default
    from make_neutral_figure import portrait
    builder = importlib.import_module("pyfacerig.build")

    template = load_default()
    reach = builder.FINE_FIT_REACH
    heights = template.parts["skin"].vertices[:, 1]
    low = heights < heights.min() + COLLAR                # the collar: the neck's lowest 2 cm
    rows = []
    for name in args.names:
        row = []
        for label, held in (("before", False), ("after", True)):
            builder._UNSEEN.clear()
            builder.FINE_FIT_REACH = reach if held else 10.0
            try:
                avatar = builder.build(portrait(name), template=template)
            finally:
                builder.FINE_FIT_REACH = reach
                builder._UNSEEN.clear()
            moved = np.linalg.norm(avatar.posed_skin - avatar.coarse_skin, axis=1)
            far = builder._unseen_by_landmarks(template)
            print(f"{name} {label}: collar moved up to {1e3 * moved[low].max():.1f} mm; the skin beyond "
                  f"{1e3 * reach:.0f} mm of the landmarks {1e3 * np.median(moved[far]):.1f} mm (median)", flush=True)
            tile = Image.fromarray(picture(avatar))
            ImageDraw.Draw(tile).text((6, 4), f"{name}, {label}", fill=(0, 0, 0))
            row += [np.asarray(tile), np.full((SIZE, 8, 3), 255, np.uint8)]
        rows += [np.concatenate(row[:-1], axis=1)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(args.path, optimize=True)


if __name__ == "__main__":
    main()
