"""Closed lids as the texture paints them (docs/closed_lid_texture.png, docs/pipeline.md "Texture").

    python tools/make_closed_lid_figure.py renders OUT_DIR [--names ...]
    python tools/make_closed_lid_figure.py compose BEFORE_DIR AFTER_DIR docs/closed_lid_texture.png

``renders`` builds each portrait with the pyfacerig on the path and renders, from the front at
55 cm with its own texture, its eyes at eyeBlinkLeft 1 and at eyeBlinkRight 1; it also measures
each closed lid's mean RGB distance to the skin around it (tests/test_build_semantics.py,
``closed_lid_distances``) and writes both to OUT_DIR.  Run it once from an older checkout
(PYTHONPATH=that/tree) for the "before" rows.  ``compose`` puts before and after side by side,
one row per portrait, each with its two distances.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools"))

NAMES = ("astronaut", "grace_hopper", "obama", "obama2", "obama3", "biden")
CROP = (110, 90, 402, 230)           # left, top, right, bottom of the 512 x 512 render: the eyes


def renders(out: Path, names) -> None:
    from pyfacerig import render
    from pyfacerig.build import build
    from pyfacerig.templates import load_default
    from make_neutral_figure import portrait
    from test_build_semantics import closed_lid_distances

    out.mkdir(parents=True, exist_ok=True)
    template = load_default()
    figures = {}
    for name in names:
        avatar = build(portrait(name), template=template)
        texture = np.asarray(Image.open(io.BytesIO(avatar.texture)).convert("RGB"))
        camera = render.face_camera(avatar, distance=0.55)
        views = [render.render(render.template_meshes(avatar, {shape: 1.0}, texture), camera, 512, 512)
                 for shape in ("eyeBlinkLeft", "eyeBlinkRight")]
        left, top, right, bottom = CROP
        Image.fromarray(np.concatenate([v[top:bottom, left:right] for v in views], axis=1)).save(out / f"{name}.png")
        figures[name] = {shape: round(d, 1) for shape, d in closed_lid_distances(avatar).items()}
        print(name, figures[name], flush=True)
    (out / "closed_lids.json").write_text(json.dumps(figures, indent=1) + "\n")


def compose(before: Path, after: Path, path: Path, names) -> None:
    """One row per portrait: before | after, each both blinks with their lids' distances."""
    from PIL import ImageDraw
    rows = []
    for name in names:
        row = []
        for label, folder in (("before", before), ("after", after)):
            image = Image.open(folder / f"{name}.png").convert("RGB")
            d = json.loads((folder / "closed_lids.json").read_text())[name]
            draw = ImageDraw.Draw(image)
            draw.rectangle((0, 0, image.width, 13), fill=(255, 255, 255))
            draw.text((4, 1), f"{name}, {label}: closed lid {d['eyeBlinkLeft']:.0f} / {d['eyeBlinkRight']:.0f} "
                      "RGB levels from the skin around it", fill=(0, 0, 0))
            row += [np.asarray(image), np.full((image.height, 8, 3), 255, np.uint8)]
        rows += [np.concatenate(row[:-1], axis=1), np.full((8, row[0].shape[1] * 2 + 8, 3), 255, np.uint8)]
    Image.fromarray(np.concatenate(rows[:-1], axis=0)).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("renders")
    r.add_argument("out", type=Path)
    r.add_argument("--names", nargs="+", default=list(NAMES))
    c = sub.add_parser("compose")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    c.add_argument("path", type=Path)
    c.add_argument("--names", nargs="+", default=list(NAMES))
    args = parser.parse_args()
    if args.command == "renders":
        renders(args.out, args.names)
    else:
        compose(args.before, args.after, args.path, args.names)


if __name__ == "__main__":
    main()
