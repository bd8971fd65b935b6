"""Blender 4.5 (the bpy wheel) imports our .glb and .fbx with every shape key by name, and with
any one shape at weight 1 its evaluated vertex positions equal ours.

Blender runs in a subprocess (tests/_readers.py) so that its global state never touches the
test process; one subprocess imports every file of a test run.  Blender's world is Z-up in
metres: our glTF point (x, y, z) must appear at (x, -z, y) whatever the file format and
preset.  Importers may split or reorder vertices, so positions are compared as
point sets (nearest neighbour, both ways).
"""
import numpy as np
import pytest

import engine_export as ee
from _readers import BLENDER_FROM_GLTF, assert_same_point_sets, blender_import
from test_export_model import TARGET_NAMES, head_size, make_head_asset

FILES = {
    # name: (asset kwargs, writer, preset)
    "unity.glb": ({}, ee.write_gltf, "unity"),
    "skinned.glb": ({"skeleton": True}, ee.write_gltf, "unity"),
    "unity.fbx": ({}, ee.write_fbx, "unity"),
    "unreal.fbx": ({}, ee.write_fbx, "unreal"),
    "skinned.fbx": ({"skeleton": True}, ee.write_fbx, "unity"),
    "jpeg.fbx": ({"jpeg": True}, ee.write_fbx, "unity"),
}


@pytest.fixture(scope="module")
def blender(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blender")
    assets, paths = {}, []
    for name, (kwargs, write, preset) in FILES.items():
        assets[name] = make_head_asset(**kwargs)
        write(assets[name], folder / name, preset=preset)
        paths.append(str(folder / name))
    results = blender_import(paths)
    return {name: (assets[name], results[str(folder / name)]) for name in FILES}


def expected_points(asset, target=None):
    """Our vertices (all primitives) in Blender's frame, optionally with one target at 1."""
    prims = asset.meshes[0].primitives
    points = np.concatenate([p.positions for p in prims]).astype(np.float64)
    if target is not None:
        t = list(TARGET_NAMES).index(target)
        points = points + np.concatenate([p.target_positions[t] for p in prims])
    return points @ BLENDER_FROM_GLTF.T


@pytest.mark.parametrize("name", sorted(FILES))
def test_blender_imports_every_shape_key_by_name(blender, name):
    _, result = blender[name]
    assert result["mesh"] == "head"
    assert result["shape_keys"] == list(TARGET_NAMES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_blender_rest_positions_equal_ours(blender, name):
    asset, result = blender[name]
    assert_same_point_sets(result["rest"], expected_points(asset), 1e-5 * head_size(asset))


@pytest.mark.parametrize("target", TARGET_NAMES)
@pytest.mark.parametrize("name", sorted(FILES))
def test_blender_positions_with_one_shape_at_weight_one_equal_ours(blender, name, target):
    asset, result = blender[name]
    assert_same_point_sets(result["shaped"][target], expected_points(asset, target),
                           1e-5 * head_size(asset))


@pytest.mark.parametrize("name", sorted(FILES))
def test_blender_imports_the_clip_as_shape_key_animation(blender, name):
    _, result = blender[name]
    assert result["animated"] == sorted(f'key_blocks["{n}"].value' for n in TARGET_NAMES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_blender_finds_both_materials_and_the_embedded_texture(blender, name):
    _, result = blender[name]
    assert sorted(result["materials"]) == ["eye", "skin"]
    assert result["images"] == [[64, 64]]
