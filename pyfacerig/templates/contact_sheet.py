"""Contact sheet of the 52 ARKit shapes on a built head (docs/contact_sheet.png).

Each tile shows one shape at weight 1 on the avatar built from the astronaut portrait: a
front view with its baked texture, and a 3/4 clay view that shows the geometry without the
texture's help, from the side a Left/Right shape acts on.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import render

VIEW = (176, 208)             # width, height of one view
SUPERSAMPLE = 2
COLUMNS = 6
LABEL_HEIGHT = 24
SHOWN_WITH = {"tongueOut": {"jawOpen": 0.5}, "mouthClose": {"jawOpen": 1.0}}


def _font(size: int):
    import matplotlib
    from PIL import ImageFont
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    return ImageFont.truetype(str(path), size)


def _view(avatar, weights, texture, yaw, clay) -> np.ndarray:
    from PIL import Image
    w, h = VIEW
    meshes = render.template_meshes(avatar, weights, None if clay else texture)
    if clay:
        meshes[0] = render.Mesh(meshes[0].vertices, meshes[0].faces, color=(196, 190, 184))
    cam = render.face_camera(avatar, yaw_deg=yaw, fov_deg=16.5)
    img = render.render(meshes, cam, w * SUPERSAMPLE, h * SUPERSAMPLE, background=(58, 60, 66),
                        ambient=0.3)
    return np.asarray(Image.fromarray(img).resize((w, h), Image.LANCZOS))


def make(template, avatar, path: str | Path) -> Path:
    """Draw the sheet of ``avatar`` (a :class:`pyfacerig.Avatar` built on ``template``) to ``path``."""
    import io
    from PIL import Image, ImageDraw
    texture = np.asarray(Image.open(io.BytesIO(avatar.texture)).convert("RGB"))
    entries = [("neutral", {})] + [(n, {n: 1.0, **SHOWN_WITH.get(n, {})}) for n in template.shape_names]
    tile_w, tile_h = 2 * VIEW[0], VIEW[1] + LABEL_HEIGHT
    rows = -(-len(entries) // COLUMNS)
    title_h = 40
    sheet = Image.new("RGB", (COLUMNS * tile_w, rows * tile_h + title_h), (40, 42, 46))
    draw = ImageDraw.Draw(sheet)
    draw.text((10, 8), "pyfacerig: the 52 ARKit shapes at weight 1 on the head built from the astronaut "
              "(front: baked texture; 3/4: clay)", fill=(235, 235, 235), font=_font(20))
    font = _font(15)
    for k, (name, weights) in enumerate(entries):
        x0 = (k % COLUMNS) * tile_w
        y0 = title_h + (k // COLUMNS) * tile_h
        front = _view(avatar, weights, texture, 0.0, clay=False)
        # the 3/4 view looks at the side a one-sided shape acts on (the subject's left is +x)
        side = _view(avatar, weights, texture, 35.0 if name.endswith("Left") else -35.0, clay=True)
        sheet.paste(Image.fromarray(np.hstack([front, side])), (x0, y0 + LABEL_HEIGHT))
        extra = SHOWN_WITH.get(name)
        label = name + ("" if not extra else "  (+ " + ", ".join(f"{a} {b:g}" for a, b in extra.items()) + ")")
        draw.text((x0 + 6, y0 + 4), f"{k}. {label}" if k else label, fill=(250, 250, 250), font=font)
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    sheet.save(tmp, optimize=True)
    tmp.replace(path)
    return path
