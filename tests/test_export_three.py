"""three.js (npm three 0.187, pinned in tests/js) loads our files under node: GLTFLoader for
.glb/.gltf, FBXLoader for .fbx.  It keeps every morph name (morphTargetDictionary), its morphed
positions equal ours, the texture arrives, and the clip drives morphTargetInfluences.

three.js leaves FBX units alone and turns a Z-up FBX upright, so the Unreal file shows up
Y-up in centimetres.  Loaders split vertices per primitive (glTF) or per polygon corner (FBX),
so positions are compared as point sets.
"""
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

import engine_export as ee
from test_export_model import TARGET_NAMES, head_size, make_head_asset

JS = Path(__file__).parent / "js"

FILES = {
    # name: (asset kwargs, writer, preset, scale of three's world vs. our metres)
    "head.glb": ({}, ee.write_gltf, "unity", 1.0),
    "head.gltf": ({}, ee.write_gltf, "unity", 1.0),
    "skinned.glb": ({"skeleton": True}, ee.write_gltf, "unity", 1.0),
    "unity.fbx": ({}, ee.write_fbx, "unity", 1.0),
    "unreal.fbx": ({}, ee.write_fbx, "unreal", 100.0),
    "skinned.fbx": ({"skeleton": True}, ee.write_fbx, "unity", 1.0),
    "jpeg.glb": ({"jpeg": True}, ee.write_gltf, "unity", 1.0),
    "jpeg.fbx": ({"jpeg": True}, ee.write_fbx, "unity", 1.0),
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    out = {}
    for name, (kwargs, write, preset, scale) in FILES.items():
        folder = tmp_path_factory.mktemp(name.replace(".", "_"))
        asset = make_head_asset(**kwargs)
        write(asset, folder / name, preset=preset)
        run = subprocess.run(["node", str(JS / "three_load.mjs"), str(folder / name)],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        out[name] = (asset, scale, json.loads(run.stdout))
    return out


def ours(asset, scale, target=None):
    prims = asset.meshes[0].primitives
    points = np.concatenate([p.positions for p in prims]).astype(np.float64)
    if target is not None:
        t = TARGET_NAMES.index(target)
        points = points + np.concatenate([p.target_positions[t] for p in prims])
    return points * scale


def theirs(result, key, target=None):
    parts = [m[key] if target is None else m[key][target] for m in result["meshes"]]
    return np.concatenate([np.asarray(p) for p in parts])


def assert_same_point_sets(a, b, tolerance):
    distance = max(cKDTree(a).query(b)[0].max(), cKDTree(b).query(a)[0].max())
    assert distance <= tolerance, distance


@pytest.mark.parametrize("name", sorted(FILES))
def test_three_keeps_every_morph_name_in_order(loaded, name):
    _, _, result = loaded[name]
    assert result["meshes"], "no mesh loaded"
    for mesh in result["meshes"]:
        assert mesh["targetNames"] == list(TARGET_NAMES)
        assert mesh["influences"] == [0] * len(TARGET_NAMES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_three_positions_with_each_morph_applied_equal_ours(loaded, name):
    asset, scale, result = loaded[name]
    tolerance = 1e-5 * head_size(asset) * scale
    assert_same_point_sets(theirs(result, "rest"), ours(asset, scale), tolerance)
    for target in TARGET_NAMES:
        assert_same_point_sets(theirs(result, "shaped", target), ours(asset, scale, target),
                               tolerance)


@pytest.mark.parametrize("name", sorted(FILES))
def test_three_loads_the_embedded_texture_on_the_skin_material(loaded, name):
    _, _, result = loaded[name]
    materials = {m["name"]: m["map"] for mesh in result["meshes"] for m in mesh["materials"]}
    assert materials == {"skin": [64, 64], "eye": None}


def test_three_gltf_loader_reads_morph_normals(loaded):
    _, _, result = loaded["head.glb"]
    assert all(m["hasMorphNormals"] for m in result["meshes"])


@pytest.mark.parametrize("name", sorted(FILES))
def test_three_clip_drives_the_morph_influences_with_our_weights(loaded, name):
    asset, _, result = loaded[name]
    (clip,) = result["animations"]
    assert clip["name"] == "talk"
    expected = asset.animations[0]
    for track in clip["tracks"]:
        assert track["name"].split(".")[1].startswith("morphTargetInfluences")
        np.testing.assert_allclose(track["times"], expected.times, atol=1e-6)
        values = np.asarray(track["values"])
        if name.endswith(".fbx"):  # FBXLoader: one track per morph, "...[index]"
            index = int(track["name"].split("[")[1].rstrip("]"))
            np.testing.assert_allclose(values, expected.weights[:, index], atol=1e-6)
        else:  # GLTFLoader: one track per mesh, frame-major
            np.testing.assert_allclose(values.reshape(expected.weights.shape), expected.weights,
                                       atol=1e-6)
