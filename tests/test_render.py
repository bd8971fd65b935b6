"""The CPU rasterizer (MediaPipe reading expressions back from renders: test_build_semantics.py)."""
import numpy as np
import pytest

from pyfacerig import render
from pyfacerig.errors import InvalidInputError
from pyfacerig.templates import load_default

def square(z=0.0, size=0.1, colour=(255, 0, 0)):
    v = np.array([[-size, -size, z], [size, -size, z], [size, size, z], [-size, size, z]])
    return render.Mesh(v, np.array([[0, 1, 2], [0, 2, 3]]), color=colour)


# ----------------------------------------------------------------------------- rasterizer
def test_rasterized_triangle_covers_its_area():
    screen = np.array([[10.0, 10.0], [90.0, 10.0], [10.0, 90.0]])
    tri, _ = render.rasterize(screen, np.ones(3), np.array([[0, 1, 2]]), 100, 100)
    assert abs((tri == 0).sum() - 0.5 * 80 * 80) < 80          # within one pixel row of the edge


def test_nearer_surface_wins_the_z_buffer_whatever_the_order():
    cam = render.Camera(distance=1.0, fov_deg=30)
    near, far = square(0.1, colour=(0, 255, 0)), square(-0.1, colour=(255, 0, 0))
    for meshes in ([near, far], [far, near]):
        img = render.render(meshes, cam, 64, 64, ambient=1.0)
        assert tuple(img[32, 32]) == (0, 255, 0)


def test_back_faces_are_culled():
    cam = render.Camera(distance=1.0, fov_deg=30)
    flipped = square()
    flipped.faces = flipped.faces[:, ::-1]
    img = render.render([flipped], cam, 32, 32, background=(7, 7, 7))
    assert (img == 7).all()


def test_uv_interpolation_is_perspective_correct():
    """A plane tilted away from the camera: the texture's halfway line is not the screen's."""
    v = np.array([[-0.2, -0.2, 0.3], [0.2, -0.2, 0.3], [0.2, 0.2, -0.5], [-0.2, 0.2, -0.5]])
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], float)
    tex = np.zeros((2, 2, 3), np.uint8)
    tex[0] = 255                                               # top half of the texture white
    mesh = render.Mesh(v, np.array([[0, 1, 2], [0, 2, 3]]), uv, tex)
    cam = render.Camera(distance=1.0, fov_deg=60)
    img = render.render([mesh], cam, 200, 200, ambient=1.0, background=(0, 0, 255))
    column = img[:, 100, 0].astype(int)
    rows = np.flatnonzero(img[:, 100, 2] != 255)
    top, bottom = rows.min(), rows.max()
    boundary = top + np.argmax(column[top:bottom] < 128)
    # the far (upper) half is foreshortened, so the texture midline sits above the screen midpoint
    assert boundary < 0.5 * (top + bottom) - 5


def test_render_refuses_bad_meshes():
    bad = square()
    bad.vertices = bad.vertices.copy()
    bad.vertices[0, 0] = np.nan
    with pytest.raises(InvalidInputError, match="finite"):
        render.render([bad], render.Camera(), 16, 16)
    with pytest.raises(InvalidInputError, match="behind the camera"):
        render.render([square(z=5.0)], render.Camera(distance=1.0), 16, 16)


def test_posing_the_template_refuses_unknown_shape_names():
    with pytest.raises(InvalidInputError, match="mouthSmile'"):
        render.template_meshes(load_default(), {"mouthSmile": 1.0})


def test_bake_writes_vertex_attributes_into_the_atlas():
    uvs = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    atlas, covered = render.bake(uvs, np.array([[0, 1, 2]]), np.array([[1.0], [0.0], [0.0]]), 64)
    assert covered[2, 2] and not covered[60, 60]
    assert atlas[0, 0, 0] > 0.95 and atlas[0, 60, 0] < 0.1
