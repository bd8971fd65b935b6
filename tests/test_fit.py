"""Coarse fit (§3.1) and Laplacian fine fit (§3.2.2, Eq. 10-11) on real detected face meshes."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from pyfacerig import fit
from pyfacerig.errors import InvalidInputError
from pyfacerig.image_io import load_image
from pyfacerig.landmarks import detect_landmarks
from pyfacerig.templates.topology import coarse_triangles, orient_faces


@pytest.fixture(scope="module")
def astronaut_points(astronaut_rgb):
    return detect_landmarks(astronaut_rgb).points


@pytest.fixture(scope="module")
def grace_mesh(grace_hopper_path):
    """Grace Hopper's detected 468-vertex mesh as a stand-in template: world frame, metres."""
    points = detect_landmarks(load_image(grace_hopper_path)).points
    camera = fit.image_to_camera(points[:468])
    world = (camera - camera.mean(axis=0)) * (0.063 / np.linalg.norm(camera[263] - camera[33]))
    return world, orient_faces(coarse_triangles(), world)


def _residual(vertices, pose, points):
    return np.linalg.norm(fit.project(vertices[:468], pose) - points[:468, :2], axis=1).mean()


def test_image_and_camera_frames_differ_by_the_y_and_z_flip(astronaut_points):
    camera = fit.image_to_camera(astronaut_points)
    assert np.allclose(fit.camera_to_image(camera), astronaut_points[:, :2])
    # MediaPipe's nose tip is nearer the camera than the eye corners: larger camera z.
    assert camera[4, 2] > camera[33, 2] and camera[4, 2] > camera[263, 2]


def test_similarity_procrustes_recovers_a_known_pose(grace_mesh):
    world, _ = grace_mesh
    rotation = Rotation.from_euler("xyz", [10, -25, 5], degrees=True).as_matrix()
    target = 2500.0 * world @ rotation.T + [256.0, -240.0, 10.0]
    pose = fit.similarity_procrustes(world, target)
    assert np.allclose(pose.rotation, rotation, atol=1e-9)
    assert pose.scale == pytest.approx(2500.0)
    assert np.allclose(pose.to_world(pose.to_camera(world)), world)


def test_coarse_fit_of_a_posed_copy_finds_the_pose_and_no_shape_change(grace_mesh):
    world, _ = grace_mesh
    rotation = Rotation.from_euler("y", 20, degrees=True).as_matrix()
    camera = 3000.0 * world @ rotation.T + [300.0, -200.0, 0.0]
    image_points = camera * [1.0, -1.0, -1.0]
    coarse = fit.coarse_fit(world, np.arange(468), image_points)
    assert np.allclose(coarse.pose.rotation, rotation, atol=1e-6)
    assert np.abs(coarse.shape_coefficients).max() < 1e-6
    assert _residual(coarse.vertices, coarse.pose, image_points) < 1e-6


def test_coarse_shape_modes_fit_another_face_better_than_pose_alone(grace_mesh, astronaut_points):
    world, _ = grace_mesh
    rigid = fit.similarity_procrustes(world, fit.image_to_camera(astronaut_points[:468]))
    coarse = fit.coarse_fit(world, np.arange(468), astronaut_points)
    assert _residual(coarse.vertices, coarse.pose, astronaut_points) < 0.9 * _residual(world, rigid, astronaut_points)


def test_coarse_fit_stays_low_dimensional_and_leaves_residual_for_the_fine_fit(grace_mesh, astronaut_points):
    world, _ = grace_mesh
    coarse = fit.coarse_fit(world, np.arange(468), astronaut_points)
    assert coarse.shape_coefficients.shape == (fit.shape_basis(world, np.arange(468)).shape[2],)
    assert _residual(coarse.vertices, coarse.pose, astronaut_points) > 0.5  # pixels: not an exact fit


def test_fine_fit_puts_anchors_on_the_landmarks_at_their_coarse_depth(grace_mesh, astronaut_points):
    world, faces = grace_mesh
    coarse = fit.coarse_fit(world, np.arange(468), astronaut_points)
    fitted = fit.fine_fit(coarse.vertices, faces, coarse.pose, np.arange(468), astronaut_points[:468, :2],
                          anchor_weight=1e4)
    coarse_err = _residual(coarse.vertices, coarse.pose, astronaut_points)
    fine_err = _residual(fitted, coarse.pose, astronaut_points)
    assert fine_err < 0.1 * coarse_err and fine_err < 0.3
    # Eq. 11: an anchor keeps its coarse vertex's camera depth.
    depth_change = coarse.pose.to_camera(fitted)[:, 2] - coarse.pose.to_camera(coarse.vertices)[:, 2]
    assert np.abs(depth_change).max() < 0.02 * np.ptp(astronaut_points[:468, 1])


def test_fine_fit_moves_only_the_anchors_that_moved(grace_mesh):
    world, faces = grace_mesh
    pose = fit.Pose(np.eye(3), np.array([256.0, -256.0, 0.0]), 2000.0)
    pixels = fit.project(world, pose)
    pixels[1] += [3.0, 0.0]  # nudge the nose tip 3 px to the image right
    fitted = fit.fine_fit(world, faces, pose, np.arange(468), pixels, anchor_weight=1e4)
    moved = np.linalg.norm(fitted - world, axis=1) * pose.scale
    assert moved[1] == pytest.approx(3.0, abs=0.05)
    assert np.delete(moved, 1).max() < 0.05


def test_coarse_fit_rejects_nan_landmarks(grace_mesh, astronaut_points):
    world, _ = grace_mesh
    points = astronaut_points.copy()
    points[10, 0] = np.nan
    with pytest.raises(InvalidInputError, match="landmarks"):
        fit.coarse_fit(world, np.arange(468), points)


def test_coarse_fit_rejects_too_few_landmarks(grace_mesh, astronaut_points):
    world, _ = grace_mesh
    with pytest.raises(InvalidInputError, match="468"):
        fit.coarse_fit(world, np.arange(468), astronaut_points[:68])


def test_fine_fit_rejects_mismatched_anchor_arrays(grace_mesh, astronaut_points):
    world, faces = grace_mesh
    pose = fit.Pose(np.eye(3), np.zeros(3), 1000.0)
    with pytest.raises(InvalidInputError, match="anchor_ids"):
        fit.fine_fit(world, faces, pose, np.arange(10), astronaut_points[:12, :2])


# ----------------------------------------------------------------------------- folds
def _two_sheets(gap=0.001, step=0.0005, n=20):
    """Two unconnected square grids, ``gap`` metres apart in z (a lid under its fold)."""
    u, v = np.meshgrid(np.arange(n) * step, np.arange(n) * step)
    sheet = np.column_stack([u.ravel(), v.ravel(), np.zeros(n * n)])
    return np.concatenate([sheet, sheet + [0.0, 0.0, gap]]), n * n


def test_fold_smoother_moves_touching_sheets_together_and_keeps_a_uniform_motion():
    vertices, half = _two_sheets()
    smoother = fit.fold_smoother(vertices, 0.004)
    assert np.allclose(np.asarray(smoother.sum(axis=1)).ravel(), 1.0)
    # one sheet pushed down through the other: after averaging they move nearly alike
    motion = np.zeros_like(vertices)
    motion[:half, 2] = 0.002
    smoothed = smoother @ motion
    centre = half // 2 + 10
    assert abs(smoothed[centre, 2] - smoothed[half + centre, 2]) < 0.2 * 0.002
    # a motion shared by everything is left as it is
    assert np.allclose(smoother @ np.tile([0.001, -0.002, 0.003], (len(vertices), 1)), [0.001, -0.002, 0.003])


def test_fold_smoother_keeps_frozen_vertices_and_never_mixes_two_sides():
    vertices, half = _two_sheets()
    motion = np.zeros_like(vertices)
    motion[:half, 1] = 0.003            # the upper lip opens away from the lower one
    sides = np.repeat([1, 2], half)
    assert np.allclose(fit.fold_smoother(vertices, 0.004, sides=sides) @ motion, motion)
    frozen = np.zeros(len(vertices), bool)
    frozen[half:] = True
    smoothed = fit.fold_smoother(vertices, 0.004, frozen=frozen) @ motion
    assert np.allclose(smoothed[half:], 0.0) and np.allclose(smoothed[:half], motion[:half])


def test_anchor_spread_restores_an_anchor_and_fades_within_the_radius():
    vertices, _ = _two_sheets(n=30)
    anchor = 15 * 30 + 15
    spread = fit.anchor_spread(vertices, [anchor], 0.004)
    field = spread @ np.array([[0.0, 0.0, 0.001]])
    assert np.isclose(field[anchor, 2], 0.001)
    distance = np.linalg.norm(vertices - vertices[anchor], axis=1)
    assert np.all(field[distance >= 0.004] == 0.0)
    assert np.all(np.diff(field[np.argsort(distance), 2]) <= 1e-15)      # fades monotonically


def test_pocket_follower_carries_the_skin_motion_into_the_mouth_sac(template):
    skin = template.parts["skin"]
    pocket = np.asarray(template.regions["mouth_interior"], dtype=bool)
    follower = fit.pocket_follower(skin.vertices, skin.faces, pocket, 0.015, 0.015, 0.02)
    vertices = np.asarray(skin.vertices, dtype=np.float64)
    # a motion shared by everything is left as it is, the pocket's own motion included
    uniform = np.tile([0.001, -0.002, 0.003], (len(vertices), 1))
    assert np.allclose(follower @ uniform, uniform)
    # a sac swung 15 mm sideways on its own (the Laplacian's lever) goes back to the skin's
    # motion, here a small turn about the mouth, beyond the 20 mm blend behind the lips: to within
    # what the skin's mean a few cm away misses of a turn (it is not a rigid motion of the sac)
    # and what the deep sac's interpolation takes from the blend's edge (measured: 1.6 mm at
    # most, median 0.9); nowhere further off than it was; nothing outside the pocket changes
    centre = vertices[pocket].mean(axis=0)
    turn = (vertices - centre) @ (Rotation.from_euler("y", 1, degrees=True).as_matrix().T - np.eye(3))
    swung = turn.copy()
    swung[pocket] += [0.015, 0.0, 0.0]
    followed = follower @ swung
    assert np.array_equal(followed[~pocket], swung[~pocket])
    error = np.linalg.norm(followed[pocket] - turn[pocket], axis=1)
    from scipy.spatial import cKDTree
    faces = np.asarray(skin.faces)
    rim = np.unique(faces[pocket[faces].any(axis=1) & ~pocket[faces].all(axis=1)])
    behind, _ = cKDTree(vertices[rim[pocket[rim]]]).query(vertices[pocket])     # <= along the sac
    assert error.max() <= 0.015 + 1e-12
    assert error[behind > 0.02].max() < 0.15 * 0.015 and np.median(error[behind > 0.02]) < 0.08 * 0.015



def test_coarse_fit_reuses_a_templates_system_and_gets_the_same_fit(template, astronaut_points):
    """The template-only normal equations are kept between builds for read-only template arrays:
    a second fit (cached) and a fit on writable copies (never cached) agree to the bit."""
    skin = template.parts["skin"]
    ids = np.asarray(template.landmark_vertex_ids, dtype=np.int64)
    basis = np.asarray(template.identity_basis)[:40]
    basis.setflags(write=False)
    fit._COARSE_SYSTEMS.clear()
    kwargs = dict(identity_basis=basis, expression_basis=skin.shape_deltas, closed_pairs=[(13, 14)])
    first = fit.coarse_fit(skin.vertices, ids, astronaut_points, **kwargs)
    assert len(fit._COARSE_SYSTEMS) == 1
    second = fit.coarse_fit(skin.vertices, ids, astronaut_points, **kwargs)
    copies = fit.coarse_fit(np.array(skin.vertices), ids, astronaut_points, identity_basis=np.array(basis),
                            expression_basis=np.array(skin.shape_deltas), closed_pairs=[(13, 14)])
    assert len(fit._COARSE_SYSTEMS) == 1
    for other in (second, copies):
        assert other.vertices.tobytes() == first.vertices.tobytes()
        assert other.expression_weights.tobytes() == first.expression_weights.tobytes()
    # another regularisation is another system, not the cached one
    looser = fit.coarse_fit(skin.vertices, ids, astronaut_points, regularization=0.1, **kwargs)
    assert len(fit._COARSE_SYSTEMS) == 2 and not np.array_equal(looser.vertices, first.vertices)


def test_fine_fit_holds_the_fixed_vertices_at_their_coarse_positions(grace_mesh):
    vertices, faces = grace_mesh
    pose = fit.Pose(rotation=np.eye(3), scale=1000.0, translation=np.array([256.0, 256.0, 0.0]))
    anchors = np.arange(0, 200)
    pixels = fit.project(vertices[anchors], pose) + 5.0            # every anchor moved 5 px
    fixed = np.arange(300, 468)
    held = fit.fine_fit(vertices, faces, pose, anchors, pixels, fixed_ids=fixed)
    free = fit.fine_fit(vertices, faces, pose, anchors, pixels)
    assert np.abs(held[fixed] - vertices[fixed]).max() < 0.2 * np.abs(free[fixed] - vertices[fixed]).max()
    with pytest.raises(InvalidInputError, match="overlap"):
        fit.fine_fit(vertices, faces, pose, anchors, pixels, fixed_ids=[5, 300])
