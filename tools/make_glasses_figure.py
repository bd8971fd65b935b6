"""Glasses painted out of the photo before it is baked (docs/glasses.png, docs/pipeline.md
"Texture").

    python tools/make_glasses_figure.py docs/glasses.png

Row 1: Grace Hopper's photo around the eyes, the frame found (green outline), the photo with the
frame painted out.  Row 2: her built head, each eye blinked at weight 1 on its own, with the
photo baked as it is (as before) and with the frame painted out, MediaPipe's eye contour drawn
and the blinked eye's aspect ratio against the open eye's in the caption (one front view; the
tests take the median of nine).  Row 3: frames drawn onto two other portraits
(tests/test_glasses.py) and painted out.
"""
from __future__ import annotations

import importlib
import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tools"))

WIDTH = 300


def _eye_box(points: np.ndarray, image_shape, wide: float = 1.25, tall: float = 0.55):
    centre = points[[33, 263]].mean(axis=0)
    span = np.linalg.norm(points[263] - points[33])
    box = np.array([centre[0] - wide * span, centre[1] - tall * span, centre[0] + wide * span, centre[1] + tall * span])
    return tuple(int(v) for v in np.clip(box, 0, [image_shape[1], image_shape[0]] * 2))


def _panel(image: np.ndarray, box, text: str) -> Image.Image:
    from make_folds_figure import caption
    picture = Image.fromarray(image).crop(box)
    picture = picture.resize((WIDTH, int(WIDTH * picture.height / picture.width)), Image.LANCZOS)
    framed = Image.new("RGB", (picture.width, picture.height + 14), (255, 255, 255))
    framed.paste(picture, (0, 14))
    return caption(framed, text)


def _blink_panels(photo: np.ndarray, label: str) -> list:
    from pyfacerig import render
    from pyfacerig.landmarks import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, detect_landmarks
    from test_build_semantics import ear
    avatar = importlib.import_module("pyfacerig.build").build(photo)
    texture = np.asarray(Image.open(io.BytesIO(avatar.texture)).convert("RGB"))
    camera = render.face_camera(avatar, distance=0.55)
    neutral = render.render(render.template_meshes(avatar, None, texture), camera, 512, 512)
    open_points = detect_landmarks(neutral).points[:, :2]
    panels = []
    for shape, side in (("eyeBlinkRight", "right"), ("eyeBlinkLeft", "left")):
        image = render.render(render.template_meshes(avatar, {shape: 1.0}, texture), camera, 512, 512)
        points = detect_landmarks(image).points[:, :2]
        ratio = ear(points, side) / ear(open_points, side)
        drawn = Image.fromarray(image)
        draw = ImageDraw.Draw(drawn)
        for contour in (RIGHT_EYE_CONTOUR, LEFT_EYE_CONTOUR):
            draw.line([tuple(points[i]) for i in contour + contour[:1]], fill=(0, 255, 0), width=1)
        panels.append(_panel(np.asarray(drawn), _eye_box(open_points, image.shape), f"{label}: {shape} reads {ratio:.2f}"))
    return panels


def main(path: Path) -> None:
    import cv2
    from pyfacerig.glasses import GlassesReading, remove_glasses
    from pyfacerig.image_io import load_image
    from pyfacerig.landmarks import detect_landmarks
    from test_glasses import draw_glasses
    from _heldout import ensure

    grace = load_image(ROOT / "pyfacerig" / "examples" / "grace_hopper.jpg")
    points = detect_landmarks(grace).points[:, :2]
    painted, reading = remove_glasses(grace, points)
    outline = grace.copy()
    edge = reading.mask ^ (cv2.erode(reading.mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0)
    outline[edge] = (0, 255, 0)
    box = _eye_box(points, grace.shape)
    rows = [[_panel(grace, box, "Grace Hopper's photo"),
             _panel(outline, box, f"frame found (curves {min(reading.loop_contrast.values()):.2f}, "
                                  f"bridge {reading.bridge_contrast:.2f})"),
             _panel(painted, box, "frame painted out")]]

    build_module = importlib.import_module("pyfacerig.build")
    kept = build_module.remove_glasses
    # The photo baked as it is: the reading says no glasses.
    build_module.remove_glasses = lambda image, landmarks, frame=None: (np.asarray(image), GlassesReading(
        worn=False, loop_contrast={"left": 0.0, "right": 0.0}, bridge_contrast=0.0,
        mask=np.zeros(np.asarray(image).shape[:2], bool), box=(0, 0, 0, 0)))
    try:
        before = _blink_panels(grace, "before")
    finally:
        build_module.remove_glasses = kept
    after = _blink_panels(grace, "now")
    rows.append([before[0], after[0], after[1]])

    heldout = ensure()
    drawn_row = []
    for name, style in (("obama2", "acetate"), ("biden", "browline")):
        photo = load_image(heldout[name])
        with_frames, _ = draw_glasses(photo, detect_landmarks(photo).points[:, :2], style)
        found = detect_landmarks(with_frames).points[:, :2]
        cleaned, _ = remove_glasses(with_frames, found)
        frame_box = _eye_box(found, photo.shape)
        if name == "obama2":
            drawn_row += [_panel(with_frames, frame_box, f"{name}, {style} frame drawn"),
                          _panel(cleaned, frame_box, "painted out")]
        else:
            drawn_row += [_panel(cleaned, frame_box, f"{name}, {style} frame drawn, painted out")]
    rows.append(drawn_row)

    height = sum(max(p.height for p in row) for row in rows)
    sheet = Image.new("RGB", (3 * WIDTH, height), (255, 255, 255))
    y = 0
    for row in rows:
        for k, panel in enumerate(row):
            sheet.paste(panel, (k * WIDTH, y))
        y += max(p.height for p in row)
    sheet.save(path, optimize=True)
    print(f"wrote {path} ({sheet.width}x{sheet.height})")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
