"""Rig stage (§3.3): deformation transfer of the template's expressions, parts following the face."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pyfacerig import fit, rig
from pyfacerig.landmarks import detect_landmarks
from pyfacerig.templates import load_default



@pytest.fixture(scope="module")
def template():
    return load_default()


@pytest.fixture(scope="module")
def astronaut_world(astronaut_rgb):
    """The astronaut's detected mesh in a metric world frame."""
    camera = fit.image_to_camera(detect_landmarks(astronaut_rgb).points[:468])
    return (camera - camera.mean(axis=0)) * (0.063 / np.linalg.norm(camera[263] - camera[33]))


def test_eye_similarity_recovers_a_scaled_and_shifted_eye_opening(astronaut_world):
    contour = astronaut_world[rig.EYE_CONTOURS["eye_left"]]
    centre = contour.mean(axis=0)
    moved = 1.3 * (contour - centre) + centre + [0.002, -0.001, 0.003]
    scale, translation = rig.eye_similarity(contour, moved)
    assert scale == pytest.approx(1.3)
    assert np.allclose(scale * contour + translation, moved)


def test_mouth_affine_reproduces_an_exact_affine_map_of_the_lips(astronaut_world):
    lips = astronaut_world[rig.MOUTH_REGION]
    true_a = np.array([[1.2, 0.05, 0.0], [0.0, 0.9, 0.1], [0.02, 0.0, 1.05]])
    a, b = rig.mouth_affine(lips, lips @ true_a.T + [0.0, 0.01, 0.0], stiffness=1e-9)
    assert np.allclose(a, true_a, atol=1e-5) and np.allclose(b, [0.0, 0.01, 0.0], atol=1e-6)


def test_mouth_affine_keeps_depth_when_the_points_are_planar(astronaut_world):
    lips = astronaut_world[rig.MOUTH_REGION] * [1.0, 1.0, 0.0]  # flattened: depth unobservable
    a, _ = rig.mouth_affine(lips, 1.1 * lips)
    assert a[2, 2] == pytest.approx(1.1, rel=0.05)


def test_transfer_onto_the_template_itself_returns_the_template_shapes(template):
    skin = template.parts["skin"]
    deltas = rig.transfer_skin_shapes(skin.vertices, skin.shape_deltas, skin.vertices, skin.faces)
    scale = np.abs(skin.shape_deltas).max()
    assert np.abs(deltas - skin.shape_deltas).max() < 0.02 * scale


def test_transfer_onto_a_rotated_scaled_template_rotates_and_scales_the_shapes(template):
    # DT is not rotation covariant; the alignment step has to make the result covariant.
    skin = template.parts["skin"]
    rotation = Rotation.from_euler("xyz", [5, 20, -3], degrees=True).as_matrix()
    target = 1.2 * skin.vertices @ rotation.T + [0.01, 0.0, 0.02]
    deltas = rig.transfer_skin_shapes(skin.vertices, skin.shape_deltas, target, skin.faces)
    expected = 1.2 * skin.shape_deltas.astype(np.float64) @ rotation.T
    assert np.abs(deltas - expected).max() < 0.03 * np.abs(expected).max()


def test_eyeballs_stay_spheres_and_rotate_about_their_new_centres(template, astronaut_world):
    skin = template.parts["skin"]
    ids = np.asarray(template.landmark_vertex_ids)
    fitted = skin.vertices.copy()
    fitted[ids] = fit.similarity_procrustes(astronaut_world, skin.vertices[ids]).to_camera(astronaut_world)
    parts = rig.follow_parts(template, fitted)
    for name, centre in (("eye_left", template.eye_centers[0]), ("eye_right", template.eye_centers[1])):
        vertices, deltas = parts[name]
        radii_before = np.linalg.norm(template.parts[name].vertices - centre, axis=1)
        scale, translation = rig.eye_similarity(skin.vertices[ids[rig.EYE_CONTOURS[name]]],
                                                fitted[ids[rig.EYE_CONTOURS[name]]])
        radii_after = np.linalg.norm(vertices - (scale * centre + translation), axis=1)
        assert np.allclose(radii_after, scale * radii_before)
        assert np.allclose(deltas, scale * template.parts[name].shape_deltas, atol=1e-7)


def test_lower_teeth_still_open_with_jaw_open(template, astronaut_world):
    skin = template.parts["skin"]
    parts = rig.follow_parts(template, skin.vertices)  # fitted == template: identity maps
    jaw_open = template.shape_names.index("jawOpen")
    vertices, deltas = parts["teeth_lower"]
    assert np.allclose(vertices, template.parts["teeth_lower"].vertices, atol=1e-6)
    assert deltas[jaw_open, :, 1].mean() < 0  # moves down


def test_eyeball_irises_land_on_the_detected_irises(template, astronaut_rgb):
    points = detect_landmarks(astronaut_rgb).points
    skin = template.parts["skin"]
    ids = np.asarray(template.landmark_vertex_ids)
    coarse = fit.coarse_fit(skin.vertices, ids, points, identity_basis=template.identity_basis)
    fitted = fit.fine_fit(coarse.vertices, skin.faces, coarse.pose, ids, points[:468, :2])
    iris = {"eye_left": points[473, :2], "eye_right": points[468, :2]}
    parts = rig.follow_parts(template, fitted, coarse.pose, iris)
    for name in ("eye_left", "eye_right"):
        vertices, _ = parts[name]
        front = vertices[np.argmax(vertices[:, 2])]  # the eyeball's front pole looks toward +Z
        assert np.linalg.norm(fit.project(front[None], coarse.pose)[0] - iris[name]) < 1.0  # pixels
