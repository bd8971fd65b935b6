"""glTF output: the Khronos glTF-Validator (npm gltf-validator, run by node) finds nothing to
report above "info" in any variant the writer produces, and the file carries what engines
look for (target names, min/max, sparse targets, frame-major weights)."""
import json
import subprocess
from pathlib import Path

import numpy as np
import pygltflib
import pytest

import engine_export as ee
from test_export_model import TARGET_NAMES, make_head_asset

JS = Path(__file__).parent / "js"

VARIANTS = {
    # name: (make_head_asset kwargs, write_gltf kwargs)
    "plain": ({}, {}),
    "dense": ({}, {"sparse": "never"}),
    "skeleton": ({"skeleton": True}, {}),
    "unreal-root-joint": ({}, {"preset": "unreal"}),
    "no-clip": ({"clip": False}, {}),
    "jpeg-texture": ({"jpeg": True}, {}),
}


def validate(path: Path) -> dict:
    out = subprocess.run(["node", str(JS / "validate.mjs"), str(path)], capture_output=True,
                         text=True, check=True, timeout=120)
    return json.loads(out.stdout)


def write(tmp_path, variant, suffix):
    asset_kw, write_kw = VARIANTS[variant]
    path = tmp_path / f"head.{suffix}"
    ee.write_gltf(make_head_asset(**asset_kw), path, **write_kw)
    return path


def accessor_array(gltf: pygltflib.GLTF2, blob: bytes, index: int) -> np.ndarray:
    """Read a float accessor back, applying sparse substitution (test-side reader)."""
    acc = gltf.accessors[index]
    width = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}[acc.type]
    out = np.zeros((acc.count, width), dtype=np.float32)
    if acc.bufferView is not None:
        view = gltf.bufferViews[acc.bufferView]
        out[:] = np.frombuffer(blob, np.float32, acc.count * width,
                               view.byteOffset + (acc.byteOffset or 0)).reshape(-1, width)
    if acc.sparse is not None:
        iv = gltf.bufferViews[acc.sparse.indices.bufferView]
        dtype = {5121: np.uint8, 5123: np.uint16, 5125: np.uint32}[acc.sparse.indices.componentType]
        idx = np.frombuffer(blob, dtype, acc.sparse.count, iv.byteOffset)
        vv = gltf.bufferViews[acc.sparse.values.bufferView]
        out[idx] = np.frombuffer(blob, np.float32, acc.sparse.count * width,
                                 vv.byteOffset).reshape(-1, width)
    return out


@pytest.mark.parametrize("suffix", ["glb", "gltf"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_khronos_validator_reports_no_errors_and_no_warnings(tmp_path, variant, suffix):
    report = validate(write(tmp_path, variant, suffix))
    issues = report["issues"]
    serious = [m for m in issues["messages"] if m["severity"] <= 1]
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, serious
    info = report["info"]
    assert info["hasMorphTargets"] and info["hasTextures"] and info["drawCallCount"] == 2
    skinned = bool(VARIANTS[variant][0].get("skeleton")) or variant == "unreal-root-joint"
    assert info["hasSkins"] == skinned
    assert info["animationCount"] == (0 if variant == "no-clip" else 1)


def test_gltf_writes_its_buffer_next_to_it(tmp_path):
    path = write(tmp_path, "plain", "gltf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.bin", "head.gltf"]
    assert json.loads(path.read_text())["buffers"][0]["uri"] == "head.bin"


def test_target_names_are_in_mesh_extras_and_in_every_primitive(tmp_path):
    gltf = pygltflib.GLTF2.load(write(tmp_path, "plain", "glb"))
    mesh = gltf.meshes[0]
    assert mesh.extras["targetNames"] == list(TARGET_NAMES)
    assert [p.extras["targetNames"] for p in mesh.primitives] == [list(TARGET_NAMES)] * 2
    assert mesh.weights == [0.0] * len(TARGET_NAMES)


def test_every_position_accessor_has_min_and_max_including_morph_targets(tmp_path):
    gltf = pygltflib.GLTF2.load(write(tmp_path, "plain", "glb"))
    positions = []
    for prim in gltf.meshes[0].primitives:
        positions.append(prim.attributes.POSITION)
        positions += [t["POSITION"] for t in prim.targets]
    assert len(positions) == 2 * (1 + len(TARGET_NAMES))
    assert all(gltf.accessors[i].min and gltf.accessors[i].max for i in positions)


def test_auto_mode_stores_local_targets_sparse_and_reads_back_exactly(tmp_path):
    asset = make_head_asset()
    gltf = pygltflib.GLTF2.load(write(tmp_path, "plain", "glb"))
    blob = gltf.binary_blob()
    skin = gltf.meshes[0].primitives[0]
    sparse = [gltf.accessors[t["POSITION"]].sparse is not None for t in skin.targets]
    # jawOpen moves most of the head (dense is smaller); the local shapes and the empty one are
    # sparse: 1-byte indices would not reach all vertices, so a sparse entry costs 2 + 12 bytes.
    moved = [int(np.any(d != 0, axis=1).sum()) for d in asset.meshes[0].primitives[0].target_positions]
    n = len(asset.meshes[0].primitives[0].positions)
    assert sparse == [max(k, 1) * 14 + 2 < n * 12 for k in moved]
    assert sparse == [False, True, True, True, True, True]
    for t, target in enumerate(skin.targets):
        np.testing.assert_array_equal(accessor_array(gltf, blob, target["POSITION"]),
                                      asset.meshes[0].primitives[0].target_positions[t])


@pytest.mark.parametrize("variant", ["plain", "dense"])
def test_empty_targets_share_one_accessor_and_read_back_as_zero(tmp_path, variant):
    asset = make_head_asset()
    prim = asset.meshes[0].primitives[0]
    prim.target_positions[2] = 0.0          # a shape that does not move this part
    prim.target_normals[2] = 0.0
    prim.target_positions[4] = 0.0
    ee.write_gltf(asset, tmp_path / "head.glb", **VARIANTS[variant][1])
    gltf = pygltflib.GLTF2.load(tmp_path / "head.glb")
    blob = gltf.binary_blob()
    targets = gltf.meshes[0].primitives[0].targets
    empty = {targets[2]["POSITION"], targets[2]["NORMAL"], targets[4]["POSITION"]}
    assert len(empty) == 1                  # one accessor for every empty target of the part
    shared = gltf.accessors[empty.pop()]
    assert shared.min == [0.0, 0.0, 0.0] and shared.max == [0.0, 0.0, 0.0]
    for t in (2, 4):
        assert not accessor_array(gltf, blob, targets[t]["POSITION"]).any()
    # a moving target keeps its own accessor
    assert targets[3]["POSITION"] not in (targets[2]["POSITION"], targets[1]["POSITION"])
    report = validate(tmp_path / "head.glb")
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0


def test_sparse_file_is_smaller_than_dense(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert write(tmp_path / "a", "plain", "glb").stat().st_size < \
        write(tmp_path / "b", "dense", "glb").stat().st_size


def test_animation_samples_weights_frame_major_with_linear_interpolation(tmp_path):
    asset = make_head_asset()
    gltf = pygltflib.GLTF2.load(write(tmp_path, "plain", "glb"))
    anim = gltf.animations[0]
    assert (anim.name, anim.channels[0].target.path, anim.channels[0].target.node) == \
        ("talk", "weights", 0)
    sampler = anim.samplers[0]
    assert sampler.interpolation == "LINEAR"
    out = accessor_array(gltf, gltf.binary_blob(), sampler.output)
    np.testing.assert_array_equal(out.reshape(4, len(TARGET_NAMES)), asset.animations[0].weights)


def test_texture_is_embedded_as_png_in_the_glb(tmp_path):
    asset = make_head_asset()
    gltf = pygltflib.GLTF2.load(write(tmp_path, "plain", "glb"))
    image = gltf.images[0]
    view = gltf.bufferViews[image.bufferView]
    data = gltf.binary_blob()[view.byteOffset:view.byteOffset + view.byteLength]
    assert image.mimeType == "image/png"
    assert data == asset.materials[0].base_color_texture.data
    assert gltf.materials[0].pbrMetallicRoughness.baseColorTexture.index == 0


def two_meshes_without_materials() -> ee.Asset:
    """A morph-less quad and a tetrahedron with one target: the writer's smallest cases."""
    quad = ee.Primitive(positions=np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32),
                        normals=np.tile(np.array([0, 0, 1], np.float32), (4, 1)),
                        indices=np.array([[0, 1, 2], [0, 2, 3]]))
    p = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    tetra = ee.Primitive(positions=p, normals=(p - 0.25) / np.linalg.norm(p - 0.25, axis=1)[:, None],
                         indices=np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]),
                         target_positions=np.array([[[0, 0, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0.5]]],
                                                   np.float32))
    return ee.Asset(meshes=[ee.Mesh("quad", [quad]),
                            ee.Mesh("tetra", [tetra], target_names=("stretch",))],
                    animations=[ee.AnimationClip("pulse", np.array([0.0, 1.0]),
                                                 np.array([[0.0], [1.0]]), mesh=1)])


@pytest.mark.parametrize("preset", sorted(ee.PRESETS))
def test_validator_accepts_meshes_without_materials_uvs_or_targets(tmp_path, preset):
    path = tmp_path / "small.glb"
    ee.write_gltf(two_meshes_without_materials(), path, preset=preset)
    issues = validate(path)["issues"]
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"]


def test_unknown_sparse_mode_raises_before_writing(tmp_path):
    with pytest.raises(ee.ExportError, match="sparse"):
        ee.write_gltf(make_head_asset(), tmp_path / "head.glb", sparse="always")
    assert list(tmp_path.iterdir()) == []
