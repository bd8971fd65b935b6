"""Landmark detection on real portraits, and the typed refusals for unusable faces."""
import cv2
import numpy as np
import pytest

from pyfacerig.errors import (FaceCutOffError, FaceTooSmallError, ModelError, MultipleFacesError,
                              NoFaceError)
from pyfacerig.image_io import load_image
from pyfacerig.landmarks import (IBUG68_CURVES, IBUG68_POINTS, IBUG68_REGIONS, LEFT_EYE_CONTOUR, LEFT_IRIS,
                                 RIGHT_EYE_CONTOUR, RIGHT_IRIS, FaceLandmarks, MediaPipeLandmarkDetector,
                                 detect_faces, detect_landmarks, ibug68_nearest_landmarks, mediapipe_to_ibug68)


@pytest.fixture(scope="module")
def grace_rgb(grace_hopper_path):
    return load_image(grace_hopper_path)


@pytest.fixture(scope="module")
def two_portraits(astronaut_rgb, grace_rgb):
    """Astronaut (small face) on the left, Grace Hopper (large face) on the right, 512 high."""
    return np.ascontiguousarray(np.concatenate([astronaut_rgb, grace_rgb[:512]], axis=1))


def _inside(polygon_xy, point_xy):
    return cv2.pointPolygonTest(polygon_xy.astype(np.float32), tuple(map(float, point_xy)), False) > 0


@pytest.mark.parametrize("portrait", ["astronaut", "grace_hopper"])
def test_real_portrait_gives_478_points_in_image_pixels(portrait, astronaut_rgb, grace_rgb):
    image = astronaut_rgb if portrait == "astronaut" else grace_rgb
    face = detect_landmarks(image)
    assert face.points.shape == (478, 3) and face.points.dtype == np.float64
    assert face.image_size == (image.shape[1], image.shape[0])
    assert face.outside_fraction() == 0.0


@pytest.mark.parametrize("portrait", ["astronaut", "grace_hopper"])
def test_irises_sit_inside_their_eye_contours_on_the_correct_side(portrait, astronaut_rgb, grace_rgb):
    image = astronaut_rgb if portrait == "astronaut" else grace_rgb
    p = detect_landmarks(image).points2d
    assert _inside(p[list(RIGHT_EYE_CONTOUR)], p[RIGHT_IRIS[0]])
    assert _inside(p[list(LEFT_EYE_CONTOUR)], p[LEFT_IRIS[0]])
    # Subject's right eye is on the image's left in a frontal photo.
    assert p[RIGHT_IRIS[0], 0] < p[LEFT_IRIS[0], 0]
    # Eyes above the nose tip (1), nose tip above the mouth (13), in image y (down).
    assert max(p[RIGHT_IRIS[0], 1], p[LEFT_IRIS[0], 1]) < p[1, 1] < p[13, 1]


def test_astronaut_eyes_are_where_a_person_sees_them(astronaut_rgb):
    # Pupil centres read by eye off an 8x nearest-neighbour enlargement of the photo.
    p = detect_landmarks(astronaut_rgb).points2d
    np.testing.assert_allclose(p[RIGHT_IRIS[0]], (203, 101), atol=4)
    np.testing.assert_allclose(p[LEFT_IRIS[0]], (246, 104), atol=4)


def test_points_refer_to_the_full_resolution_image(grace_rgb):
    # A 5x upscaled photo is detected on a downscaled copy but answered in its own pixels.
    big = cv2.resize(grace_rgb, None, fx=5, fy=5, interpolation=cv2.INTER_CUBIC)
    small_face = detect_landmarks(grace_rgb)
    big_face = detect_landmarks(big)
    error = np.linalg.norm(big_face.points2d / 5 - small_face.points2d, axis=1)
    assert np.median(error) < 0.02 * small_face.interocular


def test_depth_is_in_pixels_and_nose_tip_is_closest(grace_rgb):
    face = detect_landmarks(grace_rgb)
    z = face.points[:, 2]
    assert np.ptp(z) > 0.5 * face.interocular          # same scale as x, not normalised to [0, 1]
    assert z[1] < z[LEFT_EYE_CONTOUR[0]] and z[1] < z[RIGHT_EYE_CONTOUR[0]]


def test_same_image_gives_identical_points(astronaut_rgb):
    detector = MediaPipeLandmarkDetector()
    first = detect_landmarks(astronaut_rgb, detector=detector).points
    second = detect_landmarks(astronaut_rgb.copy(), detector=detector).points
    np.testing.assert_array_equal(first, second)


def test_points_are_read_only(astronaut_rgb):
    face = detect_landmarks(astronaut_rgb)
    with pytest.raises(ValueError):
        face.points[0, 0] = 0.0


@pytest.mark.parametrize("scene", ["coffee", "gradient"])
def test_image_without_a_face_raises_no_face_error(scene):
    from skimage import data
    if scene == "coffee":
        image = data.coffee()
    else:
        image = np.tile(np.linspace(0, 255, 320).astype(np.uint8)[None, :, None], (240, 1, 3))
    with pytest.raises(NoFaceError):
        detect_landmarks(image)


def test_two_faces_raise_multiple_faces_error_that_says_how_to_choose(two_portraits):
    with pytest.raises(MultipleFacesError, match="face='largest'"):
        detect_landmarks(two_portraits)


def test_largest_picks_the_bigger_face(two_portraits):
    face = detect_landmarks(two_portraits, face="largest")
    assert (face.bbox[0] + face.bbox[2]) / 2 > 512          # Grace Hopper, on the right


def test_integer_face_counts_left_to_right(two_portraits):
    faces = detect_faces(two_portraits)
    assert len(faces) == 2
    left = detect_landmarks(two_portraits, face=0)
    right = detect_landmarks(two_portraits, face=1)
    assert left.bbox[2] < 512 < right.bbox[0]


def test_face_index_beyond_the_faces_found_is_refused(astronaut_rgb):
    with pytest.raises(NoFaceError, match="face index 3"):
        detect_landmarks(astronaut_rgb, face=3)


def test_tiny_face_raises_face_too_small_error(astronaut_rgb):
    canvas = np.full((512, 512, 3), 128, dtype=np.uint8)
    canvas[100:260, 100:260] = cv2.resize(astronaut_rgb, (160, 160), interpolation=cv2.INTER_AREA)
    with pytest.raises(FaceTooSmallError, match="outer eye corners"):
        detect_landmarks(canvas)


def test_face_too_small_threshold_is_the_callers_choice(astronaut_rgb):
    with pytest.raises(FaceTooSmallError):
        detect_landmarks(astronaut_rgb, min_interocular=100.0)


@pytest.mark.parametrize("side", ["left", "bottom"])
def test_face_partly_out_of_frame_raises_face_cut_off_error(side, grace_rgb):
    x0, y0, x1, y1 = detect_landmarks(grace_rgb).bbox
    if side == "left":
        cut = grace_rgb[:, int(x0 + 0.4 * (x1 - x0)):]
    else:
        cut = grace_rgb[: int(y1 - 0.5 * (y1 - y0))]
    with pytest.raises(FaceCutOffError, match="outside the image"):
        detect_landmarks(np.ascontiguousarray(cut))


def test_path_input_is_accepted(grace_hopper_path, grace_rgb):
    np.testing.assert_array_equal(detect_landmarks(grace_hopper_path).points, detect_landmarks(grace_rgb).points)


def test_detector_returning_another_topology_is_a_model_error(astronaut_rgb):
    class SixtyEightPoints:
        num_points = 68

        def detect(self, image):
            return [np.zeros((68, 3))]

    with pytest.raises(ModelError, match=r"\(68, 3\)"):
        detect_landmarks(astronaut_rgb, detector=SixtyEightPoints())


def test_ibug68_definition_places_each_of_the_68_points():
    defined = set(IBUG68_POINTS) | {i for indices, _ in IBUG68_CURVES for i in indices}
    assert defined == set(range(68))
    assert sorted(i for r in IBUG68_REGIONS.values() for i in r) == list(range(68))
    used = [i for ids in IBUG68_POINTS.values() for i in ids] + [i for _, curve in IBUG68_CURVES for i in curve]
    assert max(used) < 468                                     # no iris points: dlib has none


def test_ibug68_jaw_points_are_equally_spaced_on_each_side_of_the_chin():
    points = np.zeros((478, 3))
    # A face outline bent into a half circle of radius 100 with uneven vertex spacing, and the
    # chin vertex off the circle's middle, as on a turned head.
    from pyfacerig.landmarks import IBUG68_CHIN, IBUG68_JAW_OUTLINE
    angles = np.linspace(np.pi, 0.0, len(IBUG68_JAW_OUTLINE)) ** 1.3 / np.pi ** 0.3
    points[list(IBUG68_JAW_OUTLINE), 0] = 100 * np.cos(angles)
    points[list(IBUG68_JAW_OUTLINE), 1] = 100 * np.sin(angles)
    jaw = mediapipe_to_ibug68(points)[:17]
    np.testing.assert_array_equal(jaw[8], points[IBUG68_CHIN, :2])          # the chin is anatomical
    np.testing.assert_allclose(jaw[[0, -1]], points[[IBUG68_JAW_OUTLINE[0], IBUG68_JAW_OUTLINE[-1]], :2])
    for half in (jaw[:9], jaw[8:]):
        steps = np.linalg.norm(np.diff(half, axis=0), axis=1)
        np.testing.assert_allclose(steps, steps.mean(), rtol=0.02)
    right, left = (np.linalg.norm(np.diff(h, axis=0), axis=1).mean() for h in (jaw[:9], jaw[8:]))
    assert abs(right - left) > 0.05 * right     # the halves differ: the chin is not the outline's midpoint


def test_ibug68_points_follow_their_anatomical_landmarks():
    points = np.random.default_rng(0).normal(size=(478, 3)) * 50
    ibug = mediapipe_to_ibug68(points)
    np.testing.assert_array_equal(ibug[[36, 39, 42, 45]], points[[33, 133, 362, 263], :2])   # eye corners
    np.testing.assert_array_equal(ibug[[8, 30, 48, 54, 62, 66]], points[[152, 4, 61, 291, 13, 14], :2])
    np.testing.assert_allclose(ibug[17], points[[46, 70], :2].mean(axis=0))                  # brow tail


def test_ibug68_is_mirror_consistent_on_a_mirrored_face(astronaut_rgb):
    face = detect_landmarks(astronaut_rgb).points
    mirrored = detect_landmarks(np.ascontiguousarray(astronaut_rgb[:, ::-1])).points
    ibug, ibug_m = mediapipe_to_ibug68(face), mediapipe_to_ibug68(mirrored)
    ibug_m[:, 0] = astronaut_rgb.shape[1] - ibug_m[:, 0]
    # iBUG's left/right pairs, mirror image of each other.
    pairs = list(zip(range(17), range(16, -1, -1))) + list(zip(range(17, 27), range(26, 16, -1))) \
        + [(27, 27), (28, 28), (29, 29), (30, 30)] + list(zip(range(31, 36), range(35, 30, -1))) \
        + list(zip([36, 37, 38, 39, 40, 41], [45, 44, 43, 42, 47, 46])) \
        + list(zip(range(48, 55), range(54, 47, -1))) + list(zip(range(55, 60), range(59, 54, -1))) \
        + list(zip(range(60, 65), range(64, 59, -1))) + list(zip([65, 66, 67], [67, 66, 65]))
    a, b = np.array(pairs).T
    iod = np.linalg.norm(ibug[45] - ibug[36])
    assert np.median(np.linalg.norm(ibug[a] - ibug_m[b], axis=1)) < 0.03 * iod


def test_nearest_landmark_form_of_the_definition_is_near_every_point():
    face = detect_landmarks(np.ascontiguousarray(__import__("skimage").data.astronaut())).points
    ids = ibug68_nearest_landmarks(face)
    iod = np.linalg.norm(face[263, :2] - face[33, :2])
    assert ids.shape == (68,) and ids.max() < 468
    assert np.linalg.norm(face[ids, :2] - mediapipe_to_ibug68(face), axis=1).max() < 0.08 * iod


def test_face_cut_off_below_the_mouth_raises_face_cut_off_error(astronaut_rgb):
    # The astronaut's chin is at y~177; a crop to 150 rows keeps the mouth but loses the chin.
    with pytest.raises(FaceCutOffError, match="outside the image"):
        detect_landmarks(np.ascontiguousarray(astronaut_rgb[:150]))


def test_a_face_missing_only_the_tip_of_its_chin_is_accepted(astronaut_rgb):
    face = detect_landmarks(np.ascontiguousarray(astronaut_rgb[:172]))
    assert 0 < face.outside_area_fraction() < 0.10


def test_one_face_is_meshed_on_the_whole_image_and_several_in_their_own_crops(astronaut_rgb, two_portraits):
    calls = []

    class Recording(MediaPipeLandmarkDetector):
        def _mesh_whole_image(self, image, max_side):
            calls.append("whole")
            return super()._mesh_whole_image(image, max_side)

        def _mesh_in_box(self, image, box):
            calls.append("crop")
            return super()._mesh_in_box(image, box)

    detector = Recording()
    assert len(detector.detect(astronaut_rgb)) == 1 and calls == ["whole"]
    calls.clear()
    assert len(detector.detect(two_portraits)) == 2 and calls == ["crop", "crop"]


def test_face_landmarks_rejects_nan_points():
    points = np.zeros((478, 3))
    points[5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FaceLandmarks(points=points, image_size=(10, 10))


def test_template_stores_the_vertex_form_of_the_same_definition():
    from pyfacerig.templates import load_default

    template = load_default()
    neutral = template.extras["landmarks"]
    frontal = np.column_stack([neutral[:468, 0], -neutral[:468, 1]])
    np.testing.assert_array_equal(template.landmarks68_vertex_ids,
                                  np.asarray(template.landmark_vertex_ids)[ibug68_nearest_landmarks(frontal)])
