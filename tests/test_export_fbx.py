"""FBX output read back by ufbx 0.0.5, an independent FBX reader.

ufbx runs in a subprocess (this file run as a script): version 0.0.5 crashes when a scene is
freed, so the probe prints what it read as JSON and leaves with os._exit(0).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import engine_export as ee
from test_export_model import TARGET_NAMES, make_head_asset


def probe(path) -> dict:
    out = subprocess.run([sys.executable, __file__, str(path)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _probe_main(path):  # runs in the subprocess
    import ufbx
    # The 0.0.5 bindings crash when a wrapper outlives the wrapper it came from, so every
    # object read from the scene is kept alive in `keep` until os._exit.
    keep = []

    def k(obj):
        keep.append(obj)
        return obj

    vec = lambda v: [v.x, v.y, v.z]
    mat = lambda m: [vec(m.c0), vec(m.c1), vec(m.c2), vec(m.c3)]
    scene = k(ufbx.load_file(path))
    settings, metadata = k(scene.settings), k(scene.metadata)
    axes = k(settings.axes)
    result = {
        "unit_meters": settings.unit_meters,
        "axes": {"right": int(axes.right), "up": int(axes.up), "front": int(axes.front)},
        "warnings": [k(w).description for w in k(metadata.warnings)],
        "meshes": [], "channels": [], "clusters": [], "nodes": {}, "stacks": [],
        "materials": [k(m).name for m in k(scene.materials)],
        "videos": [k(v).relative_filename for v in k(scene.videos)],
    }
    for mesh in k(scene.meshes):
        result["meshes"].append({"name": k(mesh).name, "num_faces": mesh.num_faces,
                                 "vertices": [vec(v) for v in k(mesh.vertices)]})
    channels = []
    for deformer in k(scene.blend_deformers):
        for channel in k(k(deformer).channels):
            channels.append(k(channel))
            shapes = []
            for key in k(channel.keyframes):
                shape = k(k(key).shape)
                shapes.append({"name": shape.name, "target_weight": key.target_weight,
                               "vertices": list(k(shape.offset_vertices)),
                               "positions": [vec(v) for v in k(shape.position_offsets)],
                               "normals": [vec(v) for v in k(shape.normal_offsets)]})
            result["channels"].append({"name": channel.name, "weight": channel.weight,
                                       "shapes": shapes})
    for skin in k(scene.skin_deformers):
        for cluster in k(k(skin).clusters):
            result["clusters"].append({
                "bone": k(k(cluster).bone_node).name, "vertices": list(k(cluster.vertices)),
                "weights": list(k(cluster.weights)), "bind_to_world": mat(k(cluster.bind_to_world))})
    for node in k(scene.nodes):
        parent = k(k(node).parent)
        if node.name:
            result["nodes"][node.name] = {"parent": parent.name if parent else None,
                                          "world": mat(k(node.node_to_world))}
    for stack in k(scene.anim_stacks):
        anim = k(k(stack).anim)
        times = np.linspace(stack.time_begin, stack.time_end, 7)
        result["stacks"].append({
            "name": stack.name, "begin": stack.time_begin, "end": stack.time_end,
            "times": times.tolist(),
            "weights": [[ufbx.evaluate_blend_weight(anim, c, float(t)) for c in channels]
                        for t in times]})
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)


def merged(asset, attr):
    """The head mesh's primitives concatenated, as the FBX writer must lay them out."""
    arrays = [np.asarray(getattr(p, attr), np.float64) for p in asset.meshes[0].primitives]
    return np.concatenate(arrays, axis=-2)


TO_UNREAL = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]) * 100  # Y-up metres -> Z-up cm


def _written(tmp_path_factory, name, preset, skeleton=False):
    """The head asset written as FBX with ``preset`` and read back: (asset, ufbx probe)."""
    asset = make_head_asset(skeleton=skeleton)
    path = tmp_path_factory.mktemp(name) / "head.fbx"
    ee.write_fbx(asset, path, preset=preset)
    return asset, probe(path)


@pytest.fixture(scope="module")
def unity(tmp_path_factory):
    return _written(tmp_path_factory, "unity", "unity")


@pytest.fixture(scope="module")
def unreal(tmp_path_factory):
    return _written(tmp_path_factory, "unreal", "unreal")


@pytest.fixture(scope="module")
def skinned(tmp_path_factory):
    return _written(tmp_path_factory, "skinned", "unity", skeleton=True)


def test_ufbx_reads_without_warnings(unity, unreal, skinned):
    for _, scene in (unity, unreal, skinned):
        assert scene["warnings"] == []


def test_unity_preset_is_y_up_metres_with_our_vertices(unity):
    asset, scene = unity
    assert scene["unit_meters"] == pytest.approx(1.0)
    assert scene["axes"] == {"right": 0, "up": 2, "front": 4}  # +X, +Y, +Z
    (mesh,) = scene["meshes"]
    assert mesh["name"] == "head" and mesh["num_faces"] == 768
    np.testing.assert_allclose(mesh["vertices"], merged(asset, "positions"), atol=1e-7)


def test_unreal_preset_is_z_up_centimetres_with_a_root_joint(unreal):
    asset, scene = unreal
    assert scene["unit_meters"] == pytest.approx(0.01)
    assert scene["axes"] == {"right": 0, "up": 4, "front": 3}  # +X, +Z, -Y
    np.testing.assert_allclose(scene["meshes"][0]["vertices"],
                               merged(asset, "positions") @ TO_UNREAL.T, atol=1e-5)
    (cluster,) = scene["clusters"]
    assert cluster["bone"] == "root"
    assert cluster["vertices"] == list(range(len(scene["meshes"][0]["vertices"])))
    assert cluster["weights"] == [1.0] * len(cluster["vertices"])


def test_every_target_is_one_channel_by_name_with_one_shape_at_full_weight(unity):
    _, scene = unity
    assert [c["name"] for c in scene["channels"]] == list(TARGET_NAMES)
    for channel in scene["channels"]:
        (shape,) = channel["shapes"]
        assert shape["name"] == channel["name"]
        assert shape["target_weight"] == 1.0
        assert channel["weight"] == 0.0


@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_shape_deltas_are_ours_on_exactly_the_moved_vertices(unity, unreal, preset):
    asset, scene = {"unity": unity, "unreal": unreal}[preset]
    basis = np.eye(3) if preset == "unity" else TO_UNREAL
    deltas = merged(asset, "target_positions") @ basis.T
    normal_deltas = merged(asset, "target_normals") @ (basis / np.abs(basis).max()).T
    for t, channel in enumerate(scene["channels"]):
        shape = channel["shapes"][0]
        moved = np.flatnonzero(np.any(merged(asset, "target_positions")[t] != 0, axis=1) |
                               np.any(merged(asset, "target_normals")[t] != 0, axis=1))
        if len(moved):
            assert shape["vertices"] == moved.tolist()
            np.testing.assert_allclose(shape["positions"], deltas[t][moved], atol=1e-6)
            np.testing.assert_allclose(shape["normals"], normal_deltas[t][moved], atol=1e-6)
        else:  # tongueOut moves nothing: one zero delta, never an empty shape
            assert channel["name"] == "tongueOut"
            assert shape["vertices"] == [0] and shape["positions"] == [[0.0, 0.0, 0.0]]


def test_animation_curves_give_our_weights_at_every_time(unity):
    asset, scene = unity
    (stack,) = scene["stacks"]
    clip = asset.animations[0]
    assert stack["name"] == "talk"
    assert (stack["begin"], stack["end"]) == pytest.approx((clip.times[0], clip.times[-1]))
    expected = np.stack([np.interp(stack["times"], clip.times, clip.weights[:, t])
                         for t in range(len(TARGET_NAMES))], axis=1)
    np.testing.assert_allclose(stack["weights"], expected, atol=1e-6)


def test_materials_and_embedded_texture_are_attached(unity):
    _, scene = unity
    assert scene["materials"] == ["skin", "eye"]
    assert scene["videos"] == ["skin_albedo.png"]


def test_skeleton_becomes_joint_hierarchy_with_clusters_and_bind_matrices(skinned):
    asset, scene = skinned
    nodes = scene["nodes"]
    assert nodes["skull"]["parent"] == "root" and nodes["jaw"]["parent"] == "skull"
    np.testing.assert_allclose(np.array(nodes["jaw"]["world"])[3], [0, -0.01, 0.01], atol=1e-9)
    clusters = {c["bone"]: c for c in scene["clusters"]}
    assert sorted(clusters) == ["jaw", "skull"]  # root influences nothing and gets no cluster
    weights = np.zeros((len(scene["meshes"][0]["vertices"]), 3))
    for j, name in enumerate(("root", "skull", "jaw")):
        if name in clusters:
            weights[clusters[name]["vertices"], j] = clusters[name]["weights"]
    expected = np.zeros_like(weights)
    joint_weights = merged(asset, "joint_weights")
    joints = np.concatenate([p.joints for p in asset.meshes[0].primitives])
    for slot in range(4):
        np.add.at(expected, (np.arange(len(joints)), joints[:, slot]), joint_weights[:, slot])
    np.testing.assert_allclose(weights, expected, atol=1e-6)
    np.testing.assert_allclose(np.array(clusters["jaw"]["bind_to_world"])[3], [0, -0.01, 0.01],
                               atol=1e-9)


@pytest.mark.parametrize("preset", sorted(ee.PRESETS))
def test_meshes_without_materials_or_targets_are_read_back(tmp_path, preset):
    from test_export_gltf import two_meshes_without_materials
    ee.write_fbx(two_meshes_without_materials(), tmp_path / "small.fbx", preset=preset)
    scene = probe(tmp_path / "small.fbx")
    assert scene["warnings"] == [] and scene["materials"] == []
    assert [(m["name"], m["num_faces"]) for m in scene["meshes"]] == [("quad", 2), ("tetra", 4)]
    (channel,) = scene["channels"]
    assert channel["name"] == "stretch" and channel["shapes"][0]["vertices"] == [3]
    assert [s["name"] for s in scene["stacks"]] == ["pulse"]
    assert np.asarray(scene["stacks"][0]["weights"])[-1, 0] == pytest.approx(1.0)


if __name__ == "__main__":
    _probe_main(sys.argv[1])
