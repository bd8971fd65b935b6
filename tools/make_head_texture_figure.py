"""The head's texture beyond the face: hair cap and the face's edge (docs/head_texture.png,
docs/pipeline.md "Texture").

    python tools/make_head_texture_figure.py renders OUT_DIR [--names ...]
    python tools/make_head_texture_figure.py compose BEFORE_DIR AFTER_DIR docs/head_texture.png

``renders`` builds each portrait with the pyfacerig on the path and renders its rest pose with
its own texture (the project's renderer, lit) from the front, the 3/4 view and the side, at
70 cm; it prints the hair colour the cap took and writes the pictures and the colours to
OUT_DIR.  Run it once from an older checkout (PYTHONPATH=that/tree) for the "before" column.
``compose`` puts before and after side by side, one row per portrait.
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
YAWS = (0.0, 45.0, 90.0)
SIZE = 220


def renders(out: Path, names) -> None:
    from pyfacerig import render
    from pyfacerig.build import build
    from pyfacerig.templates import load_default
    from make_neutral_figure import portrait

    out.mkdir(parents=True, exist_ok=True)
    template = load_default()
    scalp = np.asarray(template.regions["scalp"], bool)
    figures = {}
    for name in names:
        avatar = build(portrait(name), template=template)
        texture = np.asarray(Image.open(io.BytesIO(avatar.texture)).convert("RGB"))
        views = [render.render(render.template_meshes(avatar, None, texture),
                               render.face_camera(avatar, yaw_deg=yaw, distance=0.7), SIZE, SIZE) for yaw in YAWS]
        Image.fromarray(np.concatenate(views, axis=1)).save(out / f"{name}.png")
        # The cap's colour: the texels of the crown, far inside the scalp region, are pure hair.
        skin = template.parts["skin"]
        crown = np.asarray(skin.uvs)[np.isin(np.asarray(skin.uv_welded_ids), np.flatnonzero(scalp))]
        top = crown[np.argsort(crown[:, 1])[len(crown) // 2]]
        size = texture.shape[0]
        figures[name] = texture[int(top[1] * (size - 1)), int(top[0] * (size - 1))].tolist()
        print(name, "hair cap", figures[name], flush=True)
    (out / "hair.json").write_text(json.dumps(figures, indent=1) + "\n")


def compose(before: Path, after: Path, path: Path, names) -> None:
    """One row per portrait: before | after, each front, 3/4 and side, captioned with the cap's colour."""
    from make_folds_figure import caption, side_by_side

    def prepare(image, name, label, folder):
        colour = json.loads((folder / "hair.json").read_text())[name]
        return caption(image, f"{name}, {label}: hair cap {tuple(colour)}", swatch=colour)
    side_by_side(before, after, path, names, prepare)


if __name__ == "__main__":
    from make_folds_figure import main
    main(renders, compose, NAMES, __doc__)
