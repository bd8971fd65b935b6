"""Contact sheet of the template's 52 ARKit shapes (docs/contact_sheet.png).

Each tile shows one shape at weight 1: front view textured with the astronaut
portrait (projected through its MediaPipe landmarks), and a 3/4 clay view that
shows the geometry without the texture's help, from the side a Left/Right shape acts on.
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


def _view(template, weights, texture, yaw, clay) -> np.ndarray:
    from PIL import Image
    w, h = VIEW
    meshes = render.template_meshes(template, weights, None if clay else texture)
    if clay:
        meshes[0] = render.Mesh(meshes[0].vertices, meshes[0].faces, color=(196, 190, 184))
    cam = render.face_camera(template, yaw_deg=yaw, fov_deg=16.5)
    img = render.render(meshes, cam, w * SUPERSAMPLE, h * SUPERSAMPLE, background=(58, 60, 66),
                        ambient=0.3)
    return np.asarray(Image.fromarray(img).resize((w, h), Image.LANCZOS))


def make(template, texture: np.ndarray, path: str | Path) -> Path:
    from PIL import Image, ImageDraw
    entries = [("neutral", {})] + [(n, {n: 1.0, **SHOWN_WITH.get(n, {})}) for n in template.shape_names]
    tile_w, tile_h = 2 * VIEW[0], VIEW[1] + LABEL_HEIGHT
    rows = -(-len(entries) // COLUMNS)
    title_h = 40
    sheet = Image.new("RGB", (COLUMNS * tile_w, rows * tile_h + title_h), (40, 42, 46))
    draw = ImageDraw.Draw(sheet)
    draw.text((10, 8), "pyfacerig default template: 52 ARKit shapes at weight 1 "
              "(front: astronaut texture; 3/4: clay)", fill=(235, 235, 235), font=_font(20))
    font = _font(15)
    for k, (name, weights) in enumerate(entries):
        x0 = (k % COLUMNS) * tile_w
        y0 = title_h + (k // COLUMNS) * tile_h
        front = _view(template, weights, texture, 0.0, clay=False)
        # the 3/4 view looks at the side a one-sided shape acts on (the subject's left is +x)
        side = _view(template, weights, texture, 35.0 if name.endswith("Left") else -35.0, clay=True)
        sheet.paste(Image.fromarray(np.hstack([front, side])), (x0, y0 + LABEL_HEIGHT))
        extra = SHOWN_WITH.get(name)
        label = name + ("" if not extra else "  (+ " + ", ".join(f"{a} {b:g}" for a, b in extra.items()) + ")")
        draw.text((x0 + 6, y0 + 4), f"{k}. {label}" if k else label, fill=(250, 250, 250), font=font)
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    sheet.save(tmp, optimize=True)
    tmp.replace(path)
    return path


def make_uv_sheet(template, texture: np.ndarray, path: str | Path, size: int = 768) -> Path:
    """The skin's UV layout: the projected portrait texture under the coarse face-mesh edges."""
    from PIL import Image, ImageDraw
    from .topology import coarse_triangles
    skin = template.parts["skin"]
    base = Image.fromarray(texture).resize((size, size), Image.LANCZOS).convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    uv = np.asarray(skin.uvs, float) * size
    edges = {tuple(sorted(e)) for f in coarse_triangles().tolist()
             for e in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))}
    for a, b in sorted(edges):
        draw.line([tuple(uv[a]), tuple(uv[b])], fill=(255, 255, 255, 110), width=1)
    for lm in range(468):
        x, y = uv[lm]
        draw.ellipse([x - 1.5, y - 1.5, x + 1.5, y + 1.5], fill=(255, 60, 40, 230))
    img = Image.alpha_composite(base, overlay).convert("RGB")
    path = Path(path)
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp, optimize=True)
    tmp.replace(path)
    return path
