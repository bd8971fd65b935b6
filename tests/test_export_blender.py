"""Blender 4.5 (the bpy wheel) imports our .glb and .fbx with every shape key by name, and with
any one shape at weight 1 its evaluated vertex positions equal ours.

Blender runs in a subprocess (this file run as a script) so that its global state never
touches the test process; one subprocess imports every file of a test run.  Blender's world
is Z-up in metres: our glTF point (x, y, z) must appear at (x, -z, y) whatever the file
format and preset.  Importers may split or reorder vertices, so positions are compared as
point sets (nearest neighbour, both ways).
"""
import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial import cKDTree

import engine_export as ee
from test_export_model import TARGET_NAMES, head_size, make_head_asset

BLENDER_FROM_GLTF = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])

FILES = {
    # name: (asset kwargs, writer, preset)
    "unity.glb": ({}, ee.write_gltf, "unity"),
    "skinned.glb": ({"skeleton": True}, ee.write_gltf, "unity"),
    "unity.fbx": ({}, ee.write_fbx, "unity"),
    "unreal.fbx": ({}, ee.write_fbx, "unreal"),
    "skinned.fbx": ({"skeleton": True}, ee.write_fbx, "unity"),
    "jpeg.fbx": ({"jpeg": True}, ee.write_fbx, "unity"),
}


def _blender_main(paths):  # runs in the subprocess
    import bpy

    out = {}
    for path in paths:
        bpy.ops.wm.read_factory_settings(use_empty=True)
        if path.endswith(".fbx"):
            bpy.ops.import_scene.fbx(filepath=path)
        else:
            bpy.ops.import_scene.gltf(filepath=path)
        # Only our mesh carries shape keys (the glTF importer adds a bone-display Icosphere).
        (obj,) = [o for o in bpy.context.scene.objects
                  if o.type == "MESH" and o.data.shape_keys is not None]
        keys = obj.data.shape_keys.key_blocks
        # The clip was imported as an action on the shape keys; note it, then remove it so that
        # it does not override the weights set below.
        anim = obj.data.shape_keys.animation_data
        action = anim.action if anim else None
        fcurves = sorted(fc.data_path for fc in action.fcurves) if action else []
        obj.data.shape_keys.animation_data_clear()
        for key in keys:
            key.value = 0.0
        depsgraph = bpy.context.evaluated_depsgraph_get()

        def evaluated():
            depsgraph.update()
            ev = obj.evaluated_get(depsgraph)
            mesh = ev.to_mesh()
            world = np.array(ev.matrix_world)
            co = np.array([v.co[:] for v in mesh.vertices])
            ev.to_mesh_clear()
            return (co @ world[:3, :3].T + world[:3, 3]).tolist()

        result = {"mesh": obj.data.name, "shape_keys": [k.name for k in keys][1:],
                  "rest": evaluated(), "shaped": {},
                  "images": sorted([list(im.size) for im in bpy.data.images if im.size[0]]),
                  "materials": [s.material.name for s in obj.material_slots if s.material],
                  "animated": fcurves}
        for key in keys[1:]:
            for other in keys[1:]:
                other.value = 0.0
            key.value = 1.0
            result["shaped"][key.name] = evaluated()
        out[path] = result
    sys.stdout.write("\nRESULT " + json.dumps(out) + "\n")
    sys.stdout.flush()


@pytest.fixture(scope="module")
def blender(tmp_path_factory):
    folder = tmp_path_factory.mktemp("blender")
    assets, paths = {}, []
    for name, (kwargs, write, preset) in FILES.items():
        assets[name] = make_head_asset(**kwargs)
        write(assets[name], folder / name, preset=preset)
        paths.append(str(folder / name))
    run = subprocess.run([sys.executable, __file__, *paths], capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    line = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    results = json.loads(line[len("RESULT "):])
    return {name: (assets[name], results[str(folder / name)]) for name in FILES}


def expected_points(asset, target=None):
    """Our vertices (all primitives) in Blender's frame, optionally with one target at 1."""
    prims = asset.meshes[0].primitives
    points = np.concatenate([p.positions for p in prims]).astype(np.float64)
    if target is not None:
        t = list(TARGET_NAMES).index(target)
        points = points + np.concatenate([p.target_positions[t] for p in prims])
    return points @ BLENDER_FROM_GLTF.T


def assert_same_point_sets(theirs, ours, tolerance):
    theirs = np.asarray(theirs)
    d_ours = cKDTree(theirs).query(ours)[0]
    d_theirs = cKDTree(ours).query(theirs)[0]
    assert max(d_ours.max(), d_theirs.max()) <= tolerance, (d_ours.max(), d_theirs.max())


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


if __name__ == "__main__":
    _blender_main(sys.argv[1:])
