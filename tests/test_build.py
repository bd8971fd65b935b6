"""build() end to end on the real bundled portraits: a valid, rigged, textured asset and the
paper-style quality metrics (Pan et al. Table 1) against dlib's 68-point predictor."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygltflib
import pytest
from PIL import Image

from pyfacerig import fit, texture
from pyfacerig.build import STAGES, Avatar, build
from pyfacerig.errors import ExportError, ImageReadError, InvalidInputError, MultipleFacesError, NoFaceError
from pyfacerig.evaluation import landmark_error_by_region, photometric_error
from pyfacerig.landmarks import detect_landmarks, mediapipe_to_ibug68
from pyfacerig.render import rasterize, sample_bilinear
from pyfacerig.templates import ARKIT_SHAPE_NAMES

JS = Path(__file__).parent / "js"
REGIONS = ("eyes", "nose", "brows", "mouth", "contour")


def render_in_photo(avatar: Avatar, vertices: np.ndarray, template, shape) -> tuple[np.ndarray, np.ndarray]:
    """The textured skin drawn over the photo with the fitted pose (orthographic, Eq. 12).

    Uses the template engineer's z-buffered rasterizer (pyfacerig.render), independent of the
    texture stage's own.  Returns (H, W, 3) uint8 and the (H, W) coverage mask.
    """
    skin = template.parts["skin"]
    camera = avatar.pose.to_camera(skin.split(np.asarray(vertices, np.float64)))   # on the UV vertices
    screen = np.column_stack([camera[:, 0], -camera[:, 1]])
    depth = camera[:, 2] - camera[:, 2].min() + 1.0  # larger is nearer, kept positive
    triangle, bary = rasterize(screen, depth, np.asarray(skin.export_faces, np.int64), shape[1], shape[0])
    atlas = np.asarray(Image.open(io.BytesIO(avatar.texture)).convert("RGB"))
    covered = triangle >= 0
    uv = np.einsum("kj,kjc->kc", bary[covered], skin.uvs[skin.export_faces[triangle[covered]]].astype(np.float64))
    image = np.zeros((*shape, 3), np.uint8)
    image[covered] = np.clip(np.round(sample_bilinear(atlas, uv)), 0, 255).astype(np.uint8)
    return image, covered


# ----------------------------------------------------------------------------- the asset
@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_glb_passes_the_khronos_validator(built, name):
    avatar, folder = built[name]
    report = json.loads(subprocess.run(["node", str(JS / "validate.mjs"), str(folder / f"{name}.glb")],
                                       capture_output=True, text=True, check=True, timeout=120).stdout)
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0, report["issues"]


def test_glb_has_the_52_arkit_shapes_by_name_and_the_baked_texture(built):
    avatar, folder = built["astronaut"]
    gltf = pygltflib.GLTF2.load(str(folder / "astronaut.glb"))
    (mesh,) = gltf.meshes
    assert tuple(mesh.extras["targetNames"]) == ARKIT_SHAPE_NAMES
    assert all(len(p.targets) == 52 for p in mesh.primitives)
    assert len(mesh.primitives) == 6  # skin (with the mouth interior), 2 eyes, upper/lower teeth, tongue
    blob = gltf.binary_blob()
    view = gltf.bufferViews[gltf.images[0].bufferView]
    embedded = blob[view.byteOffset:view.byteOffset + view.byteLength]
    assert embedded == avatar.texture and Image.open(io.BytesIO(embedded)).size == (1024, 1024)


def test_avatar_reports_every_stage_and_the_files_it_wrote(built):
    avatar, folder = built["grace_hopper"]
    assert set(avatar.timings) == set(STAGES)
    assert [p.name for p in avatar.paths] == ["grace_hopper.glb", "grace_hopper.json"]
    assert sorted(p.name for p in folder.iterdir()) == ["grace_hopper.glb", "grace_hopper.json"]


def test_sidecar_holds_image_size_pose_timings_and_both_landmark_sets(built, portraits):
    avatar, folder = built["grace_hopper"]
    sidecar = json.loads((folder / "grace_hopper.json").read_text())
    height, width = portraits["grace_hopper"].shape[:2]
    assert sidecar["image_size"] == [width, height]
    assert np.allclose(sidecar["pose"]["rotation"], avatar.pose.rotation)
    assert set(sidecar["timings_s"]) == set(STAGES) and all(v >= 0 for v in sidecar["timings_s"].values())
    for key in ("landmarks68.coarse", "landmarks68.fine"):
        points = np.array(sidecar[key])
        assert points.shape == (68, 2)
        assert (points >= 0).all() and (points[:, 0] < width).all() and (points[:, 1] < height).all()


def test_same_input_gives_a_byte_identical_glb(built, portraits, template, tmp_path):
    avatar, folder = built["astronaut"]
    again = build(portraits["astronaut"], out=tmp_path / "again.glb", template=template)
    assert (tmp_path / "again.glb").read_bytes() == (folder / "astronaut.glb").read_bytes()
    assert again.texture == avatar.texture


def test_landmarks68_are_the_one_definition_read_off_the_projected_model(built, template):
    avatar, _ = built["astronaut"]
    skin = avatar.posed_skin.astype(np.float64)
    ids = np.asarray(template.landmark_vertex_ids)[:468]
    np.testing.assert_allclose(avatar.landmarks68["fine"], mediapipe_to_ibug68(fit.project(skin[ids], avatar.pose)),
                               atol=1e-3)
    np.testing.assert_allclose(avatar.landmarks68["coarse"],
                               mediapipe_to_ibug68(fit.project(avatar.coarse_skin[ids].astype(np.float64), avatar.pose)),
                               atol=1e-3)


def test_fbx_and_unreal_preset_on_request(portraits, template, tmp_path):
    avatar = build(portraits["grace_hopper"], out=tmp_path / "npc.fbx", formats=("glb", "fbx"),
                   preset="unreal", template=template)
    assert [p.name for p in avatar.paths] == ["npc.glb", "npc.fbx", "npc.json"]
    assert (tmp_path / "npc.fbx").read_bytes()[:18] == b"Kaydara FBX Binary"


def test_without_out_nothing_is_written_and_no_export_is_timed(portraits, template):
    avatar = build(portraits["astronaut"], template=template)
    assert avatar.paths == () and "export" not in avatar.timings
    assert avatar.parts["skin"].shape_deltas.shape == (52, len(template.parts["skin"].vertices), 3)


# ----------------------------------------------------------------------------- bad input
def test_a_photo_without_a_face_raises_no_face_and_writes_nothing(astronaut_rgb, template, tmp_path):
    with pytest.raises(NoFaceError):
        build(astronaut_rgb[300:, 300:], out=tmp_path / "x.glb", template=template)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_bytes_raise_image_read_error(grace_hopper_path, template, tmp_path):
    with pytest.raises(ImageReadError):
        build(grace_hopper_path.read_bytes()[:2048], out=tmp_path / "x.glb", template=template)
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destination_raises_export_error_and_leaves_nothing(astronaut_rgb, template, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="file"):
        build(astronaut_rgb, out=blocker / "x.glb", template=template)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize("options, word", [({"formats": ("obj",)}, "formats"), ({"preset": "godot"}, "preset"),
                                           ({"style": "anime"}, "style"), ({"refine_eyes": "maybe"}, "refine_eyes")])
def test_unknown_options_are_refused_before_any_work(options, word, astronaut_rgb):
    with pytest.raises(InvalidInputError, match=word):
        build(astronaut_rgb, **options)


# ----------------------------------------------------------------------------- quality
# On the whole-head template the astronaut's coarse eyes sit nearer dlib's than MediaPipe's do
# (1.44 against 1.59 % IOD; 0.09 px on her 60-px IOD): a strict xfail, so the suite notices
# when it passes.  docs/pipeline.md, "Quality".
ASTRONAUT_EYES = pytest.mark.xfail(strict=True, reason="astronaut eyes: coarse 1.44 vs fine 1.59 % IOD on the head template")


@pytest.mark.parametrize("name", [pytest.param("astronaut", marks=ASTRONAUT_EYES), "grace_hopper"])
def test_fine_fit_beats_coarse_fit_in_every_region(built, dlib68, name):
    avatar, _ = built[name]
    coarse = landmark_error_by_region(avatar.landmarks68["coarse"], dlib68[name])
    fine = landmark_error_by_region(avatar.landmarks68["fine"], dlib68[name])
    worse = {r: (round(coarse[r], 4), round(fine[r], 4)) for r in REGIONS if not fine[r] < coarse[r]}
    assert not worse, f"(coarse, fine) error / IOD where fine is not better: {worse}"


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_mean_fine_landmark_error_is_below_three_percent_of_the_interocular_distance(built, dlib68, name):
    avatar, _ = built[name]
    assert landmark_error_by_region(avatar.landmarks68["fine"], dlib68[name])["mean"] < 0.03


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper"])
def test_textured_model_reproduces_the_photo_better_than_the_coarse_geometry(built, portraits, template, name):
    avatar, _ = built[name]
    image = portraits[name]
    points = detect_landmarks(image).points
    face = texture.face_region_mask(image.shape[:2], points, erosion=0.05)
    fine, fine_cover = render_in_photo(avatar, avatar.posed_skin, template, image.shape[:2])
    coarse, coarse_cover = render_in_photo(avatar, avatar.coarse_skin, template, image.shape[:2])
    mask = face & fine_cover & coarse_cover
    fine_error = photometric_error(fine, image, mask)
    coarse_error = photometric_error(coarse, image, mask)
    # Manhattan distance of [0, 1] RGB: 0.15 is about 13 grey levels per channel.
    assert fine_error < 0.15 and fine_error < coarse_error, (fine_error, coarse_error)


def test_two_faces_are_refused_unless_the_caller_picks_the_largest(portraits, template):
    pair = np.ascontiguousarray(np.concatenate([portraits["astronaut"], portraits["grace_hopper"][:512]], axis=1))
    with pytest.raises(MultipleFacesError):
        build(pair, template=template)
    avatar = build(pair, template=template, face="largest")
    assert avatar.landmarks68["fine"][:, 0].min() > 512  # Grace Hopper's face, on the right, is larger


class _OvalParser:
    """A FaceParser (pyfacerig.networks protocol) labelling the MediaPipe face oval as skin and the
    eye contours as eyes; records the images it was asked to parse."""

    def __init__(self):
        self.calls = []

    def parse(self, image):
        import cv2
        from pyfacerig.landmarks import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR

        self.calls.append(image.shape)
        points = detect_landmarks(image).points
        labels = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(labels, [np.round(points[texture.FACE_OVAL, :2]).astype(np.int32)], 1)
        for contour, label in ((RIGHT_EYE_CONTOUR, 5), (LEFT_EYE_CONTOUR, 4)):
            cv2.fillPoly(labels, [np.round(points[list(contour), :2]).astype(np.int32)], label)
        return labels


def test_a_face_parser_is_used_for_eyes_and_texture_mask(portraits, template):
    parser = _OvalParser()
    avatar = build(portraits["astronaut"], template=template, parser=parser)
    assert len(parser.calls) >= 1 and all(shape == portraits["astronaut"].shape for shape in parser.calls)
    assert len(avatar.texture) > 0


# ----------------------------------------------------------------------------- engine readers
@pytest.fixture(scope="module")
def both_formats(portraits, template, tmp_path_factory):
    folder = tmp_path_factory.mktemp("both")
    avatar = build(portraits["grace_hopper"], out=folder / "npc.glb", formats=("glb", "fbx"), template=template)
    return avatar, folder


@pytest.mark.parametrize("suffix", ["glb", "fbx"])
def test_three_js_loads_every_part_with_the_52_shapes_and_the_skin_texture(both_formats, suffix):
    _, folder = both_formats
    run = subprocess.run(["node", str(JS / "three_load.mjs"), str(folder / f"npc.{suffix}")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["meshes"]
    for mesh in result["meshes"]:
        assert mesh["targetNames"] == list(ARKIT_SHAPE_NAMES)
    maps = {m["name"]: m["map"] for mesh in result["meshes"] for m in mesh["materials"]}
    assert maps["skin"] == [1024, 1024] and maps["eye"] == [256, 256]


def test_ufbx_reads_the_fbx_with_one_channel_per_arkit_shape(both_formats):
    from test_export_fbx import probe

    avatar, folder = both_formats
    result = probe(folder / "npc.fbx")
    assert result["warnings"] == []
    assert [c["name"] for c in result["channels"]] == list(ARKIT_SHAPE_NAMES)
    vertices = sum(len(p.uvs) for p in avatar.parts.values())      # the exported (UV-split) vertices
    assert sum(len(m["vertices"]) for m in result["meshes"]) == vertices


def test_package_level_build_is_the_function_even_after_the_submodule_is_imported(tmp_path):
    import pyfacerig

    # A fresh interpreter, so the import order is exactly the one under test: the submodule
    # first, then the package attribute of the same name, called twice.
    script = (
        "import pyfacerig.build, pyfacerig\n"
        "from skimage import data\n"
        "first = pyfacerig.build(data.astronaut())\n"
        "second = pyfacerig.build(data.astronaut())\n"
        "print(type(first).__name__, first.texture == second.texture)\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path(pyfacerig.__file__).parents[1])})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["Avatar", "True"]
