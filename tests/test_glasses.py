"""Glasses frames are found and painted out of the photo before it is baked (pyfacerig.glasses).

Positives: Grace Hopper's glasses (the one real pair we have), and frames drawn onto the five
other portraits in four styles.  Negatives: those five portraits and their mirror images, and
the drawn cartoons."""
from __future__ import annotations

import numpy as np
import pytest

from pyfacerig.errors import InvalidInputError
from pyfacerig.glasses import find_glasses, remove_glasses
from pyfacerig.landmarks import detect_landmarks

#: Drawn frames: (top rim colour, bottom rim colour, top thickness, bottom thickness), the
#: thicknesses in eye widths.
STYLES = {"acetate": ((25, 22, 20), (25, 22, 20), 0.12, 0.12),
          "metal": ((90, 85, 80), (90, 85, 80), 0.05, 0.05),
          "browline": ((20, 20, 20), (190, 160, 100), 0.14, 0.05),
          "red": ((170, 30, 40), (170, 30, 40), 0.08, 0.08)}
OTHERS = ("astronaut", "obama", "obama2", "obama3", "biden")


def draw_glasses(image: np.ndarray, points: np.ndarray, style: str):
    """``image`` with a pair of oval frames drawn around the eyes (antialiased, drawn 4x larger
    and reduced), and the mask of the frame's pixels."""
    import cv2
    top_colour, bottom_colour, top_thickness, bottom_thickness = STYLES[style]
    scale = 4
    big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    mask = np.zeros(big.shape[:2], np.uint8)
    along = points[263] - points[33]
    roll = float(np.degrees(np.arctan2(along[1], along[0])))
    along = along / np.linalg.norm(along)
    down = np.array([-along[1], along[0]])
    nasal = []
    for eye, outer, inner in (((33, 133, 159, 145), 33, 133), ((263, 362, 386, 374), 263, 362)):
        width = np.linalg.norm(points[outer] - points[inner])
        centre = points[list(eye)].mean(axis=0) + 0.2 * width * down
        axes = (int(0.95 * width * scale), int(0.72 * width * scale))
        at = tuple(int(v) for v in centre * scale)
        for (start, end), colour, thickness in (((180, 360), top_colour, top_thickness),
                                                ((0, 180), bottom_colour, bottom_thickness)):
            pixels = max(1, int(thickness * width * scale))
            cv2.ellipse(big, at, axes, roll, start, end, colour, pixels, cv2.LINE_AA)
            cv2.ellipse(mask, at, axes, roll, start, end, 1, pixels)
        nasal.append(centre + (0.95 if outer == 33 else -0.95) * width * along - 0.15 * width * down)
    ends = [tuple(int(v) for v in point * scale) for point in nasal]
    cv2.line(big, ends[0], ends[1], top_colour, max(1, int(top_thickness * width * scale)), cv2.LINE_AA)
    cv2.line(mask, ends[0], ends[1], 1, max(1, int(top_thickness * width * scale)))
    size = (image.shape[1], image.shape[0])
    return (cv2.resize(big, size, interpolation=cv2.INTER_AREA),
            cv2.resize(mask, size, interpolation=cv2.INTER_AREA) > 0)


@pytest.fixture(scope="module")
def photos(portraits, heldout_paths):
    from pyfacerig.image_io import load_image
    return {**portraits, **{name: load_image(path) for name, path in heldout_paths.items()}}


@pytest.fixture(scope="module")
def drawn(photos):
    """(name, style) -> (image with frames, frame mask, the reading of it)."""
    out = {}
    for name in OTHERS:
        points = detect_landmarks(photos[name]).points[:, :2]
        for style in STYLES:
            image, mask = draw_glasses(photos[name], points, style)
            out[name, style] = image, mask, find_glasses(image, detect_landmarks(image).points)
    return out


@pytest.mark.parametrize("name", OTHERS)
@pytest.mark.parametrize("mirrored", (False, True))
def test_faces_without_glasses_are_left_as_they_are(photos, name, mirrored):
    image = np.ascontiguousarray(photos[name][:, ::-1]) if mirrored else photos[name]
    painted, reading = remove_glasses(image, detect_landmarks(image).points)
    assert not reading.worn, reading.loop_contrast
    assert not reading.mask.any()
    assert painted is image or np.array_equal(painted, image)


@pytest.mark.parametrize("mirrored", (False, True))
def test_grace_hoppers_frame_is_painted_out(photos, mirrored):
    import cv2
    image = photos["grace_hopper"]
    image = np.ascontiguousarray(image[:, ::-1]) if mirrored else image
    points = detect_landmarks(image).points[:, :2]
    painted, reading = remove_glasses(image, points)
    assert reading.worn, (reading.loop_contrast, reading.bridge_contrast)
    # The frame's dark top rim: the near-black pixels in the band from 0.03 to 0.3 eye-to-eye
    # spans above the eyes' tops (above the lashes, below her cap), between the outer corners.
    span = np.linalg.norm(points[263] - points[33])
    left, right = sorted((points[33, 0], points[263, 0]))
    top = min(points[159, 1], points[386, 1])
    band = np.zeros(image.shape[:2], bool)
    band[int(top - 0.3 * span):int(top - 0.03 * span), int(left):int(right)] = True

    def dark(rgb):
        return (cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) < 60) & band
    assert dark(image).sum() > 150                       # the rim is there to find
    assert dark(painted).sum() < 0.1 * dark(image).sum()
    # The painting stays near the frame: no pixel more than 0.5 spans below the eyes changes.
    below = int(max(points[145, 1], points[374, 1]) + 0.5 * span)
    assert np.array_equal(painted[below:], image[below:])


def test_drawn_frames_are_found_and_painted_out(drawn, photos):
    import cv2
    missed = [key for key, (_, _, reading) in drawn.items() if not reading.worn]
    assert not missed
    for (name, style), (image, mask, reading) in drawn.items():
        assert (reading.mask & mask).sum() >= 0.95 * mask.sum(), (name, style)
        painted, _ = remove_glasses(image, detect_landmarks(image).points)
        # Where a frame is drawn over the brows, the brows go with it: measured off the brows.
        points = detect_landmarks(photos[name]).points[:, :2]
        brows = np.zeros(mask.shape, np.uint8)
        for brow in ((70, 63, 105, 66, 107, 55, 65, 52, 53, 46), (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)):
            cv2.fillPoly(brows, [np.round(points[list(brow)]).astype(np.int32)], 1)
        skin = mask & ~(cv2.dilate(brows, np.ones((5, 5), np.uint8)) > 0)
        original = photos[name][skin].astype(float)
        before = np.abs(image[skin] - original).mean()
        after = np.abs(painted[skin] - original).mean()
        assert after < 25 and after < 0.6 * before, (name, style, before, after)


@pytest.mark.parametrize("scale", (0.5, 3.0))
def test_the_reading_does_not_depend_on_the_photos_resolution(photos, scale):
    import cv2
    image = photos["grace_hopper"]
    points = detect_landmarks(image).points
    reading = find_glasses(image, points)
    resized = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    moved = points.copy()
    moved[:, :2] = (points[:, :2] + 0.5) * scale - 0.5
    other = find_glasses(resized, moved)
    assert other.worn
    back = cv2.resize(other.mask.astype(np.uint8), image.shape[1::-1], interpolation=cv2.INTER_AREA) > 0
    assert (back & reading.mask).sum() > 0.85 * max(back.sum(), reading.mask.sum())


def test_drawn_cartoons_wear_no_glasses():
    from pyfacerig.cartoon_landmarks import default_cartoon_detector
    from pyfacerig.errors import FaceDetectionError
    from _cartoons import make_cartoons
    detector, read = default_cartoon_detector(), 0
    for image, cartoon in make_cartoons():
        try:
            points = detect_landmarks(image, detector=detector).points
        except FaceDetectionError:
            continue
        read += 1
        assert not find_glasses(image, points).worn, cartoon.name
    assert read >= 20


def test_the_reading_is_deterministic(photos):
    image = photos["grace_hopper"]
    points = detect_landmarks(image).points
    first, second = remove_glasses(image, points), remove_glasses(image.copy(), points.copy())
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1].mask, second[1].mask)


def test_bad_input_is_refused(photos):
    image = photos["grace_hopper"]
    points = detect_landmarks(image).points
    with pytest.raises(InvalidInputError):
        find_glasses(image[..., 0], points)
    with pytest.raises(InvalidInputError):
        find_glasses(image.astype(np.float32), points)
    with pytest.raises(InvalidInputError):
        find_glasses(image, points[:68])
    broken = points.copy()
    broken[10, 0] = np.nan
    with pytest.raises(InvalidInputError):
        find_glasses(image, broken)
    with pytest.raises(InvalidInputError):
        find_glasses(image, np.zeros((478, 3)))


def test_a_face_at_the_border_or_off_the_image_reads_no_glasses(photos):
    image = photos["astronaut"]
    points = detect_landmarks(image).points.copy()
    shifted = points.copy()
    shifted[:, 0] += image.shape[1] - points[:, 0].min() - 20     # most of the face off the right edge
    assert not find_glasses(image, shifted).worn
    shifted[:, 0] += 10 * image.shape[1]                         # all of it
    reading = find_glasses(image, shifted)
    assert not reading.worn and not reading.mask.any()


def test_a_face_parsers_glasses_replace_the_geometric_reading(drawn, photos):
    # A parser's labels are painted out as they are.
    from pyfacerig.glasses import frame_from_labels
    from pyfacerig.networks import FACE_PARSING_CLASSES
    image, mask, reading = drawn["astronaut", "browline"]
    labels = np.where(mask, FACE_PARSING_CLASSES.index("eyeglasses"), FACE_PARSING_CLASSES.index("skin"))
    frame = frame_from_labels(labels.astype(np.uint8), image.shape[:2])
    painted, parsed = remove_glasses(image, detect_landmarks(image).points, frame)
    assert parsed.worn and parsed.mask[mask].all()
    original = photos["astronaut"][mask].astype(float)
    assert np.abs(painted[mask] - original).mean() < 0.4 * np.abs(image[mask] - original).mean()
    with pytest.raises(InvalidInputError):
        frame_from_labels(labels[:-1], image.shape[:2])
    with pytest.raises(InvalidInputError):
        remove_glasses(image, detect_landmarks(image).points, frame[:, :-1])


def test_build_paints_out_the_glasses_a_parser_labels(photos, template, monkeypatch):
    import importlib
    from pyfacerig.networks import FACE_PARSING_CLASSES
    build_module = importlib.import_module("pyfacerig.build")     # the module, not the function
    seen = []
    real = build_module.remove_glasses

    def spy(image, landmarks, frame=None):
        seen.append(frame)
        return real(image, landmarks, frame)

    class GlassesParser:
        def parse(self, image):
            labels = np.full(image.shape[:2], FACE_PARSING_CLASSES.index("skin"), np.uint8)
            labels[:10, :10] = FACE_PARSING_CLASSES.index("eyeglasses")
            return labels
    monkeypatch.setattr(build_module, "remove_glasses", spy)
    build_module.build(photos["astronaut"], template=template, parser=GlassesParser())
    assert len(seen) == 1 and seen[0].shape == photos["astronaut"].shape[:2] and seen[0][:10, :10].all()
    build_module.build(photos["astronaut"], template=template)
    assert seen[1] is None


def test_the_sidecar_says_whether_glasses_were_painted_out(built):
    import json
    for name, worn in (("grace_hopper", True), ("astronaut", False)):
        avatar, folder = built[name]
        record = json.loads((folder / f"{name}.json").read_text())["glasses"]
        assert record == avatar.glasses
        assert record["painted_out"] is worn and record["found_by"] == "geometry"
        assert (record["pixels"] > 1000) is worn
        assert set(record["loop_contrast"]) == {"left", "right"}


def test_landmarks_no_detector_gives_read_no_glasses_quickly(photos):
    import time
    image = photos["grace_hopper"]
    points = detect_landmarks(image).points
    centre = points[:, :2].mean(axis=0)
    huge = points.copy()
    huge[:, :2] = (points[:, :2] - centre) * 1e6 + centre        # a sliver of a vast face
    wide_eye = points.copy()
    wide_eye[133, :2] = points[33, :2] + [1e5, 0.0]              # an eye wider than the face
    for hostile in (huge, wide_eye):
        start = time.perf_counter()
        painted, reading = remove_glasses(image, hostile)
        assert not reading.worn and painted is image
        assert time.perf_counter() - start < 2.0
