"""The fine fit's folds, pictured and read back (docs/fine_fit_folds.png, docs/pipeline.md "Fine fit").

    python tools/make_folds_figure.py renders OUT_DIR [--names ...]
    python tools/make_folds_figure.py compose BEFORE_DIR AFTER_DIR docs/fine_fit_folds.png

``renders`` builds each portrait with the pyfacerig on the path and renders, in clay (the
template's skin colour, no photo, so only the geometry shows), the eyes and nose of its rest
pose and of both blinks at weight 1, from the front at 30 cm; it also reads the textured blinks
back with MediaPipe (each eye's aspect ratio at eyeBlink 1 over its neutral one, as
tests/test_build_semantics.py does) and writes both to OUT_DIR.  Run it once from an older
checkout (PYTHONPATH=that/tree) for the "before" rows.  ``compose`` puts before and after side by
side, one row per portrait.
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
sys.path.insert(0, str(ROOT / "tools"))

NAMES = ("astronaut", "obama", "biden")


def renders(out: Path, names) -> None:
    from pyfacerig import render
    from pyfacerig.build import build
    from pyfacerig.templates import load_default
    from make_neutral_figure import portrait
    from test_build_semantics import ear, read_back

    out.mkdir(parents=True, exist_ok=True)
    template = load_default()
    camera = render.face_camera(template, distance=0.3)
    figures = {}
    for name in names:
        avatar = build(portrait(name), template=template)
        rows = [render.render(render.template_meshes(avatar, weights, None), camera, 768, 768)[20:330, 40:740]
                for weights in (None, {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})]
        Image.fromarray(np.concatenate(rows, axis=0)).save(out / f"{name}.png")
        seen = read_back(avatar)
        figures[name] = {side: round(ear(seen["eyeBlink" + side.title()], side) / ear(seen["neutral"], side), 3)
                         for side in ("left", "right")}
        print(name, figures[name], flush=True)
    (out / "blinks.json").write_text(json.dumps(figures, indent=1) + "\n")


def caption(image, text: str, swatch=None):
    """``image`` with ``text`` on a white bar across its top (and a patch of the RGB ``swatch``
    at the bar's right end, if given)."""
    from PIL import ImageDraw
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, image.width, 13), fill=(255, 255, 255))
    if swatch is not None:
        draw.rectangle((image.width - 40, 0, image.width, 13), fill=tuple(int(v) for v in swatch))
    draw.text((4, 1), text, fill=(0, 0, 0))
    return image


def side_by_side(before: Path, after: Path, path: Path, names, prepare) -> None:
    """One row per portrait: its picture in ``before`` | in ``after``; ``prepare(image, name,
    label, folder)`` returns each picture captioned (label "before" or "after")."""
    rows = []
    for name in names:
        row = []
        for label, folder in (("before", before), ("after", after)):
            image = prepare(Image.open(folder / f"{name}.png").convert("RGB"), name, label, folder)
            row += [np.asarray(image), np.full((image.height, 8, 3), 255, np.uint8)]
        rows += [np.concatenate(row[:-1], axis=1), np.full((8, row[0].shape[1] * 2 + 8, 3), 255, np.uint8)]
    Image.fromarray(np.concatenate(rows[:-1], axis=0)).save(path, optimize=True)


def compose(before: Path, after: Path, path: Path, names) -> None:
    """One row per portrait: before | after, each its rest pose over its blinks."""
    from PIL import ImageDraw

    def prepare(image, name, label, folder):
        image = image.resize((image.width // 2, image.height // 2), Image.LANCZOS)
        ImageDraw.Draw(image).text((6, 4), f"{name}, {label}", fill=(0, 0, 0))
        return image
    side_by_side(before, after, path, names, prepare)


def main(renders=renders, compose=compose, names=NAMES, description=__doc__) -> None:
    """The command line both figure tools share: ``renders OUT_DIR`` / ``compose BEFORE AFTER PATH``."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("renders")
    r.add_argument("out", type=Path)
    r.add_argument("--names", nargs="+", default=list(names))
    c = sub.add_parser("compose")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    c.add_argument("path", type=Path)
    c.add_argument("--names", nargs="+", default=list(names))
    args = parser.parse_args()
    if args.command == "renders":
        renders(args.out, args.names)
    else:
        compose(args.before, args.after, args.path, args.names)


if __name__ == "__main__":
    main()
