"""The CPU rasterizer, and MediaPipe reading the template's expressions back from renders."""
import numpy as np
import pytest

from pyfacerig import render
from pyfacerig.errors import InvalidInputError
from pyfacerig.templates import load_default
from pyfacerig.templates.neutral import detect

EAR_POINTS = {"left": (263, 387, 385, 362, 380, 373), "right": (33, 160, 158, 133, 153, 144)}


def ear(points, side):
    p1, p2, p3, p4, p5, p6 = (points[i] for i in EAR_POINTS[side])
    return (np.linalg.norm(p2 - p6) + np.linalg.norm(p3 - p5)) / (2 * np.linalg.norm(p1 - p4))


def mar(points):
    return np.linalg.norm(points[13] - points[14]) / np.linalg.norm(points[78] - points[308])


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


# ----------------------------------------------------------------------------- MediaPipe on renders
@pytest.fixture(scope="module")
def detected(astronaut_rgb):
    """MediaPipe landmarks of renders of the template textured with the astronaut portrait."""
    template = load_default()
    texture = render.portrait_skin_texture(template, astronaut_rgb, detect(astronaut_rgb), 512)
    cam = render.face_camera(template)
    out = {}
    for name in (None, "eyeBlinkLeft", "jawOpen", "mouthSmileLeft"):
        img = render.render(render.template_meshes(template, {name: 1.0} if name else None, texture),
                            cam, 512, 512)
        lm = detect(img)
        assert lm is not None, f"MediaPipe found no face in the render of {name or 'neutral'}"
        out[name or "neutral"] = lm[:, :2]
    return out


def test_mediapipe_sees_the_left_eye_close_in_the_blink_render(detected):
    n0, blink = detected["neutral"], detected["eyeBlinkLeft"]
    assert ear(blink, "left") < 0.4 * ear(n0, "left")
    assert ear(blink, "right") > 0.85 * ear(n0, "right")


def test_mediapipe_sees_the_mouth_open_in_the_jaw_open_render(detected):
    assert mar(detected["jawOpen"]) - mar(detected["neutral"]) > 0.3


def test_mediapipe_sees_the_left_corner_rise_in_the_smile_render(detected):
    n0, smile = detected["neutral"], detected["mouthSmileLeft"]
    face_px = np.linalg.norm(n0[10] - n0[152])
    left_rise = (smile[291, 1] - n0[291, 1]) / face_px         # model axes: +y is up
    right_rise = (smile[61, 1] - n0[61, 1]) / face_px
    # the mesh raises the corner by 0.15 W = 7.5 mm, about 0.048 of this forehead-to-chin span
    assert left_rise > 0.03
    assert left_rise > 3 * abs(right_rise)
