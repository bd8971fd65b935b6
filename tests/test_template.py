"""The default template: contract, topology, UV chart, parts and the measured semantics of its shapes."""
import hashlib

import numpy as np
import pytest

from pyfacerig.errors import InvalidInputError
from pyfacerig.templates import ARKIT_SHAPE_NAMES, PART_NAMES, FaceTemplate, load, load_default
from pyfacerig.templates import neutral, topology, uv as uvmod
from pyfacerig.templates.generate import DEFAULT_PATH, write_default

APPLE_ORDER = """eyeBlinkLeft eyeLookDownLeft eyeLookInLeft eyeLookOutLeft eyeLookUpLeft eyeSquintLeft eyeWideLeft
eyeBlinkRight eyeLookDownRight eyeLookInRight eyeLookOutRight eyeLookUpRight eyeSquintRight eyeWideRight
jawForward jawLeft jawRight jawOpen mouthClose mouthFunnel mouthPucker mouthLeft mouthRight
mouthSmileLeft mouthSmileRight mouthFrownLeft mouthFrownRight mouthDimpleLeft mouthDimpleRight
mouthStretchLeft mouthStretchRight mouthRollLower mouthRollUpper mouthShrugLower mouthShrugUpper
mouthPressLeft mouthPressRight mouthLowerDownLeft mouthLowerDownRight mouthUpperUpLeft mouthUpperUpRight
browDownLeft browDownRight browInnerUp browOuterUpLeft browOuterUpRight cheekPuff cheekSquintLeft
cheekSquintRight noseSneerLeft noseSneerRight tongueOut""".split()

EAR_POINTS = {"left": (263, 387, 385, 362, 380, 373), "right": (33, 160, 158, 133, 153, 144)}


@pytest.fixture(scope="module")
def template() -> FaceTemplate:
    return load_default()


def posed(template, name, weight=1.0, part="skin"):
    p = template.parts[part]
    return p.vertices + weight * p.shape_deltas[template.shape_names.index(name)]


def combo(template, weights, part="skin"):
    p = template.parts[part]
    out = p.vertices.copy()
    for name, w in weights.items():
        out = out + w * p.shape_deltas[template.shape_names.index(name)]
    return out


def eye_aspect_ratio(points, side):
    p1, p2, p3, p4, p5, p6 = (points[i] for i in EAR_POINTS[side])
    return (np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2 * np.linalg.norm(p1 - p4))


def mouth_aspect_ratio(points):
    return np.linalg.norm(points[13] - points[14]) / np.linalg.norm(points[78] - points[308])


def face_height(template):
    return template.extras["measures"]["H"]


# ----------------------------------------------------------------------------- contract
def test_shape_names_are_apples_52_in_order(template):
    assert ARKIT_SHAPE_NAMES == tuple(APPLE_ORDER)
    assert template.shape_names == tuple(APPLE_ORDER)


def test_parts_come_in_contract_order_with_materials(template):
    assert tuple(template.parts) == PART_NAMES == (
        "skin", "eye_left", "eye_right", "mouth_cavity", "teeth_upper", "teeth_lower", "tongue")
    assert [p.material for p in template.parts.values()] == [
        "skin", "eye", "eye", "mouth", "teeth", "teeth", "tongue"]


def test_every_part_has_contract_arrays(template):
    for name, part in template.parts.items():
        n = len(part.vertices)
        assert part.vertices.dtype == np.float64 and part.vertices.shape == (n, 3), name
        assert part.faces.dtype == np.int32 and part.faces.min() >= 0 and part.faces.max() < n, name
        assert part.uvs.dtype == np.float32 and part.uvs.shape == (n, 2), name
        assert 0.0 <= part.uvs.min() and part.uvs.max() <= 1.0, name
        assert part.shape_deltas.dtype == np.float32 and part.shape_deltas.shape == (52, n, 3), name
        assert np.isfinite(part.shape_deltas).all(), name


def test_skin_is_refined_to_game_density_with_landmarks_first(template):
    skin = template.parts["skin"]
    assert 5000 <= len(skin.vertices) <= 20000
    lining = 2 * 2 * 3 * 64                            # eye-socket lining: 2 eyes x 3 rings x 64
    assert len(skin.faces) == 852 * 16 + lining        # two 1-to-4 refinements of 852 triangles
    assert np.array_equal(template.landmark_vertex_ids, np.arange(468))
    np.testing.assert_allclose(skin.vertices[:468], template.extras["landmarks"][:468], atol=1e-6)


def test_iris_landmarks_sit_on_their_eyeballs(template):
    lm = template.extras["landmarks"]
    assert np.array_equal(template.iris_landmarks, np.arange(468, 478))
    # 473 is the subject's left iris centre (+x), 468 the right one
    for row, iris in ((0, 473), (1, 468)):
        np.testing.assert_allclose(template.eye_centers[row, :2], lm[iris, :2], atol=1e-6)
        distance = np.linalg.norm(lm[iris] - template.eye_centers[row])
        assert abs(distance - template.eye_radius) < 0.3 * template.eye_radius


def test_ibug68_points_are_mirror_consistent(template):
    ids = template.landmarks68_vertex_ids
    assert ids.shape == (68,) and len(set(ids.tolist())) == 68
    mirror = template.extras["skin_mirror"]
    ibug_flip = (list(range(16, -1, -1)) + list(range(26, 16, -1)) + list(range(27, 31))
                 + list(range(35, 30, -1)) + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
                 + list(range(54, 47, -1)) + list(range(59, 54, -1))
                 + list(range(64, 59, -1)) + list(range(67, 64, -1)))
    assert np.array_equal(mirror[ids], ids[ibug_flip])


def test_regions_cover_the_named_areas(template):
    n = len(template.parts["skin"].vertices)
    for key in ("eyes", "nose", "brows", "mouth", "contour", "jaw"):
        mask = template.regions[key]
        assert mask.shape == (n,) and mask.dtype == bool and mask.any(), key
    assert template.regions["mouth"][[13, 14, 61, 291]].all()
    assert template.regions["eyes"][[33, 133, 263, 362]].all()
    assert not template.regions["mouth"][[33, 263]].any()


# ----------------------------------------------------------------------------- topology
def test_tessellation_source_gives_852_consistent_triangles():
    faces = topology.coarse_triangles()
    assert faces.shape == (852, 3)
    assert len(np.unique(faces)) == 468
    directed = np.stack([faces, np.roll(faces, -1, 1)], 2).reshape(-1, 2)
    assert len(np.unique(directed, axis=0)) == len(directed)


def test_skin_is_a_disk_with_two_eye_holes_and_a_mouth_hole(template):
    loops = topology.boundary_loops(template.parts["skin"].faces)
    assert len(loops) == 4
    outer, *holes = loops
    assert set(outer[outer < 468].tolist()) == set(template.extras["chains"]["face_oval"])
    hole_landmarks = sorted(sorted(h[h < 468].tolist())[:2] for h in holes)
    assert len(holes) == 3 and all(len(h) >= 64 for h in holes), hole_landmarks


def test_skin_neutral_is_mirror_symmetric(template):
    v = template.parts["skin"].vertices
    mirror = template.extras["skin_mirror"]
    assert np.array_equal(mirror[mirror], np.arange(len(v)))
    np.testing.assert_allclose(v[mirror] * [-1, 1, 1], v, atol=2e-7)


# ----------------------------------------------------------------------------- UV chart
def test_uv_chart_has_no_flipped_triangles(template):
    skin = template.parts["skin"]
    areas = uvmod.signed_areas(skin.uvs.astype(np.float64), skin.faces)
    assert (areas > 0).all(), f"{int((areas <= 0).sum())} flipped or degenerate UV triangles"


def test_uv_chart_area_equals_its_outline_minus_holes(template):
    """With every triangle positively oriented, equal areas mean nothing is covered twice."""
    skin = template.parts["skin"]
    uvs = skin.uvs.astype(np.float64)
    outer, *holes = topology.boundary_loops(skin.faces)
    enclosed = uvmod.loop_area(uvs, outer) - sum(uvmod.loop_area(uvs, h) for h in holes)
    assert abs(uvmod.fill_ratio(uvs, skin.faces) - enclosed) < 1e-6


def test_uv_chart_has_no_triangle_overlaps_when_sampled(template):
    skin = template.parts["skin"]
    counts = uvmod.coverage_counts(skin.uvs.astype(np.float64), skin.faces, 2048)
    assert counts.max() == 1


def test_uv_chart_fills_the_square_atlas(template):
    skin = template.parts["skin"]
    fill = uvmod.fill_ratio(skin.uvs.astype(np.float64), skin.faces)
    assert fill > 0.85
    assert template.extras["uv_fill_ratio"] == pytest.approx(fill, abs=1e-5)


def test_eye_uvs_put_the_iris_around_the_gaze_axis(template):
    eye = template.parts["eye_left"]
    front = np.argmax(eye.vertices[:, 2])
    np.testing.assert_allclose(eye.uvs[front], (0.5, 0.5), atol=1e-6)
    assert 0.015 < template.extras["pupil_uv_radius"] < template.extras["iris_uv_radius"] < 0.12


# ----------------------------------------------------------------------------- parts
def test_eyelid_margins_clear_the_eyeballs(template):
    skin = template.parts["skin"].vertices
    chains = template.extras["chains"]
    for row, side in ((0, "left"), (1, "right")):
        margin = skin[chains[f"eye_{side}_upper"] + chains[f"eye_{side}_lower"]]
        gap = np.linalg.norm(margin - template.eye_centers[row], axis=1) - template.eye_radius
        assert gap.min() > 0.0005


def test_eyes_are_spheres_of_the_template_radius(template):
    for row, name in ((0, "eye_left"), (1, "eye_right")):
        r = np.linalg.norm(template.parts[name].vertices - template.eye_centers[row], axis=1)
        np.testing.assert_allclose(r, template.eye_radius, rtol=1e-5)


def test_teeth_and_tongue_sit_behind_the_closed_lips(template):
    lips_front = template.parts["skin"].vertices[[0, 17], 2].min()
    for name in ("teeth_upper", "teeth_lower", "tongue"):
        assert template.parts[name].vertices[:, 2].max() < lips_front - 0.004, name


def test_mouth_cavity_rim_is_the_inner_lip_loop(template):
    skin = template.parts["skin"].vertices
    cavity = template.parts["mouth_cavity"].vertices
    for lm in (13, 14, 78, 308):
        assert np.linalg.norm(cavity - skin[lm], axis=1).min() < 1e-6


# ----------------------------------------------------------------------------- semantics
def test_eye_blink_left_closes_only_the_left_eye(template):
    n0, p = template.parts["skin"].vertices, posed(template, "eyeBlinkLeft")
    assert eye_aspect_ratio(p, "left") <= 0.15 * eye_aspect_ratio(n0, "left")
    assert eye_aspect_ratio(p, "right") >= 0.90 * eye_aspect_ratio(n0, "right")


def test_eye_blink_right_closes_only_the_right_eye(template):
    n0, p = template.parts["skin"].vertices, posed(template, "eyeBlinkRight")
    assert eye_aspect_ratio(p, "right") <= 0.15 * eye_aspect_ratio(n0, "right")
    assert eye_aspect_ratio(p, "left") >= 0.90 * eye_aspect_ratio(n0, "left")


def test_blinking_lids_stay_outside_the_eyeball(template):
    for row, name in ((0, "eyeBlinkLeft"), (1, "eyeBlinkRight")):
        p = posed(template, name)
        near = np.linalg.norm(template.parts["skin"].vertices - template.eye_centers[row], axis=1) < 0.02
        assert (np.linalg.norm(p[near] - template.eye_centers[row], axis=1) >= template.eye_radius).all()


def test_eye_wide_and_squint_open_and_narrow_the_eye(template):
    n0 = template.parts["skin"].vertices
    assert eye_aspect_ratio(posed(template, "eyeWideLeft"), "left") > 1.2 * eye_aspect_ratio(n0, "left")
    assert eye_aspect_ratio(posed(template, "eyeSquintLeft"), "left") < 0.8 * eye_aspect_ratio(n0, "left")


def test_eye_look_shapes_rotate_the_eyeball_the_named_way(template):
    centre = template.eye_centers[0]
    eye = template.parts["eye_left"]
    front = np.argmax(eye.vertices[:, 2])
    gaze = {n: posed(template, n, part="eye_left")[front] - centre for n in
            ("eyeLookUpLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft")}
    assert gaze["eyeLookUpLeft"][1] > 0 and gaze["eyeLookDownLeft"][1] < 0
    assert gaze["eyeLookInLeft"][0] < 0 < gaze["eyeLookOutLeft"][0]       # nose is toward -x
    angle = np.degrees(np.arcsin(-gaze["eyeLookDownLeft"][1] / template.eye_radius))
    assert 20 <= angle <= 30
    for name in gaze:                                      # rigid: every vertex stays on the sphere
        r = np.linalg.norm(posed(template, name, part="eye_left") - centre, axis=1)
        np.testing.assert_allclose(r, template.eye_radius, rtol=1e-4)


def test_jaw_open_raises_mouth_aspect_ratio_by_at_least_0_3(template):
    n0 = template.parts["skin"].vertices
    assert mouth_aspect_ratio(posed(template, "jawOpen")) - mouth_aspect_ratio(n0) >= 0.3


def test_jaw_open_carries_lower_teeth_and_tongue_but_not_upper_teeth(template):
    i = template.shape_names.index("jawOpen")
    assert np.abs(template.parts["teeth_upper"].shape_deltas[i]).max() == 0.0
    for name in ("teeth_lower", "tongue"):
        d = template.parts[name].shape_deltas[i]
        assert d[:, 1].mean() < -0.005, name              # the jaw swings down
    chin_drop = -template.parts["skin"].shape_deltas[i, 152, 1]
    assert chin_drop > 0.02


def test_mouth_close_on_jaw_open_brings_the_lips_together(template):
    p = combo(template, {"jawOpen": 1.0, "mouthClose": 1.0})
    assert mouth_aspect_ratio(p) < 0.05
    assert mouth_aspect_ratio(posed(template, "jawOpen")) > 0.5


def test_tongue_out_reaches_past_the_lips(template):
    lips_front = template.parts["skin"].vertices[[0, 17], 2].max()
    tip = combo(template, {"tongueOut": 1.0}, part="tongue")[:, 2].max()
    assert tip - lips_front > 0.10 * face_height(template)


@pytest.mark.parametrize("jaw", [0.5, 1.0])
def test_tongue_out_with_jaw_open_passes_between_the_lips(template, jaw):
    weights = {"jawOpen": jaw, "tongueOut": 1.0}
    skin, tongue = combo(template, weights), combo(template, weights, part="tongue")
    outside = tongue[:, 2] > skin[17, 2]                 # past the lower lip's front
    assert outside.sum() > 20
    assert tongue[outside, 1].min() > skin[17, 1]        # over the lower lip, not through the chin
    assert tongue[outside, 1].max() < skin[0, 1]         # under the upper lip


def test_both_blinks_together_close_both_eyes(template):
    p = combo(template, {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0})
    n0 = template.parts["skin"].vertices
    for side in ("left", "right"):
        assert eye_aspect_ratio(p, side) <= 0.15 * eye_aspect_ratio(n0, side)


@pytest.mark.parametrize("name", [n for n in APPLE_ORDER if not n.endswith(("Left", "Right"))])
def test_symmetric_shapes_are_their_own_mirror_image(template, name):
    i = template.shape_names.index(name)
    mirror = template.extras["skin_mirror"]
    d = template.parts["skin"].shape_deltas[i].astype(np.float64)
    np.testing.assert_allclose(d[mirror] * [-1, 1, 1], d, atol=2e-7)


@pytest.mark.parametrize("side, corner, other", [("Left", 291, 61), ("Right", 61, 291)])
def test_mouth_smile_raises_its_own_corner(template, side, corner, other):
    n0, p = template.parts["skin"].vertices, posed(template, f"mouthSmile{side}")
    rise = p[corner, 1] - n0[corner, 1]
    assert rise > 0.10 * template.extras["measures"]["W"]
    assert abs(p[other, 1] - n0[other, 1]) < 0.2 * rise


def test_brow_inner_up_raises_both_inner_brows(template):
    n0, p = template.parts["skin"].vertices, posed(template, "browInnerUp")
    inner = [285, 336, 55, 107]
    outer = [276, 300, 46, 70]
    rise = p[inner, 1] - n0[inner, 1]
    assert (rise > 0.03 * face_height(template)).all()
    assert (p[outer, 1] - n0[outer, 1] < 0.5 * rise.min()).all()


@pytest.mark.parametrize("left", [n for n in APPLE_ORDER if n.endswith("Left")] + ["jawLeft", "mouthLeft"])
def test_left_and_right_shapes_mirror_within_5_percent(template, left):
    right = left.replace("Left", "Right") if left not in ("jawLeft", "mouthLeft") else left[:-4] + "Right"
    il, ir = template.shape_names.index(left), template.shape_names.index(right)
    mirror = template.extras["skin_mirror"]
    dl = template.parts["skin"].shape_deltas[il].astype(np.float64)
    dr = template.parts["skin"].shape_deltas[ir].astype(np.float64)
    expected = dl[mirror] * [-1, 1, 1]
    assert np.linalg.norm(dr - expected) <= 0.05 * np.linalg.norm(dl) + 1e-9
    el = template.parts["eye_left"].shape_deltas[il].astype(np.float64)
    er = template.parts["eye_right"].shape_deltas[ir].astype(np.float64)
    assert np.linalg.norm(er - el * [-1, 1, 1]) <= 0.05 * np.linalg.norm(el) + 1e-9


@pytest.mark.parametrize("name", APPLE_ORDER)
def test_shape_moves_nothing_outside_its_region(template, name):
    i = template.shape_names.index(name)
    allowed = np.zeros(len(template.parts["skin"].vertices), bool)
    for region in template.extras["shape_regions"][name]:
        allowed |= template.regions[region]
    moved = np.linalg.norm(template.parts["skin"].shape_deltas[i], axis=1)
    assert moved[~allowed].max(initial=0.0) <= 0.01 * face_height(template)


@pytest.mark.parametrize("name", [n for n in APPLE_ORDER if n != "tongueOut"])
def test_every_face_shape_visibly_moves_the_face(template, name):
    i = template.shape_names.index(name)
    moved = max(np.abs(p.shape_deltas[i]).max() for k, p in template.parts.items() if k != "tongue")
    assert moved > 0.001


def test_eye_shapes_leave_the_mouth_still_and_mouth_shapes_the_eyelids(template):
    skin = template.parts["skin"]
    chains = template.extras["chains"]
    lid_margins = np.concatenate([chains[k] for k in chains if k.startswith("eye_")])
    for name in [n for n in APPLE_ORDER if n.startswith("eye")]:
        assert np.abs(skin.shape_deltas[template.shape_names.index(name)][template.regions["mouth"]]).max() == 0
    for name in [n for n in APPLE_ORDER if n.startswith("mouth")]:
        d = skin.shape_deltas[template.shape_names.index(name)]
        assert np.abs(d[lid_margins]).max() == 0, name
        assert np.linalg.norm(d[template.regions["eyes"]], axis=1).max() <= 0.01 * face_height(template), name


# ----------------------------------------------------------------------------- asset
def test_regenerating_reproduces_the_committed_file_byte_for_byte(tmp_path):
    out = write_default(tmp_path / "regenerated.frt")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(DEFAULT_PATH.read_bytes()).hexdigest()


def test_committed_source_landmarks_are_what_mediapipe_finds_in_the_portraits():
    """The template is built from committed detections; they must still match the real images.

    The two portraits must match within half a pixel.  Of the 25x25 LFW crops, a face at the
    edge of detection may come and go on another CPU, so 90 % must be found again.
    """
    committed = neutral.read_detections()
    fresh = neutral.detect_all(neutral.source_images())
    assert set(committed) == set(fresh) == {"astronaut", "grace_hopper", "lfw_subset"}
    for name in ("astronaut", "grace_hopper"):
        assert np.abs(committed[name][0] - fresh[name][0]).max() < 0.5, name   # pixels
    pairs = [(old, new) for old, new in zip(committed["lfw_subset"], fresh["lfw_subset"]) if old is not None]
    found_again = [(old, new) for old, new in pairs if new is not None]
    assert len(found_again) >= 0.9 * len(pairs)
    assert np.median([np.abs(old - new).max() for old, new in found_again]) < 0.5


def test_neutral_mirror_map_is_an_involution_pairing_the_irises():
    built = neutral.build_neutral(neutral.read_detections())
    mirror = built["mirror"]
    assert np.array_equal(mirror[mirror], np.arange(478))
    assert mirror[468] == 473 and set(mirror[468:473]) == set(range(473, 478))   # iris centres pair
    assert (mirror == np.arange(478)).sum() == 28          # MediaPipe's midline landmarks
    assert set(np.flatnonzero(mirror == np.arange(478))) >= {0, 1, 4, 10, 13, 14, 17, 152}


def test_neutral_face_has_adult_proportions_and_a_closed_mouth():
    lm = neutral.build_neutral(neutral.read_detections())["landmarks"]
    assert np.linalg.norm(lm[473] - lm[468]) == pytest.approx(0.063, abs=1e-9)
    assert 0.045 < np.linalg.norm(lm[291] - lm[61]) < 0.058       # mouth width
    assert 0.14 < lm[10, 1] - lm[152, 1] < 0.19                    # forehead landmark to chin
    assert np.linalg.norm(lm[13] - lm[14]) < 1e-6                  # lips touch


def test_committed_asset_is_compact():
    assert DEFAULT_PATH.stat().st_size < 3_000_000


def test_load_default_is_cached_and_read_only():
    a, b = load_default(), load_default()
    assert a is b
    with pytest.raises(ValueError):
        a.parts["skin"].vertices[0, 0] = 1.0


def test_loading_a_corrupt_file_names_the_problem(tmp_path):
    bad = tmp_path / "broken.frt"
    bad.write_bytes(DEFAULT_PATH.read_bytes()[:5000])
    with pytest.raises(InvalidInputError, match="broken.frt"):
        load(bad)


def test_loading_a_template_with_a_missing_array_names_the_file(tmp_path):
    from pyfacerig.templates import asset
    header, arrays = asset.read(DEFAULT_PATH)
    del arrays["skin/faces"]
    broken = tmp_path / "incomplete.frt"
    asset.write(broken, {k: v for k, v in header.items() if k not in ("format", "version")}, arrays)
    with pytest.raises(InvalidInputError, match="incomplete.frt"):
        load(broken)


def test_writing_to_a_missing_directory_names_the_path(tmp_path):
    from pyfacerig.errors import ExportError
    from pyfacerig.templates import asset
    target = tmp_path / "no_such_dir" / "t.frt"
    with pytest.raises(ExportError, match="no_such_dir"):
        asset.write(target, {}, {"a": np.zeros(3)})
    assert list(tmp_path.iterdir()) == []


def test_loading_a_foreign_zip_is_refused(tmp_path):
    import zipfile
    other = tmp_path / "other.frt"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("header.json", '{"format": "something-else"}')
    with pytest.raises(InvalidInputError, match="not a pyfacerig-template"):
        load(other)
