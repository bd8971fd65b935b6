"""The neutral rest pose, measured and pictured (issue #11): docs/neutral_rest_pose.png.

    python tools/make_neutral_figure.py renders OUT_DIR [--names ...]
    python tools/make_neutral_figure.py compose BEFORE_DIR AFTER_DIR docs/neutral_rest_pose.png

``renders`` builds each portrait with the pyfacerig on the path, renders its rest pose from the
front with its own texture (the project's renderer, 512 px, 55 cm), reads it back with
MediaPipe and prints the lip gap and the mouth corners against the template's own rest pose;
it saves the renders and a JSON of the figures in OUT_DIR.  Run it once from an older checkout
(PYTHONPATH=that/tree) to get the "before" column.  ``compose`` puts photo, before and after
side by side, one row per portrait.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

SMILING = ("astronaut", "obama", "obama2")
NEUTRAL = ("grace_hopper", "biden")


def portrait(name: str) -> np.ndarray:
    import matplotlib
    from skimage import data
    from _heldout import ensure
    from pyfacerig.image_io import load_image
    if name == "astronaut":
        return np.ascontiguousarray(data.astronaut())
    if name == "grace_hopper":
        return load_image(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    return load_image(ensure()[name])


def renders(out_dir: Path, names) -> None:
    import pyfacerig
    from pyfacerig.landmarks import detect_landmarks
    from pyfacerig.templates import load_default
    from _mouth import corners, front_render, lip_gap
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = detect_landmarks(front_render(load_default())).points[:, :2]
    figures = {}
    for name in names:
        avatar = pyfacerig.build(portrait(name))
        image = front_render(avatar)
        Image.fromarray(image).save(out_dir / f"{name}.png")
        points = detect_landmarks(image).points[:, :2]
        corner = corners(points, reference)
        weights = getattr(avatar, "expression_weights", None) or {}
        figures[name] = {"lip_gap_pct": 100 * lip_gap(points),
                         "corner_lift_pct": (100 * corner["lift"]).round(2).tolist(),
                         "corner_distance_pct": (100 * corner["distance"]).round(2).tolist(),
                         "expression_weights": {k: v for k, v in weights.items() if v >= 0.05}}
        print(f"{name:13s} lip gap {figures[name]['lip_gap_pct']:5.1f} % of mouth width; corners: lift "
              + " / ".join(f"{v:+.2f}" for v in figures[name]["corner_lift_pct"]) + ", distance "
              + " / ".join(f"{v:.2f}" for v in figures[name]["corner_distance_pct"]) + " % of face height")
    (out_dir / "figures.json").write_text(json.dumps(figures, indent=1, sort_keys=True))


def compose(before: Path, after: Path, path: Path, names=SMILING) -> None:
    from pyfacerig.landmarks import detect_landmarks
    tile = 240
    sheet = Image.new("RGB", (3 * tile, len(names) * tile), (255, 255, 255))
    for row, name in enumerate(names):
        photo = portrait(name)
        points = detect_landmarks(photo).points[:, :2]
        centre = points[:468].mean(axis=0)
        half = 0.75 * np.ptp(points[:468, 1])
        box = tuple(int(round(v)) for v in (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half))
        cells = [Image.fromarray(photo).crop(box),
                 Image.open(before / f"{name}.png").crop((56, 40, 456, 440)),
                 Image.open(after / f"{name}.png").crop((56, 40, 456, 440))]
        for column, cell in enumerate(cells):
            sheet.paste(cell.convert("RGB").resize((tile, tile), Image.LANCZOS), (column * tile, row * tile))
    sheet.save(path, optimize=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("renders")
    r.add_argument("out_dir", type=Path)
    r.add_argument("--names", nargs="+", default=list(SMILING + NEUTRAL))
    c = sub.add_parser("compose")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    c.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    if args.command == "renders":
        renders(args.out_dir, args.names)
    else:
        compose(args.before, args.after, args.path)


if __name__ == "__main__":
    main()
