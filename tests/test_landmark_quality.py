"""The landmark quality gate (issue #14, part 1): landmarks that do not fit the image are refused
before fitting, with a typed error naming the region; real portraits pass.

Cartoons come from tests/_cartoons.py: faces drawn with PIL whose eyes and mouth are known by
construction.  Eye error on a cartoon = distance between the centre of the fitted eye (mean of
iBUG points 36-41 / 42-47 in the sidecar's ``landmarks68.fine``) and the drawn eye's centre, as a
fraction of the distance between the drawn eye centres.
"""
import json

import numpy as np
import pytest
from PIL import Image

from _cartoons import make_cartoons
from _heldout import PORTRAITS
from test_build_eyes import enlarge_eyes
from test_cli import run_cli
from pyfacerig.build import build
from pyfacerig.errors import FaceDetectionError, LandmarkQualityError, NoFaceError
from pyfacerig.image_io import load_image
from pyfacerig.landmark_quality import (LANDMARK_MIRROR, REGIONS, assess_landmark_quality,
                                        check_landmark_quality)
from pyfacerig.landmarks import LEFT_EYE_CONTOUR, LEFT_IRIS, RIGHT_EYE_CONTOUR, RIGHT_IRIS, detect_landmarks
from pyfacerig.stylize import stylize

CARTOONS = make_cartoons()
#: Eyes this far from the drawn eyes (fraction of the drawn eye distance) count as "on the drawn eyes".
EYES_ON_DRAWN_EYES = 0.05


def cartoon_eye_error(landmarks68: np.ndarray, cartoon) -> float:
    fine = np.asarray(landmarks68, dtype=np.float64)
    right = np.linalg.norm(fine[36:42].mean(axis=0) - cartoon.eyes[0])
    left = np.linalg.norm(fine[42:48].mean(axis=0) - cartoon.eyes[1])
    return max(right, left) / cartoon.interocular


def _build_cartoons(template, tmp_path_factory, landmarks):
    out = {}
    for image, cartoon in CARTOONS:
        folder = tmp_path_factory.mktemp(cartoon.name)
        try:
            build(image, out=folder / "avatar.glb", template=template, landmarks=landmarks)
            out[cartoon.name] = ("built", json.loads((folder / "avatar.json").read_text()))
        except LandmarkQualityError as exc:
            out[cartoon.name] = ("refused", exc, folder)
        except NoFaceError as exc:
            out[cartoon.name] = ("no face", exc)
    return out


@pytest.fixture(scope="module")
def cartoon_builds(template, tmp_path_factory):
    """Each cartoon built with the gate on and MediaPipe alone (``landmarks="photo"``, the gate's
    own behaviour): name -> ("built", sidecar) | ("refused", error, folder) | ("no face", error)."""
    return _build_cartoons(template, tmp_path_factory, "photo")


@pytest.fixture(scope="module")
def cartoon_builds_auto(template, tmp_path_factory):
    """The same with the default ``landmarks="auto"``: the cartoon network steps in where the gate
    refuses MediaPipe's landmarks and its own pass."""
    return _build_cartoons(template, tmp_path_factory, "auto")


# ----------------------------------------------------------------------------- mirror table
def test_mirror_table_is_an_involution_that_swaps_mediapipes_left_and_right_parts():
    import mediapipe as mp
    mesh = mp.solutions.face_mesh
    mirror = np.asarray(LANDMARK_MIRROR)
    assert sorted(mirror.tolist()) == list(range(478))
    assert np.array_equal(mirror[mirror], np.arange(478))
    assert mirror[list(RIGHT_EYE_CONTOUR)].tolist() == list(LEFT_EYE_CONTOUR)
    assert mirror[list(RIGHT_IRIS[:1])].tolist() == list(LEFT_IRIS[:1])

    def mapped(edges):
        return {tuple(sorted((int(mirror[a]), int(mirror[b])))) for a, b in edges}

    def plain(edges):
        return {tuple(sorted(e)) for e in edges}

    for left, right in (("LEFT_EYE", "RIGHT_EYE"), ("LEFT_EYEBROW", "RIGHT_EYEBROW"), ("LEFT_IRIS", "RIGHT_IRIS"),
                        ("LIPS", "LIPS"), ("FACE_OVAL", "FACE_OVAL")):
        assert mapped(getattr(mesh, f"FACEMESH_{left}")) == plain(getattr(mesh, f"FACEMESH_{right}")), left
    # MediaPipe splits six quads per side along different diagonals: all other triangles' edges map.
    tessellation = plain(mesh.FACEMESH_TESSELATION)
    assert len(mapped(tessellation) - tessellation) <= 6


# ----------------------------------------------------------------------------- real portraits pass
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_bundled_portraits_pass_the_gate(portraits, name):
    image = portraits[name]
    quality = assess_landmark_quality(image, detect_landmarks(image).points)
    assert quality.passed, quality.as_dict()
    assert min(quality.scores.values()) > 0.8, quality.scores


@pytest.mark.parametrize("name", PORTRAITS)
def test_heldout_portraits_pass_the_gate(heldout_paths, name):
    image = load_image(heldout_paths[name])
    quality = assess_landmark_quality(image, detect_landmarks(image).points)
    assert quality.passed, quality.as_dict()


def test_lfw_faces_pass_the_gate_wherever_mediapipe_finds_them():
    from skimage import data
    found = passed = 0
    for face in data.lfw_subset()[:100]:
        grey = Image.fromarray(np.round(face * 255).astype(np.uint8)).resize((200, 200), Image.BICUBIC)
        image = np.repeat(np.asarray(grey)[:, :, None], 3, axis=2)
        try:
            points = detect_landmarks(image).points
        except FaceDetectionError:
            continue
        found += 1
        quality = assess_landmark_quality(image, points)
        passed += quality.passed
        assert quality.passed, quality.as_dict()
    assert found >= 90 and passed == found


@pytest.mark.parametrize("factor", [1.3, 1.6, 1.8])
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_real_photos_with_enlarged_eyes_pass_the_gate(portraits, name, factor):
    image = portraits[name]
    warped, _ = enlarge_eyes(image, detect_landmarks(image).points, factor)
    quality = assess_landmark_quality(warped, detect_landmarks(warped).points)
    assert quality.passed, quality.as_dict()


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_stylised_real_portraits_pass_the_gate(portraits, name):
    # style="cartoon" flattens the photo (flat fraction 0.33-0.70 measured) but MediaPipe still
    # reads the real eyes in it, so the gate must let it through.
    image = stylize(portraits[name])
    quality = assess_landmark_quality(image, detect_landmarks(image).points)
    assert quality.passed, quality.as_dict()


@pytest.mark.parametrize("name", PORTRAITS)
def test_stylised_heldout_portraits_pass_the_gate(heldout_paths, name):
    image = stylize(load_image(heldout_paths[name]))
    quality = assess_landmark_quality(image, detect_landmarks(image).points)
    assert quality.passed, quality.as_dict()


def test_eye_landmarks_moved_off_a_photos_eyes_are_refused_by_the_mirror_pass(portraits):
    # On a photo the drawn-feature evidence does not apply (its skin is not one flat colour);
    # the mirror pass finds the real eyes, so eye points moved 15 % of the IOD down disagree.
    image = portraits["astronaut"]
    points = detect_landmarks(image).points.copy()
    iod = np.linalg.norm(points[33, :2] - points[263, :2])
    eyes = list(RIGHT_EYE_CONTOUR + LEFT_EYE_CONTOUR + RIGHT_IRIS + LEFT_IRIS)
    points[eyes, 1] += 0.15 * iod
    quality = assess_landmark_quality(image, points)
    assert quality.evidence["eyes"]["flat_fraction"] < 0.1
    assert quality.failing == ("eyes",), quality.as_dict()
    assert quality.evidence["eyes"]["mirror_disagreement"] > 0.1


def test_the_sidecar_records_the_gates_scores_on_a_real_portrait(built):
    sidecar = json.loads((built["astronaut"][1] / "astronaut.json").read_text())
    record = sidecar["landmark_quality"]
    assert record["passed"] is True and record["failing"] == []
    assert set(record["scores"]) == set(REGIONS)
    assert all(0.8 < s <= 1.0 for s in record["scores"].values()), record


# ----------------------------------------------------------------------------- cartoons
@pytest.mark.parametrize("mode", ["cartoon_builds", "cartoon_builds_auto"])
@pytest.mark.parametrize("index", range(len(CARTOONS)))
def test_no_cartoon_builds_with_its_eyes_off_the_drawn_eyes(request, mode, index):
    _, cartoon = CARTOONS[index]
    outcome = request.getfixturevalue(mode)[cartoon.name]
    if outcome[0] == "built":
        error = cartoon_eye_error(outcome[1]["landmarks68.fine"], cartoon)
        assert error <= EYES_ON_DRAWN_EYES, f"{cartoon.name} built with its eyes {error:.1%} off"
    elif outcome[0] == "refused":
        exc, folder = outcome[1], outcome[2]
        assert exc.region in REGIONS and exc.region in str(exc) and 0.0 <= exc.score < 0.5
        assert list(folder.iterdir()) == []    # nothing written
    else:
        assert isinstance(outcome[1], NoFaceError)


def test_the_gate_refuses_the_cartoons_mediapipe_misreads_and_lets_the_rest_build(cartoon_builds, template):
    # Not vacuous: forced through, the refused cartoons' eyes land far from the drawn eyes (the
    # issue's failure), and some cartoons whose landmarks are right do build.
    outcomes = [cartoon_builds[c.name][0] for _, c in CARTOONS]
    assert outcomes.count("built") >= 4 and outcomes.count("refused") >= 6, outcomes
    forced_errors = []
    for image, cartoon in CARTOONS:
        if cartoon_builds[cartoon.name][0] == "refused":
            avatar = build(image, template=template, force=True, landmarks="photo")
            assert avatar.sidecar()["landmark_quality"]["passed"] is False
            forced_errors.append(cartoon_eye_error(avatar.landmarks68["fine"], cartoon))
    assert max(forced_errors) > 0.12, forced_errors
    assert sum(e > EYES_ON_DRAWN_EYES for e in forced_errors) >= 5, forced_errors


def _refused_cartoon(cartoon_builds):
    for image, cartoon in CARTOONS:
        if cartoon_builds[cartoon.name][0] == "refused" and cartoon.eye_style == "anime":
            return image, cartoon
    raise AssertionError("no anime cartoon was refused")


def test_force_builds_anyway_and_records_the_failing_scores(cartoon_builds, template, tmp_path):
    image, _ = _refused_cartoon(cartoon_builds)
    avatar = build(image, out=tmp_path / "forced.glb", template=template, force=True, landmarks="photo")
    record = json.loads((tmp_path / "forced.json").read_text())["landmark_quality"]
    assert (tmp_path / "forced.glb").is_file()
    assert record["passed"] is False and "eyes" in record["failing"]
    assert record["scores"]["eyes"] < record["thresholds"]["eyes"]
    assert avatar.landmark_quality == record


def test_check_raises_a_typed_error_naming_the_worst_region(cartoon_builds):
    image, _ = _refused_cartoon(cartoon_builds)
    quality = assess_landmark_quality(image, detect_landmarks(image).points)
    with pytest.raises(LandmarkQualityError, match=r"eyes \d\.\d\d < 0\.50") as caught:
        check_landmark_quality(quality)
    assert isinstance(caught.value, FaceDetectionError)
    assert caught.value.region == quality.failing[0]


def test_cli_refuses_a_cartoon_with_a_non_zero_exit_and_writes_nothing(cartoon_builds, tmp_path):
    image, _ = _refused_cartoon(cartoon_builds)
    path = tmp_path / "in" / "cartoon.png"
    path.parent.mkdir()
    Image.fromarray(image).save(path)
    run = run_cli("build", path, "-o", tmp_path / "out" / "cartoon.glb", "--landmarks", "photo")
    assert run.returncode != 0
    message = " ".join(run.stderr.split())
    assert "do not fit the image" in message and "eyes" in message and "--force" in message
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []

    forced = run_cli("build", path, "-o", tmp_path / "out" / "cartoon.glb", "--force", "--landmarks", "photo")
    assert forced.returncode == 0, forced.stderr
    assert json.loads((tmp_path / "out" / "cartoon.json").read_text())["landmark_quality"]["passed"] is False


def test_batch_lists_the_refused_cartoons_and_builds_the_photo(cartoon_builds, astronaut_rgb, tmp_path):
    image, _ = _refused_cartoon(cartoon_builds)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(image).save(folder / "drawn.png")
    Image.fromarray(astronaut_rgb).save(folder / "photo.png")
    run = run_cli("batch", folder, "-o", tmp_path / "out", "--landmarks", "photo")
    assert run.returncode != 0
    assert "REFUSED drawn.png" in run.stdout and "ok     photo.png" in run.stdout
    assert "pyfacerig: refused: drawn.png: LandmarkQualityError" in run.stderr
    assert "pass --force to build anyway" in run.stderr          # the CLI's spelling, not force=True
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json", "photo.glb", "photo.json"]


def test_force_must_be_a_bool(astronaut_rgb):
    from pyfacerig.errors import InvalidInputError
    with pytest.raises(InvalidInputError, match="force"):
        build(astronaut_rgb, force="yes")


def test_the_gate_refuses_unusable_inputs_with_typed_errors(astronaut_rgb):
    from pyfacerig.errors import InvalidImageError, InvalidInputError
    points = detect_landmarks(astronaut_rgb).points
    with pytest.raises(InvalidInputError, match="shape"):
        assess_landmark_quality(astronaut_rgb, points[:468])
    collapsed = points.copy()
    collapsed[:] = collapsed[0]
    with pytest.raises(InvalidInputError, match="less than a pixel"):
        assess_landmark_quality(astronaut_rgb, collapsed)
    with pytest.raises(InvalidImageError):
        assess_landmark_quality(astronaut_rgb.astype(np.float32), points)
