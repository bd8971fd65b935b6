"""A take written into an avatar as an animation clip: glTF morph-weight and joint-rotation
curves, FBX morph curves, retargeting by name, and Blender playing the result (the bone curves
are read back by every reader in test_animate_bones.py)."""
import json
import subprocess
import sys

import numpy as np
import pytest

import engine_export as ee
from _readers import khronos_validate
from pyfacerig.animate import Take, write_take
from pyfacerig.animate.avatar_file import load_avatar_glb, read_accessor, read_glb
from pyfacerig.animate.clip import avatar_asset, head_rotation_matrices, _quat_to_matrix
from pyfacerig.errors import ExportError, InvalidInputError, TakeError
from pyfacerig.templates import ARKIT_SHAPE_NAMES
from test_export_model import make_head_asset


def wave_take(frames=45, fps=30.0):
    """Each shape k follows its own smooth curve; the head turns +-30 degrees, the eyes look around."""
    t = np.arange(frames)[:, None] / fps
    k = np.arange(52)[None]
    weights = 0.5 + 0.5 * np.sin(2 * np.pi * (0.3 + 0.02 * k) * t + k)
    head = np.zeros((frames, 6))
    head[:, 0] = np.radians(30) * np.sin(2 * np.pi * 0.5 * t[:, 0])
    head[:, 1] = np.radians(10) * np.cos(2 * np.pi * 0.4 * t[:, 0])
    head[:, 2] = np.radians(5) * np.sin(2 * np.pi * 0.7 * t[:, 0])
    gaze = np.radians(15) * np.stack([np.sin(t[:, 0]), np.cos(t[:, 0]), np.sin(t[:, 0]), -np.cos(t[:, 0])], 1)
    return Take(weights, head, gaze, fps, {})


@pytest.fixture(scope="module")
def avatar_glb(built):
    _, folder = built["astronaut"]
    return folder / "astronaut.glb"


@pytest.fixture(scope="module")
def rigged_avatar(avatar_glb, tmp_path_factory):
    """The astronaut avatar with a neck -> head -> eye_l/eye_r skeleton (the skeleton issue's names);
    the head's rest rotation is not the identity, to check curves are relative to the rest pose."""
    asset = avatar_asset(load_avatar_glb(avatar_glb))
    for primitive in asset.meshes[0].primitives:     # drop the avatar's own skin: these joints bind nothing
        primitive.joints = primitive.joint_weights = None
    tilt = np.array([np.sin(np.radians(10) / 2), 0, 0, np.cos(np.radians(10) / 2)])   # 10 deg about X
    asset.skeleton = ee.Skeleton(
        joint_names=("neck", "head", "eye_l", "eye_r"), parents=np.array([-1, 0, 1, 1]),
        translations=np.array([[0, -0.08, -0.03], [0, 0.06, 0.0], [0.032, 0.09, 0.05], [-0.032, 0.09, 0.05]]),
        rotations=np.array([[0, 0, 0, 1.0], tilt, [0, 0, 0, 1], [0, 0, 0, 1]]))
    path = tmp_path_factory.mktemp("rigged") / "rigged.glb"
    ee.write_gltf(asset, path)
    return path


def clip_arrays(path, name="take"):
    """(JSON document, {(node, path): (times, values)}) of clip ``name`` read from the file's bytes."""
    document, blob = read_glb(path.read_bytes())
    (animation,) = [a for a in document["animations"] if a["name"] == name]
    channels = {}
    for channel in animation["channels"]:
        sampler = animation["samplers"][channel["sampler"]]
        channels[(channel["target"]["node"], channel["target"]["path"])] = (
            read_accessor(document, blob, sampler["input"]), read_accessor(document, blob, sampler["output"]))
    return document, channels


# ----------------------------------------------------------------------------- glTF
def test_glb_clip_holds_the_takes_weights_for_every_target_by_name(avatar_glb, tmp_path):
    take = wave_take()
    report = write_take(avatar_glb, take, tmp_path / "anim.glb")
    gltf, channels = clip_arrays(tmp_path / "anim.glb")
    ((node, path), (times, values)), = [(key, value) for key, value in channels.items() if key[1] == "weights"]
    assert gltf["nodes"][node]["mesh"] == 0
    np.testing.assert_allclose(times, take.times, atol=1e-6)
    names = gltf["meshes"][0]["extras"]["targetNames"]
    values = values.reshape(take.frame_count, len(names))
    for m, name in enumerate(names):
        np.testing.assert_array_equal(values[:, m], take.weight(name))
    # The avatar's skeleton (Unity names, the default preset): its neck, head and eyes turn.
    assert report["animated_joints"] == ["Neck", "Head", "LeftEye", "RightEye"]
    assert sorted(gltf["nodes"][n]["name"] for n, p in channels if p == "rotation") == \
        sorted(report["animated_joints"])
    assert report["shapes_not_on_avatar"] == []


def test_the_avatar_is_kept_and_the_clip_passes_the_khronos_validator(avatar_glb, tmp_path):
    write_take(avatar_glb, wave_take(), tmp_path / "anim.glb")
    original, animated = load_avatar_glb(avatar_glb), load_avatar_glb(tmp_path / "anim.glb")
    for a, b in zip(original.primitives, animated.primitives):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.target_positions, b.target_positions)
    report = khronos_validate(tmp_path / "anim.glb")
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0, report["issues"]


def test_a_take_plays_on_a_mesh_with_other_targets_in_another_order(tmp_path):
    ee.write_gltf(make_head_asset(clip=False), tmp_path / "other.glb")   # 6 targets, not Apple's order
    take = wave_take()
    report = write_take(tmp_path / "other.glb", take, tmp_path / "anim.glb")
    gltf, channels = clip_arrays(tmp_path / "anim.glb")
    names = gltf["meshes"][0]["extras"]["targetNames"]
    assert names[0] == "jawOpen"
    values = next(iter(channels.values()))[1].reshape(take.frame_count, len(names))
    for m, name in enumerate(names):
        np.testing.assert_array_equal(values[:, m], take.weight(name))
    assert len(report["shapes_not_on_avatar"]) == 52 - len(names)


def test_head_and_eye_joints_turn_by_the_takes_angles_from_their_rest_pose(rigged_avatar, tmp_path):
    take = wave_take()
    report = write_take(rigged_avatar, take, tmp_path / "anim.glb", neck_share=0.0)
    assert report["animated_joints"] == ["head", "eye_l", "eye_r"]     # no share: the neck stays at rest
    gltf, channels = clip_arrays(tmp_path / "anim.glb")
    index = {node.get("name"): k for k, node in enumerate(gltf["nodes"])}
    rest = {name: _quat_to_matrix(gltf["nodes"][index[name]].get("rotation", [0, 0, 0, 1]))
            for name in ("neck", "head", "eye_l", "eye_r")}
    frame = 17
    local = {name: _quat_to_matrix(channels[(index[name], "rotation")][1][frame].astype(np.float64))
             for name in ("head", "eye_l", "eye_r")}
    head_turn = head_rotation_matrices(*take.head_pose[frame:frame + 1, :3].T)[0]
    # World rotation of the head (its parent, the neck, does not move) = turn @ rest.
    np.testing.assert_allclose(local["head"], head_turn @ rest["head"], atol=1e-5)
    # An eye's world rotation = head world @ eye local = head turn @ gaze turn @ eye rest world.
    eye_turn = head_rotation_matrices(take.gaze[frame:frame + 1, 0], take.gaze[frame:frame + 1, 1])[0]
    np.testing.assert_allclose(local["head"] @ local["eye_l"],
                               head_turn @ eye_turn @ rest["head"] @ rest["eye_l"], atol=1e-5)
    # The default share: the neck turns part of the way, the head's world rotation is unchanged.
    assert write_take(rigged_avatar, take, tmp_path / "shared.glb")["animated_joints"] == \
        ["neck", "head", "eye_l", "eye_r"]
    _, shared = clip_arrays(tmp_path / "shared.glb")
    now = {name: _quat_to_matrix(shared[(index[name], "rotation")][1][frame].astype(np.float64))
           for name in ("neck", "head")}
    np.testing.assert_allclose(now["neck"] @ now["head"], head_turn @ rest["neck"] @ rest["head"], atol=1e-5)
    neck_angle = np.degrees(np.arccos((np.trace(now["neck"]) - 1) / 2))
    head_angle = np.degrees(np.arccos((np.trace(head_turn) - 1) / 2))
    assert neck_angle == pytest.approx(0.4 * head_angle, abs=1e-3)
    report = khronos_validate(tmp_path / "anim.glb")
    assert report["issues"]["numErrors"] == 0, report["issues"]


def test_writing_the_same_take_twice_gives_identical_bytes(avatar_glb, tmp_path):
    for name in ("a.glb", "b.glb", "a.fbx", "b.fbx"):
        write_take(avatar_glb, wave_take(), tmp_path / name)
    assert (tmp_path / "a.glb").read_bytes() == (tmp_path / "b.glb").read_bytes()
    assert (tmp_path / "a.fbx").read_bytes() == (tmp_path / "b.fbx").read_bytes()


# ----------------------------------------------------------------------------- bad input
def test_bad_destinations_and_avatars_raise_typed_errors_and_write_nothing(avatar_glb, tmp_path):
    take = wave_take(5)
    with pytest.raises(ExportError, match="must end in .glb or .fbx"):
        write_take(avatar_glb, take, tmp_path / "out.obj")
    with pytest.raises(InvalidInputError, match="no such avatar"):
        write_take(tmp_path / "none.glb", take, tmp_path / "out.glb")
    (tmp_path / "junk.glb").write_bytes(b"glTF but not really")
    with pytest.raises(InvalidInputError, match="not a readable .glb"):
        write_take(tmp_path / "junk.glb", take, tmp_path / "out.glb")
    with pytest.raises(InvalidInputError, match="expected a Take"):
        write_take(avatar_glb, {"weights": []}, tmp_path / "out.glb")
    with pytest.raises(ExportError, match="does not exist"):
        write_take(avatar_glb, take, tmp_path / "missing" / "out.glb")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.glb"]


def test_a_clip_name_already_in_the_file_is_refused(avatar_glb, tmp_path):
    write_take(avatar_glb, wave_take(5), tmp_path / "once.glb")
    with pytest.raises(ExportError, match="already has an animation named 'take'"):
        write_take(tmp_path / "once.glb", wave_take(5), tmp_path / "twice.glb")
    write_take(tmp_path / "once.glb", wave_take(5), tmp_path / "twice.glb", clip_name="take2")
    assert [a["name"] for a in read_glb((tmp_path / "twice.glb").read_bytes())[0]["animations"]] == ["take", "take2"]


# ----------------------------------------------------------------------------- Blender
def slot_fcurves(datablock) -> list:  # runs in Blender
    """Sorted data paths of the F-curves that animate ``datablock``.  Blender 4.4+ keeps one
    action with a slot per animated datablock (the glTF importer puts the armature's and the
    shape keys' curves in one action), so read the curves of this datablock's slot."""
    anim = datablock.animation_data
    if anim is None or anim.action is None:
        return []
    slot = getattr(anim, "action_slot", None)
    if slot is None or not getattr(anim.action, "layers", None):
        return sorted(fc.data_path for fc in anim.action.fcurves)
    return sorted(fc.data_path for layer in anim.action.layers for strip in layer.strips
                  for bag in [strip.channelbag(slot)] if bag is not None for fc in bag.fcurves)


def _blender_clip_values(paths, shapes, frames):  # runs in a subprocess
    import bpy
    from _readers import blender_import_into_empty_scene

    out = {}
    for path in paths:
        blender_import_into_empty_scene(bpy, path)
        (obj,) = [o for o in bpy.context.scene.objects if o.type == "MESH" and o.data.shape_keys is not None]
        keys = obj.data.shape_keys
        values = {}
        for frame in frames:
            bpy.context.scene.frame_set(frame)      # plays the clip: the action sets the key values
            values[frame] = {name: keys.key_blocks[name].value for name in shapes}
        out[path] = {"fps": bpy.context.scene.render.fps / bpy.context.scene.render.fps_base,
                     "fcurves": slot_fcurves(keys),
                     "values": values}
    sys.stdout.write("\nRESULT " + json.dumps(out) + "\n")


def test_blender_plays_the_clip_from_glb_and_fbx(avatar_glb, tmp_path):
    take = wave_take(45, 30.0)
    paths = [tmp_path / "anim.glb", tmp_path / "anim.fbx"]
    for path in paths:
        write_take(avatar_glb, take, path)
    shapes, frames = ["jawOpen", "eyeBlinkLeft", "mouthSmileRight", "tongueOut"], [1, 7, 20, 33]
    spec = json.dumps({"paths": [str(p) for p in paths], "shapes": shapes, "frames": frames})
    run = subprocess.run([sys.executable, __file__, spec], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads([ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    for path in paths:
        seen = result[str(path)]
        assert len(seen["fcurves"]) == 52
        assert 'key_blocks["jawOpen"].value' in seen["fcurves"]
        # Blender's glTF importer puts time 0 on frame 0; its FBX importer on frame 1.
        first = 1 if path.suffix == ".fbx" else 0
        for frame in frames:
            t = (frame - first) / seen["fps"]
            for name in shapes:
                expected = np.interp(t, take.times, take.weight(name))
                assert seen["values"][str(frame)][name] == pytest.approx(expected, abs=1e-4), (path.name, frame, name)


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    _blender_clip_values(spec["paths"], spec["shapes"], spec["frames"])
