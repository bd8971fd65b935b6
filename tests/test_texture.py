"""Texture stage (§3.2.3): rasterizer, BFS diffusion (Fig. 4), face mask, per-texel bake, eyes."""
import cv2
import numpy as np
import pytest

from pyfacerig import fit, texture
from pyfacerig.errors import InvalidInputError
from pyfacerig.landmarks import detect_landmarks
from pyfacerig.templates.topology import coarse_triangles, orient_faces


@pytest.fixture(scope="module")
def astronaut_points(astronaut_rgb):
    return detect_landmarks(astronaut_rgb).points


@pytest.fixture(scope="module")
def detected_mesh(astronaut_points):
    """The astronaut's own 468-vertex face mesh in the camera frame (pixels), CCW toward +Z."""
    camera = fit.image_to_camera(astronaut_points[:468])
    return camera, orient_faces(coarse_triangles(), camera)


def test_rasterize_covers_a_split_square_and_interpolates_pixel_centres():
    points = np.array([[2.0, 2.0], [10.0, 2.0], [10.0, 10.0], [2.0, 10.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    triangle, bary = texture.rasterize(points, faces, (12, 12))
    covered = triangle >= 0
    # Every pixel whose centre lies inside is covered; the fill may add the one-pixel rim it touches.
    assert covered[2:10, 2:10].all()
    assert not covered[:1].any() and not covered[:, :1].any() and not covered[11:].any() and not covered[:, 11:].any()
    rows, cols = np.nonzero(covered[2:10, 2:10])
    rows, cols = rows + 2, cols + 2
    recon = np.einsum("kj,kjc->kc", bary[rows, cols].astype(np.float64), points[faces[triangle[rows, cols]]])
    assert np.allclose(recon, np.column_stack([cols + 0.5, rows + 0.5]), atol=1e-5)


def test_rasterize_with_depth_keeps_the_nearer_triangle():
    points = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]] * 2)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    depth = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])  # second triangle nearer (z toward camera)
    triangle, _ = texture.rasterize(points, faces, (8, 8), depth=depth)
    assert set(np.unique(triangle[triangle >= 0])) == {1}


def test_bfs_diffusion_leaves_known_pixels_and_fills_the_first_ring_with_neighbour_means():
    image = np.zeros((5, 5, 1), np.float32)
    known = np.zeros((5, 5), bool)
    image[2, 1], image[2, 3] = 10.0, 30.0
    known[2, 1] = known[2, 3] = True
    out = texture.bfs_diffuse(image, known)
    assert out[2, 1, 0] == 10.0 and out[2, 3, 0] == 30.0
    assert out[2, 2, 0] == pytest.approx(20.0)  # both known pixels are its neighbours
    assert out[2, 0, 0] == pytest.approx(10.0)  # only the left one is
    assert out[0, 0, 0] == pytest.approx(10.0)  # ring 2 averages its ring-1 neighbours (all 10)


def test_bfs_diffusion_of_the_photo_background_stays_within_face_colours(astronaut_rgb, astronaut_points):
    mask = texture.face_region_mask(astronaut_rgb.shape[:2], astronaut_points)
    out = texture.bfs_diffuse(astronaut_rgb, mask)
    assert np.isfinite(out).all()
    face = astronaut_rgb[mask].astype(np.float32)
    # Every diffused value is a mean of face colours, so it lies within their per-channel range.
    assert (out[~mask] >= face.min(axis=0) - 1e-3).all() and (out[~mask] <= face.max(axis=0) + 1e-3).all()
    assert np.array_equal(out[mask], face)


def test_bfs_diffusion_rejects_a_mask_of_the_wrong_size(astronaut_rgb):
    with pytest.raises(InvalidInputError, match="known mask"):
        texture.bfs_diffuse(astronaut_rgb, np.ones((4, 4), bool))


def test_face_mask_holds_the_nose_and_not_the_image_corners(astronaut_rgb, astronaut_points):
    mask = texture.face_region_mask(astronaut_rgb.shape[:2], astronaut_points)
    nose = np.round(astronaut_points[4, :2]).astype(int)
    assert mask[nose[1], nose[0]]
    assert not mask[0, 0] and not mask[-1, -1] and not mask[0, -1] and not mask[-1, 0]


def test_parser_labels_decide_the_face_mask():
    labels = np.zeros((6, 6), np.uint8)
    labels[1:3, 1:3] = 1   # skin
    labels[3, 3] = 17      # hair
    labels[4, 4] = 12      # upper lip
    mask = texture.face_mask_from_labels(labels, (6, 6))
    assert mask[1, 1] and mask[4, 4] and not mask[3, 3] and not mask[0, 0]


def test_baked_texel_of_a_vertex_has_the_photo_colour_at_its_projection(astronaut_rgb, astronaut_points,
                                                                         detected_mesh):
    camera, faces = detected_mesh
    # A frontal orthographic UV layout of the detected mesh itself: u, v = normalised image x, y.
    xy = astronaut_points[:468, :2]
    uvs = (xy - xy.min(axis=0)) / np.ptp(xy, axis=0).max()
    mask = texture.face_region_mask(astronaut_rgb.shape[:2], astronaut_points)
    atlas, stats = texture.bake_skin(astronaut_rgb, camera, faces, uvs, np.arange(468), mask, size=256)
    assert atlas.shape == (256, 256, 3) and atlas.dtype == np.uint8
    assert stats["visible_fraction"] > 0.9
    for vertex in (151, 9, 205, 425):  # forehead, glabella, both cheeks: smooth skin well inside the face
        u, v = np.floor(uvs[vertex] * 256).astype(int)
        x, y = np.floor(xy[vertex]).astype(int)
        photo = cv2.blur(astronaut_rgb, (5, 5))[y, x].astype(int)
        assert np.abs(atlas[v, u].astype(int) - photo).max() < 25, vertex


def test_bake_is_deterministic(astronaut_rgb, astronaut_points, detected_mesh):
    camera, faces = detected_mesh
    xy = astronaut_points[:468, :2]
    uvs = (xy - xy.min(axis=0)) / np.ptp(xy, axis=0).max()
    mask = texture.face_region_mask(astronaut_rgb.shape[:2], astronaut_points)
    first = texture.encode_png(texture.bake_skin(astronaut_rgb, camera, faces, uvs, np.arange(468), mask, 128)[0])
    second = texture.encode_png(texture.bake_skin(astronaut_rgb, camera, faces, uvs, np.arange(468), mask, 128)[0])
    assert first == second


def test_iris_colour_is_darker_than_the_skin(astronaut_rgb, astronaut_points):
    iris = texture.iris_colour(astronaut_rgb, astronaut_points).astype(int)
    cheek = astronaut_rgb[int(astronaut_points[205, 1]), int(astronaut_points[205, 0])].astype(int)
    assert iris.sum() < 0.7 * cheek.sum()


def test_eyeball_texture_puts_pupil_iris_and_sclera_by_angle_from_the_optical_axis():
    # A UV sphere looking toward +Z, unwrapped by longitude/latitude.
    lat, lon = np.meshgrid(np.linspace(0.01, np.pi - 0.01, 24), np.linspace(-np.pi, np.pi, 48), indexing="ij")
    vertices = np.stack([np.sin(lat) * np.sin(lon), np.cos(lat), np.sin(lat) * np.cos(lon)], -1).reshape(-1, 3)
    uvs = np.stack([(lon.ravel() + np.pi) / (2 * np.pi), lat.ravel() / np.pi], 1)
    index = np.arange(24 * 48).reshape(24, 48)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    faces = np.concatenate([np.stack([a, c, b], -1).reshape(-1, 3), np.stack([b, c, d], -1).reshape(-1, 3)])
    iris = np.array([40, 90, 160], np.uint8)
    image = texture.eyeball_texture(vertices, faces, uvs, np.zeros(3), np.radians(30), iris, size=128)
    front = image[64, 64].astype(int)      # lon 0, lat 90 deg: the optical axis -> pupil
    ring = image[64, 64 + 9].astype(int)   # ~25 deg off axis -> iris
    back = image[64, 2].astype(int)        # behind the eye -> sclera
    assert front.max() < 40 and ring[2] > ring[0] and back.min() > 200
