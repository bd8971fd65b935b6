"""The cartoon landmark network (issue #14, part 2): pyfacerig/models/cartoon_landmarks.onnx.

* Held-out synthetic cartoons: renders of the head template (pyfacerig.cartoon_renders) drawn
  with a seed the training never used, on identities, looks (posterised shading, "button" eyes)
  and skin colours the training never rendered.  Error = mean distance over the 68 iBUG points
  (the eyes: iBUG 36-47) as a fraction of the outer-eye-corner distance, the paper's NME.
* Other cartoons: the drawings of tests/_cartoons.py (PIL, not a renderer), whose eyes and mouth
  are known by construction.
The per-face speed is measured in bench/bench_cartoon_landmarks.py.
"""
import json

import cv2
import numpy as np
import pytest

from _cartoons import make_cartoons
from test_cli import run_cli
from pyfacerig.build import build
from pyfacerig.cartoon_landmarks import (training_landmark_ids, CROP_SCALE, EYE_MODEL_PATH, LEFT_EYE_IDS, MODEL_PATH, RIGHT_EYE_IDS,
                                         CartoonLandmarkDetector)
from pyfacerig.cartoon_renders import HELD_OUT_LOOKS, TRAINING_LOOKS, Renderer, crop_box
from pyfacerig.errors import InvalidInputError, LandmarkQualityError, ModelError, NoFaceError
from pyfacerig.landmarks import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR, detect_landmarks, mediapipe_to_ibug68

#: Seed of the held-out renders (training: [14, chunk]).
HELD_OUT_SEED = 2026
HELD_OUT_COUNT = 24
#: Held-out renders are upscaled to this side before detection (a 160-px render is a small face).
UPSCALE = 3


def nme68(predicted, truth):
    """(all 68, eyes) mean point error over the outer-eye-corner distance of the truth."""
    p, t = mediapipe_to_ibug68(predicted), mediapipe_to_ibug68(truth)
    iod = np.linalg.norm(t[36] - t[45])
    d = np.linalg.norm(p - t, axis=1) / iod
    return float(d.mean()), float(d[36:48].mean())


@pytest.fixture(scope="module")
def detector():
    return CartoonLandmarkDetector()


@pytest.fixture(scope="module")
def held_out(template):
    renderer = Renderer(template, landmark_ids=training_landmark_ids())
    rng = np.random.default_rng(HELD_OUT_SEED)
    samples = []
    for k in range(HELD_OUT_COUNT):
        samples.append(renderer.render(rng, HELD_OUT_LOOKS[k % len(HELD_OUT_LOOKS)], held_out_colours=True))
    return samples


@pytest.fixture(scope="module")
def held_out_found(held_out, detector):
    """Per held-out render: the network's points (image pixels) or None where the face box
    detector (MediaPipe's, which the network needs) finds no face."""
    found = []
    for sample in held_out:
        image = cv2.resize(sample.image, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
        faces = detector.detect(image)
        assert len(faces) <= 1, f"{len(faces)} faces found in a held-out render ({sample.look})"
        found.append(faces[0] / UPSCALE if faces else None)
    return found


def test_the_face_box_detector_finds_the_held_out_faces(held_out_found):
    """MediaPipe's face detector gives the network its box.  It misses one of the 24: render 3,
    a blue, flat-shaded, turned face with "button" eyes (it found it while the renders were
    framed by the networks' earlier landmark definition, which moved the crop by a few pixels)."""
    assert sum(points is None for points in held_out_found) <= 1


@pytest.fixture(scope="module")
def held_out_errors(held_out, held_out_found):
    return np.array([nme68(points, sample.points) for sample, points in zip(held_out, held_out_found)
                     if points is not None])


def test_held_out_looks_were_not_in_training():
    assert not set(HELD_OUT_LOOKS) & set(TRAINING_LOOKS)


#: What the committed networks reach on the held-out renders: 2.76 % / 2.24 % (docs/networks.md);
#: a retrained network must not do worse than these (with a little room).
GUARD_NME, GUARD_EYES = 0.03, 0.025


def test_held_out_synthetic_cartoons_nme_does_not_regress(held_out_errors):
    nme, eyes = held_out_errors.mean(axis=0)
    print(f"held-out renders: NME {nme:.2%}, eyes {eyes:.2%} of the IOD (n={len(held_out_errors)})")
    assert nme <= GUARD_NME and eyes <= GUARD_EYES, (nme, eyes)


def test_held_out_synthetic_cartoons_meet_the_issues_targets(held_out_errors):
    nme, eyes = held_out_errors.mean(axis=0)
    assert nme <= 0.03, f"NME {nme:.2%} over the 68 points (issue #14: <= 3 %)"
    assert eyes <= 0.025, f"eye NME {eyes:.2%} (issue #14: <= 2.5 %)"


def test_the_network_beats_mediapipe_on_the_held_out_renders_eyes(held_out, held_out_found):
    # Not vacuous: the photo detector misreads these drawn eyes by more (10.5 % vs 2.2 % measured).
    mediapipe, network = [], []
    for sample, found in zip(held_out[:8], held_out_found[:8]):
        image = cv2.resize(sample.image, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
        try:
            points = detect_landmarks(image).points / UPSCALE
        except Exception:       # noqa: BLE001 -- no face found counts as a miss
            continue
        if found is not None:
            mediapipe.append(nme68(points, sample.points)[1])
            network.append(nme68(found, sample.points)[1])
    assert len(network) >= 6 and np.mean(mediapipe) > 1.2 * np.mean(network), (mediapipe, network)


def test_the_detector_is_deterministic_and_follows_the_face(held_out, detector):
    sample = held_out[0]
    image = cv2.resize(sample.image, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    box = crop_box(sample.points * UPSCALE)
    a = detector.landmarks_in_box(image, box)
    b = detector.landmarks_in_box(image.copy(), box)
    assert np.array_equal(a, b) and a.shape == (478, 3)
    # Shifting the image shifts the points (the crop follows the box, not the frame).
    shifted = np.zeros((image.shape[0] + 40, image.shape[1] + 60, 3), np.uint8)
    shifted[40:, 60:] = image
    moved = detector.landmarks_in_box(shifted, (box[0] + 60, box[1] + 40, box[2] + 60, box[3] + 40))
    assert np.abs(moved[:, :2] - a[:, :2] - [60, 40]).max() < 0.5


def test_a_wrong_model_is_refused_with_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        CartoonLandmarkDetector(tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="eye network model file not found"):
        CartoonLandmarkDetector(eye_model=tmp_path / "missing.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ModelError):
        CartoonLandmarkDetector(tmp_path / "bad.onnx")


def test_the_committed_models_are_small():
    # Issue #14: <= 10 MB; the face and eye networks together.
    assert MODEL_PATH.stat().st_size + EYE_MODEL_PATH.stat().st_size <= 10 * 2 ** 20
    assert CROP_SCALE > 1


def test_the_eye_stage_reads_the_left_eye_as_a_mirrored_right_eye():
    # One eye network serves both eyes: the left eye's crop is mirrored, so its points must be
    # the right eye's mirror images, in the same order.
    assert RIGHT_EYE_IDS[:16] == RIGHT_EYE_CONTOUR and LEFT_EYE_IDS[:16] == LEFT_EYE_CONTOUR
    assert set(RIGHT_EYE_IDS[16:]) == set(range(468, 473)) and set(LEFT_EYE_IDS[16:]) == set(range(473, 478))


def test_the_eye_stage_moves_only_the_eye_points(held_out, detector):
    sample = held_out[1]
    image = cv2.resize(sample.image, None, fx=UPSCALE, fy=UPSCALE, interpolation=cv2.INTER_CUBIC)
    box = crop_box(sample.points * UPSCALE)
    face_only = CartoonLandmarkDetector(eye_model=False).landmarks_in_box(image, box)
    both = detector.landmarks_in_box(image, box)
    moved = np.flatnonzero(np.abs(both[:, :2] - face_only[:, :2]).max(axis=1) > 0)
    assert set(moved) <= set(RIGHT_EYE_IDS + LEFT_EYE_IDS) and len(moved) > 30


# ----------------------------------------------------------------------------- drawn cartoons
CARTOONS = make_cartoons()


def drawn_errors(points, cartoon):
    """Errors against the drawing's own numbers (fraction of the drawn eye distance): each eye
    centre (mean of the iBUG eye points), the eyes' horizontal extremes (iBUG 36/39, 42/45) and
    the mouth corners (48/54)."""
    p = mediapipe_to_ibug68(points)
    iod = cartoon.interocular
    centres = [np.linalg.norm(p[36:42].mean(0) - cartoon.eyes[0]), np.linalg.norm(p[42:48].mean(0) - cartoon.eyes[1])]
    (r0, r1), (l0, l1) = cartoon.eye_corners
    corners = [np.linalg.norm(p[36] - r0), np.linalg.norm(p[39] - r1), np.linalg.norm(p[42] - l0),
               np.linalg.norm(p[45] - l1)]
    mouth = [np.linalg.norm(p[48] - cartoon.mouth_corners[0]), np.linalg.norm(p[54] - cartoon.mouth_corners[1])]
    return max(centres) / iod, np.mean(corners) / iod, np.mean(mouth) / iod


#: The committed networks on the drawings, median eye-centre error over the drawn eye distance:
#: 2.3 % (MediaPipe 5.9 %; docs/networks.md).  A retrained network must not do worse.
GUARD_DRAWN_EYE_CENTRE = 0.04


def test_drawn_cartoons_error_is_reported(detector):
    ours, theirs = [], []
    for image, cartoon in CARTOONS:
        faces = detector.detect(image)
        if len(faces) == 1:
            ours.append(drawn_errors(faces[0], cartoon))
        try:
            theirs.append(drawn_errors(detect_landmarks(image).points, cartoon))
        except Exception:       # noqa: BLE001
            pass
    ours, theirs = np.array(ours), np.array(theirs)
    print(f"drawn cartoons, network (n={len(ours)}): eye centre {np.median(ours[:, 0]):.1%} median, "
          f"eye corners {np.median(ours[:, 1]):.1%}, mouth corners {np.median(ours[:, 2]):.1%}; "
          f"MediaPipe (n={len(theirs)}): {np.median(theirs[:, 0]):.1%}, {np.median(theirs[:, 1]):.1%}, "
          f"{np.median(theirs[:, 2]):.1%}")
    assert len(ours) >= len(CARTOONS) - 2
    assert np.median(ours[:, 0]) <= GUARD_DRAWN_EYE_CENTRE


@pytest.mark.parametrize("index", [2, 8, 14, 20])     # the anime-eyed drawings
def test_a_cartoon_built_with_the_cartoon_network_has_its_eyes_on_the_drawn_eyes_or_is_refused(template, index,
                                                                                              tmp_path):
    from test_landmark_quality import EYES_ON_DRAWN_EYES, cartoon_eye_error
    image, cartoon = CARTOONS[index]
    assert cartoon.eye_style == "anime"
    try:
        build(image, out=tmp_path / "a.glb", template=template, landmarks="cartoon")
    except LandmarkQualityError as exc:
        assert exc.region and list(tmp_path.iterdir()) == []
        return
    except NoFaceError:         # MediaPipe's detector and mesh find no face box for the network
        assert list(tmp_path.iterdir()) == []
        return
    sidecar = json.loads((tmp_path / "a.json").read_text())
    assert sidecar["landmark_quality"]["detector"] == "cartoon_network"
    error = cartoon_eye_error(sidecar["landmarks68.fine"], cartoon)
    assert error <= EYES_ON_DRAWN_EYES, f"{cartoon.name} built with its eyes {error:.1%} off"


def test_photos_keep_mediapipe(built):
    for avatar, _ in built.values():
        assert avatar.landmark_quality["detector"] == "mediapipe"


def test_landmarks_option_is_checked(astronaut_rgb):
    with pytest.raises(InvalidInputError, match="landmarks"):
        build(astronaut_rgb, landmarks="anime")


def test_cli_takes_the_landmarks_option(tmp_path):
    image, _ = CARTOONS[2]
    path = tmp_path / "drawn.png"
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    run = run_cli("build", path, "-o", tmp_path / "out" / "drawn.glb", "--landmarks", "cartoon", "--force")
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "out" / "drawn.json").read_text())["landmark_quality"]
    assert record["detector"] == "cartoon_network"
    bad = run_cli("build", path, "-o", tmp_path / "out2" / "drawn.glb", "--landmarks", "anime")
    assert bad.returncode != 0 and "--landmarks" in bad.stderr


# ----------------------------------------------------------------------------- when the network steps in
class EyesOffDetector:
    """MediaPipe with the eye points moved 20 % of the IOD toward the image's right: the mirror
    pass then disagrees (its flipped-back points move left), so the gate refuses the eyes."""

    num_points = 478

    def __init__(self):
        from pyfacerig.landmarks import default_detector
        self.inner = default_detector()

    def detect(self, image):
        from pyfacerig.landmark_quality import REGIONS
        out = []
        for points in self.inner.detect(image):
            points = points.copy()
            points[list(REGIONS["eyes"]), 0] += 0.2 * np.linalg.norm(points[33, :2] - points[263, :2])
            out.append(points)
        return out


def test_auto_uses_the_network_when_the_gate_refuses_and_the_network_passes(astronaut_rgb, template, monkeypatch):
    # The decision, on a photo with a stand-in for each detector: the first detector's eyes are
    # off (refused); the "network" here is MediaPipe itself, whose landmarks pass.
    from pyfacerig import cartoon_landmarks
    from pyfacerig.landmarks import default_detector
    monkeypatch.setattr(cartoon_landmarks, "default_cartoon_detector", default_detector)
    avatar = build(astronaut_rgb, template=template, landmark_detector=EyesOffDetector())
    assert avatar.landmark_quality["detector"] == "cartoon_network" and avatar.landmark_quality["passed"]


def test_auto_refuses_when_the_network_fails_the_gate_too(astronaut_rgb, template, monkeypatch, tmp_path):
    from pyfacerig import cartoon_landmarks
    monkeypatch.setattr(cartoon_landmarks, "default_cartoon_detector", EyesOffDetector)
    with pytest.raises(LandmarkQualityError, match="cartoon landmark network") as caught:
        build(astronaut_rgb, out=tmp_path / "a.glb", template=template, landmark_detector=EyesOffDetector())
    assert caught.value.region == "eyes" and list(tmp_path.iterdir()) == []


def test_photo_mode_never_runs_the_network(astronaut_rgb, template, monkeypatch):
    from pyfacerig import cartoon_landmarks

    def unexpected():
        raise AssertionError("the cartoon network ran")
    monkeypatch.setattr(cartoon_landmarks, "default_cartoon_detector", unexpected)
    with pytest.raises(LandmarkQualityError):
        build(astronaut_rgb, template=template, landmark_detector=EyesOffDetector(), landmarks="photo")


def test_the_networks_depth_is_the_templates_turned_to_the_face(portraits):
    # The coarse fit aligns in 3-D: a 2-D detector's flat depth made it crumple the head.  On the
    # real portraits the depth given to 2-D points follows MediaPipe's own (0.89 / 0.94 measured).
    from pyfacerig.cartoon_landmarks import template_depth
    for image in portraits.values():
        points = detect_landmarks(image).points
        depth = template_depth(points[:, :2])
        assert depth.shape == (478,)
        assert np.corrcoef(depth[:468], points[:468, 2])[0, 1] > 0.85
        assert depth[1] < depth[234] and depth[1] < depth[454]      # the nose tip is nearer than the cheeks


def test_the_training_renders_are_deterministic(template):
    renderer = Renderer(template, landmark_ids=training_landmark_ids())
    a = renderer.render_looks(np.random.default_rng([14, 0]), [TRAINING_LOOKS[5], TRAINING_LOOKS[-1]])
    b = renderer.render_looks(np.random.default_rng([14, 0]), [TRAINING_LOOKS[5], TRAINING_LOOKS[-1]])
    for x, y in zip(a, b):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.points, y.points)
        assert x.image.shape == (160, 160, 3) and x.points.shape == (478, 2)
        # The face is in the frame: its box lies inside the image.
        x0, y0, x1, y1 = crop_box(x.points)
        assert 0 < x0 < x1 < 160 and 0 < y0 < y1 < 160
