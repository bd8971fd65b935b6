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
    from make_folds_figure import caption, side_by_side

    def prepare(image, name, label, folder):
        d = json.loads((folder / "closed_lids.json").read_text())[name]
        return caption(image, f"{name}, {label}: closed lid {d['eyeBlinkLeft']:.0f} / {d['eyeBlinkRight']:.0f} "
                       "RGB levels from the skin around it")
    side_by_side(before, after, path, names, prepare)


if __name__ == "__main__":
    from make_folds_figure import main
    main(renders, compose, NAMES, __doc__)
