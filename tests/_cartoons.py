"""Cartoon faces drawn with PIL, with their eyes and mouth known by construction.

The cartoons of issue #14 that MediaPipe gets wrong are simple drawings: flat colours, round
dot eyes or big anime eyes, outlines.  These are made here, deterministically (a seeded
generator, no files committed), NOT by a 3-D renderer, so they are a different kind of image
from anything a renderer-trained network would see.  Their "hand annotation" is the drawing
itself: every eye and mouth is drawn from the numbers returned with it.

    python tests/_cartoons.py OUTDIR     # writes the PNGs and cartoons.json, to look at them

Conventions follow pyfacerig's landmarks: x right, y down, in continuous pixel coordinates
(pixel (i, j) covers [i, i+1) x [j, j+1)); the drawing is made 3x larger and downscaled, so its
edges are antialiased like a real drawing's.
"Right eye" is the SUBJECT's right eye, the one on the IMAGE-LEFT (iBUG points 36-41).
"""
from __future__ import annotations

import io
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

#: Eye styles, cycled over the cartoons.
EYE_STYLES = ("dot", "dot_highlight", "anime", "button", "almond", "tall_oval")
MOUTH_STYLES = ("smile", "open", "line")
FACE_SHAPES = ("circle", "oval", "wide", "egg")
SKINS = ((255, 220, 185), (241, 194, 125), (255, 232, 140), (198, 134, 96), (250, 205, 200), (140, 200, 120))
HAIRS = ((40, 30, 25), (120, 70, 30), (230, 190, 60), (60, 60, 160), (200, 60, 60), None)
BACKGROUNDS = ((235, 235, 245), (170, 210, 240), (250, 250, 250), (70, 90, 110), (215, 240, 200))
#: Skin shading: one flat colour; cel (a hard-edged shadow band); soft (smooth shading).
LOOKS = ("flat", "flat", "cel", "soft", "flat")
SUPERSAMPLE = 3


@dataclass
class Cartoon:
    """One drawn face and where its features are, in output-image pixels.

    eyes: ((x, y) centre of the subject's right eye (image left), (x, y) of the left eye).
    eye_corners: per eye ((x_outer_or_left, y), (x_right, y)): the drawn eye's horizontal
        extremes at its centre height (image-left point first).
    eye_size: (width, height) of one drawn eye.
    mouth_corners: ((x, y) image-left corner, (x, y) image-right corner).
    mouth_centre: (x, y).
    """

    name: str
    eye_style: str
    mouth_style: str
    look: str
    face_shape: str
    image_size: tuple
    eyes: tuple
    eye_corners: tuple
    eye_size: tuple
    mouth_corners: tuple
    mouth_centre: tuple

    @property
    def interocular(self) -> float:
        """Distance between the drawn eye centres: the normaliser of the cartoon errors.

        A dot eye has no corners, so the cartoons are normalised by the centre distance
        (about 0.7x a photo's outer-corner IOD, so the same pixel error reads larger here)."""
        return float(np.linalg.norm(np.subtract(self.eyes[1], self.eyes[0])))


def make_cartoons(count: int = 24, seed: int = 14) -> list[tuple[np.ndarray, Cartoon]]:
    """``count`` cartoons as ((H, W, 3) uint8 RGB, :class:`Cartoon`), the same for the same seed."""
    rng = np.random.default_rng(seed)
    return [_draw(index, rng) for index in range(count)]


def _draw(index: int, rng: np.random.Generator) -> tuple[np.ndarray, Cartoon]:
    s = SUPERSAMPLE
    width, height = (512, 512) if index % 3 else (int(rng.integers(420, 640)), int(rng.integers(420, 640)))
    eye_style = EYE_STYLES[index % len(EYE_STYLES)]
    mouth_style = MOUTH_STYLES[index % len(MOUTH_STYLES)]
    face_shape = FACE_SHAPES[(index // 2) % len(FACE_SHAPES)]
    skin = SKINS[index % len(SKINS)]
    hair = HAIRS[(index * 5) % len(HAIRS)]
    background = BACKGROUNDS[(index * 3) % len(BACKGROUNDS)]
    outline = index % 4 != 3
    look = LOOKS[index % len(LOOKS)]
    jpeg = index % 4 == 1

    # Face: an ellipse (egg: wider at the top) of half-axes a, b.
    short = min(width, height)
    a = short * rng.uniform(0.22, 0.36)
    b = a * {"circle": 1.0, "oval": 1.25, "wide": 0.88, "egg": 1.15}[face_shape]
    cx = width / 2 + rng.uniform(-0.35, 0.35) * (width / 2 - a)
    cy = height / 2 + rng.uniform(-0.25, 0.25) * (height / 2 - b) + 0.05 * b

    canvas = Image.new("RGB", (width * s, height * s), background)
    draw = ImageDraw.Draw(canvas)
    S = lambda *v: [float(x) * s for x in v]        # noqa: E731 -- output pixels -> canvas pixels
    line = max(2, int(round(a * 0.025 * s)))
    ink = (25, 20, 20)
    if hair is not None:   # hair: a cap behind the face's upper half
        draw.ellipse(S(cx - 1.12 * a, cy - 1.18 * b, cx + 1.12 * a, cy + 0.35 * b), fill=hair)
    # Face outline: an ellipse, or for "egg" an ellipse whose lower half narrows to the chin.
    t = np.linspace(0.0, 2.0 * np.pi, 180, endpoint=False)
    narrowing = 0.28 * np.clip(np.sin(t), 0.0, None) if face_shape == "egg" else 0.0
    outline_xy = np.column_stack([cx + a * np.cos(t) * (1.0 - narrowing), cy + b * np.sin(t)])
    draw.polygon([tuple(S(*p)) for p in outline_xy], fill=skin)
    if look != "flat":
        canvas = _shade(canvas, skin, cx * s, cy * s, a * s, b * s, look)
        draw = ImageDraw.Draw(canvas)
    if outline:
        draw.line([tuple(S(*p)) for p in np.vstack([outline_xy, outline_xy[:1]])], fill=ink, width=line,
                  joint="curve")
    if hair is not None:   # a fringe over the forehead
        draw.chord(S(cx - 0.98 * a, cy - 1.02 * b, cx + 0.98 * a, cy - 0.15 * b), 180, 360, fill=hair)

    # Eyes.
    spacing = a * rng.uniform(0.34, 0.46)
    eye_y = cy + b * rng.uniform(-0.12, 0.08)
    size = {"dot": (0.16, 0.16), "dot_highlight": (0.2, 0.2), "anime": (0.4, 0.54), "button": (0.26, 0.26),
            "almond": (0.34, 0.17), "tall_oval": (0.14, 0.26)}[eye_style]
    scale = rng.uniform(0.85, 1.2)
    ew, eh = a * size[0] * scale, a * size[1] * scale
    eyes, corners = [], []
    for side in (-1, 1):
        ex = cx + side * spacing
        _draw_eye(draw, S, eye_style, ex, eye_y, ew, eh, ink, line, side, rng)
        eyes.append((ex, eye_y))
        corners.append(((ex - ew / 2, eye_y), (ex + ew / 2, eye_y)))
        # brows, not every cartoon has them
        if index % 5 != 4:
            by = eye_y - eh / 2 - a * 0.12
            draw.arc(S(ex - ew * 0.7, by - a * 0.05, ex + ew * 0.7, by + a * 0.12), 200, 340, fill=ink,
                     width=max(2, line))

    # Nose: a small arc or dot.
    ny = (eye_y + cy + 0.5 * b) / 2 + 0.05 * b
    if index % 2:
        draw.arc(S(cx - a * 0.06, ny - a * 0.05, cx + a * 0.06, ny + a * 0.05), 20, 160, fill=ink, width=line)
    else:
        draw.ellipse(S(cx - a * 0.025, ny - a * 0.02, cx + a * 0.025, ny + a * 0.02), fill=(180, 110, 90))

    # Mouth.
    mw = a * rng.uniform(0.35, 0.6)
    my = cy + b * rng.uniform(0.45, 0.6)
    if mouth_style == "smile":
        depth = a * 0.12
        draw.arc(S(cx - mw / 2, my - depth, cx + mw / 2, my + depth), 0, 180, fill=ink, width=line)
        mouth_corners = ((cx - mw / 2, my), (cx + mw / 2, my))
        centre = (cx, my + depth / 2)
    elif mouth_style == "open":
        depth = a * 0.16
        draw.chord(S(cx - mw / 2, my - depth, cx + mw / 2, my + depth), 0, 180, fill=(120, 30, 40), outline=ink,
                   width=line)
        draw.chord(S(cx - mw / 4, my + depth * 0.35, cx + mw / 4, my + depth * 1.0), 180, 360, fill=(220, 90, 100))
        mouth_corners = ((cx - mw / 2, my), (cx + mw / 2, my))
        centre = (cx, my + depth / 2)
    else:
        draw.line(S(cx - mw / 2, my, cx + mw / 2, my), fill=ink, width=line)
        mouth_corners = ((cx - mw / 2, my), (cx + mw / 2, my))
        centre = (cx, my)

    small = canvas.resize((width, height), Image.LANCZOS)
    if jpeg:   # cartoons found online are mostly JPEGs: block noise on the flat colours
        buffer = io.BytesIO()
        small.save(buffer, format="JPEG", quality=80)
        small = Image.open(buffer).convert("RGB")
    image = np.asarray(small, dtype=np.uint8)
    r2 = lambda p: tuple(round(float(v), 3) for v in p)   # noqa: E731
    cartoon = Cartoon(
        name=f"cartoon{index:02d}_{eye_style}_{look}" + ("_jpeg" if jpeg else ""), eye_style=eye_style,
        mouth_style=mouth_style, look=look,
        face_shape=face_shape, image_size=(width, height), eyes=tuple(r2(e) for e in eyes),
        eye_corners=tuple((r2(c0), r2(c1)) for c0, c1 in corners), eye_size=r2((ew, eh)),
        mouth_corners=tuple(r2(c) for c in mouth_corners), mouth_centre=r2(centre))
    return np.ascontiguousarray(image), cartoon


def _shade(canvas: Image.Image, skin, cx, cy, a, b, look) -> Image.Image:
    """Shade the skin (only pixels of exactly the skin colour) of a canvas: a hard shadow band on
    the image-right third (cel) or a smooth light-to-dark falloff from the upper left (soft)."""
    rgb = np.asarray(canvas, dtype=np.float64).copy()
    is_skin = np.all(rgb == np.asarray(skin, dtype=np.float64), axis=2)
    ys, xs = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]]
    if look == "cel":
        factor = np.where(xs > cx + 0.45 * a + 0.15 * (ys - cy), 0.82, 1.0)
    else:
        distance = np.hypot((xs - (cx - 0.4 * a)) / a, (ys - (cy - 0.5 * b)) / b)
        factor = 1.08 - 0.22 * np.clip(distance / 1.8, 0.0, 1.0)
    rgb[is_skin] = np.clip(rgb[is_skin] * factor[is_skin][:, None], 0, 255)
    return Image.fromarray(np.round(rgb).astype(np.uint8))


def _draw_eye(draw, S, style, ex, ey, ew, eh, ink, line, side, rng):
    box = lambda w, h, dx=0.0, dy=0.0: S(ex + dx - w / 2, ey + dy - h / 2, ex + dx + w / 2, ey + dy + h / 2)  # noqa
    iris_colour = tuple(int(c) for c in rng.integers(30, 200, 3))
    if style == "dot":
        draw.ellipse(box(ew, eh), fill=ink)
    elif style == "dot_highlight":
        draw.ellipse(box(ew, eh), fill=ink)
        draw.ellipse(box(ew * 0.3, eh * 0.3, -side * ew * 0.15, -eh * 0.18), fill=(255, 255, 255))
    elif style == "anime":
        draw.ellipse(box(ew, eh), fill=(255, 255, 255), outline=ink, width=line)
        draw.ellipse(box(ew * 0.78, eh * 0.82, 0, eh * 0.06), fill=iris_colour)
        draw.ellipse(box(ew * 0.4, eh * 0.42, 0, eh * 0.08), fill=ink)
        draw.ellipse(box(ew * 0.25, eh * 0.2, -ew * 0.14, -eh * 0.15), fill=(255, 255, 255))
        draw.arc(box(ew * 1.1, eh * 1.05), 195, 345, fill=ink, width=line * 2)   # lash line
    elif style == "button":
        draw.ellipse(box(ew, eh), fill=(255, 255, 255), outline=ink, width=line)
        draw.ellipse(box(ew * 0.45, eh * 0.45), fill=ink)
    elif style == "almond":
        # Two arcs meeting at the corners; white inside, a round iris clipped by the lids.
        upper = [(ex + ew / 2 * np.cos(t), ey - eh / 2 * np.sin(t)) for t in np.linspace(0, np.pi, 24)]
        lower = [(ex - ew / 2 * np.cos(t), ey + eh / 2 * 0.8 * np.sin(t)) for t in np.linspace(0, np.pi, 24)]
        polygon = [tuple(S(*p)) for p in upper + lower]
        draw.polygon(polygon, fill=(255, 255, 255), outline=ink)
        draw.ellipse(box(eh * 0.95, eh * 0.95), fill=iris_colour)
        draw.ellipse(box(eh * 0.45, eh * 0.45), fill=ink)
        draw.line([tuple(S(*p)) for p in upper], fill=ink, width=line * 2)
        draw.line([tuple(S(*p)) for p in lower], fill=ink, width=line)
    elif style == "tall_oval":
        draw.ellipse(box(ew, eh), fill=ink)
        draw.ellipse(box(ew * 0.45, eh * 0.3, 0, -eh * 0.2), fill=(255, 255, 255))
    else:
        raise ValueError(style)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for image, cartoon in make_cartoons():
        Image.fromarray(image).save(out / f"{cartoon.name}.png")
        records.append(asdict(cartoon))
    (out / "cartoons.json").write_text(json.dumps(records, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "cartoons"))
