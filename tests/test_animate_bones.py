"""A take's head pose and gaze written as bone animation on the avatar's skeleton, read back by
the tools an engine user has: the glb's own curves, the Khronos validator, three.js, Blender 4.5
(glb and FBX, both presets) and ufbx.

The take turns the head by yaw +20 deg, pitch +6 deg (down) and roll -4 deg at t = 0.5 s, and the
eyes by their own gaze.  Expected world rotations, in the glTF frame, about each joint:
  head  R = Ry(yaw) Rx(pitch) Rz(roll) (right-handed; the take's signs)
  neck  R^0.4 (NECK_SHARE of the same turn)
  eyes  R Ry(eye yaw) Rx(eye pitch) (the gaze is relative to the head)
"""
import json
import subprocess
import sys

import numpy as np
import pytest

import engine_export as ee
from _readers import BLENDER_FROM_GLTF, khronos_validate, three_load
from pyfacerig.animate import Take, write_take
from pyfacerig.animate.avatar_file import load_avatar_glb, read_accessor, read_glb
from pyfacerig.animate.clip import NECK_SHARE, _quat_to_matrix, head_rotation_matrices
from pyfacerig.animate.rig import AvatarRig
from pyfacerig.animate.solve import rotation_to_angles
from pyfacerig.build import build
from pyfacerig.cli import EXAMPLES
from pyfacerig.errors import InvalidInputError
from pyfacerig.templates import ARKIT_SHAPE_NAMES
from test_export_fbx import probe
from test_animate_clip import slot_fcurves
from test_export_model import make_head_asset

FPS, FRAMES, FRAME = 30.0, 31, 15            # FRAME is t = 0.5 s, a whole frame at 24 and 30 fps
BONES = {"unity": {"neck": "Neck", "head": "Head", "eye_l": "LeftEye", "eye_r": "RightEye"},
         "unreal": {"neck": "neck_01", "head": "head", "eye_l": "eye_l", "eye_r": "eye_r"}}
#: The Unreal preset's FBX axes: glTF (x, y, z) -> (x, -z, y) (Z-up, front -Y).
TO_UNREAL = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def turn_take() -> Take:
    """Every angle follows sin(pi t / 1 s): 0 at the ends, its peak at t = 0.5 s (FRAME)."""
    bump = np.sin(np.pi * np.arange(FRAMES) / (FRAMES - 1))
    head = np.zeros((FRAMES, 6))
    head[:, :3] = np.radians([20.0, 6.0, -4.0]) * bump[:, None]
    gaze = np.radians([12.0, 8.0, -7.0, -5.0]) * bump[:, None]        # left look left+down, right right+up
    weights = np.zeros((FRAMES, 52))
    weights[:, ARKIT_SHAPE_NAMES.index("jawOpen")] = 0.5 * bump
    return Take(weights, head, gaze, FPS, {})


def expected_turns(take: Take, frame: int) -> dict:
    """joint role -> (3, 3) world turn in the glTF frame at ``frame``."""
    yaw, pitch, roll = take.head_pose[frame, :3].astype(np.float64)
    head = head_rotation_matrices([yaw], [pitch], [roll])[0]
    g = take.gaze[frame].astype(np.float64)
    eye_l = head @ head_rotation_matrices([g[0]], [g[1]])[0]
    eye_r = head @ head_rotation_matrices([g[2]], [g[3]])[0]
    angle, axis = _axis_angle(head)
    neck = _rotation(axis, NECK_SHARE * angle)
    return {"head": head, "neck": neck, "eye_l": eye_l, "eye_r": eye_r}


def _axis_angle(r):
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    angle = np.arctan2(np.linalg.norm(axis) / 2, (np.trace(r) - 1) / 2)     # well-conditioned near 0
    norm = np.linalg.norm(axis)
    return angle, axis / norm if norm > 0 else np.array([0, 0, 1.0])


def _rotation(axis, angle):
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def degrees_apart(a, b) -> float:
    """Angle (degrees) of the rotation taking b to a."""
    return float(np.degrees(_axis_angle(np.asarray(a, np.float64) @ np.asarray(b, np.float64).T)[0]))


@pytest.fixture(scope="module")
def avatars(tmp_path_factory):
    """preset -> the astronaut avatar's .glb built with that preset's bone names."""
    out = {}
    for preset in ("unity", "unreal"):
        folder = tmp_path_factory.mktemp(preset)
        build(EXAMPLES["astronaut"], out=folder / "npc.glb", formats=("glb",), preset=preset)
        out[preset] = folder / "npc.glb"
    return out


@pytest.fixture(scope="module")
def animated(avatars):
    """"<preset>.<glb|fbx>" -> (path, write_take's report) of turn_take() on that avatar."""
    out = {}
    for preset, path in avatars.items():
        for fmt in ("glb", "fbx"):
            target = path.with_name(f"anim.{fmt}")
            out[f"{preset}.{fmt}"] = (target, write_take(path, turn_take(), target, preset=preset))
    return out


def glb_world_turns(path, frame) -> dict:
    """node name -> (3, 3) world rotation at ``frame`` times its world rest rotation's inverse,
    composed from the clip's local rotation curves and the nodes' rest rotations."""
    document, blob = read_glb(path.read_bytes())
    nodes = document["nodes"]
    (animation,) = document["animations"]
    local_rest = [_quat_to_matrix(n.get("rotation", [0, 0, 0, 1])) for n in nodes]
    local_now = list(local_rest)
    for channel in animation["channels"]:
        if channel["target"]["path"] == "rotation":
            output = read_accessor(document, blob, animation["samplers"][channel["sampler"]]["output"])
            local_now[channel["target"]["node"]] = _quat_to_matrix(output[frame].astype(np.float64))
    parents = {c: p for p, n in enumerate(nodes) for c in n.get("children", [])}

    def world(k, local):
        return local[k] if k not in parents else world(parents[k], local) @ local[k]

    return {n.get("name"): world(k, local_now) @ world(k, local_rest).T for k, n in enumerate(nodes)}


# ----------------------------------------------------------------------------- conventions
def test_take_angles_are_right_handed_with_the_documented_signs():
    turn = lambda yaw=0.0, pitch=0.0, roll=0.0: head_rotation_matrices([yaw], [pitch], [roll])[0]
    face, top = np.array([0, 0, 1.0]), np.array([0, 1.0, 0])
    assert (turn(yaw=0.3) @ face)[0] > 0.29          # yaw > 0: toward +X, the subject's left
    assert (turn(pitch=0.3) @ face)[1] < -0.29       # pitch > 0: the face tips down
    assert (turn(roll=0.3) @ top)[0] < -0.29         # roll > 0: the top toward the subject's right
    angles = np.array([0.4, -0.2, 0.1])
    np.testing.assert_allclose(rotation_to_angles(turn(*angles)), angles, atol=1e-12)


def test_an_eye_bone_turned_by_the_gaze_moves_the_iris_as_the_gaze_shape_does(avatars):
    """The gaze the solver reports for an eyeLook shape, applied as the eye bone's rotation about
    the eye joint, moves the iris centre where the shape's own morph moves it."""
    rig = AvatarRig.from_glb(avatars["unity"])
    document = load_avatar_glb(avatars["unity"]).document
    joints = {n["name"]: np.array(n["translation"]) for n in document["nodes"] if "translation" in n}
    centre = {"eye_left": joints["Root"] + joints["Neck"] + joints["Head"] + joints["LeftEye"],
              "eye_right": joints["Root"] + joints["Neck"] + joints["Head"] + joints["RightEye"]}
    pole_row = {"eye_right": -2, "eye_left": -1}                      # IRIS_CENTRES, sorted: 468, 473
    for shape, eye, columns in (("eyeLookDownLeft", "eye_left", (0, 1)), ("eyeLookUpLeft", "eye_left", (0, 1)),
                                ("eyeLookOutLeft", "eye_left", (0, 1)), ("eyeLookInRight", "eye_right", (2, 3)),
                                ("eyeLookDownRight", "eye_right", (2, 3))):
        k = ARKIT_SHAPE_NAMES.index(shape)
        yaw, pitch = rig.gaze_per_weight[list(columns), k]
        pole = rig.neutral[pole_row[eye]]
        morphed = rig.deltas[k, pole_row[eye]]
        turned = head_rotation_matrices([yaw], [pitch])[0] @ (pole - centre[eye]) + centre[eye] - pole
        cosine = morphed @ turned / (np.linalg.norm(morphed) * np.linalg.norm(turned))
        # Measured on the astronaut: within 15.2 deg of direction (1.4 deg for a look out) and
        # 3.6 % of length; the opposite sign would point the other way (cosine near -1).
        assert cosine > 0.9, (shape, morphed, turned)
        assert np.linalg.norm(turned) == pytest.approx(np.linalg.norm(morphed), rel=0.1), shape


# ----------------------------------------------------------------------------- glTF
@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_glb_clip_turns_the_neck_head_and_eyes_by_the_take(animated, preset):
    path, report = animated[f"{preset}.glb"]
    names = BONES[preset]
    assert report["animated_joints"] == [names[r] for r in ("neck", "head", "eye_l", "eye_r")]
    take = turn_take()
    for frame in (0, 7, FRAME, 26):
        theirs = glb_world_turns(path, frame)
        for role, turn in expected_turns(take, frame).items():
            assert degrees_apart(theirs[names[role]], turn) < 1e-3, (frame, role)
        # Bones the take does not drive stay at rest; the jaw follows the head.
        assert degrees_apart(theirs[names["head"]], theirs["Jaw" if preset == "unity" else "jaw"]) < 1e-3
    assert degrees_apart(glb_world_turns(path, FRAME)[names["head"]], np.eye(3)) > 20


@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_khronos_validator_passes_the_animated_skinned_glb(animated, preset):
    report = khronos_validate(animated[f"{preset}.glb"][0])
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0, report["issues"]


@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_three_js_loads_bone_tracks_named_for_the_bones(animated, preset):
    path, _ = animated[f"{preset}.glb"]
    loaded = three_load(path, shapes=[])
    (clip,) = loaded["animations"]
    tracks = {t["name"]: t for t in clip["tracks"]}
    names = BONES[preset]
    for role in ("neck", "head", "eye_l", "eye_r"):
        track = tracks[f"{names[role]}.quaternion"]
        np.testing.assert_allclose(track["times"], turn_take().times, atol=1e-6)
        assert len(track["values"]) == 4 * FRAMES
    assert any(name.endswith(".morphTargetInfluences") for name in tracks)
    # three.js binds the tracks to the skinned mesh's bones by these names.
    assert all(set(names.values()) <= set(mesh["bones"]) for mesh in loaded["meshes"])
    document, blob = read_glb(path.read_bytes())
    index = {n.get("name"): k for k, n in enumerate(document["nodes"])}
    (animation,) = document["animations"]
    for channel in animation["channels"]:
        if channel["target"]["path"] == "rotation":
            ours = read_accessor(document, blob, animation["samplers"][channel["sampler"]]["output"])
            name = document["nodes"][channel["target"]["node"]]["name"]
            np.testing.assert_allclose(np.reshape(tracks[f"{name}.quaternion"]["values"], (-1, 4)), ours, atol=1e-7)
            assert channel["target"]["node"] == index[name]


def test_a_take_plays_by_bone_name_on_avatars_with_either_presets_names(animated):
    """The same take on the Unity-named and the Unreal-named avatar: each bone ends up turned
    the same way, whatever it is called, and the morph curves are the same."""
    unity, unreal = (glb_world_turns(animated[f"{p}.glb"][0], FRAME) for p in ("unity", "unreal"))
    for role in ("neck", "head", "eye_l", "eye_r"):
        assert degrees_apart(unity[BONES["unity"][role]], unreal[BONES["unreal"][role]]) < 1e-4


# ----------------------------------------------------------------------------- FBX, ufbx
@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_ufbx_reads_rotation_curves_that_turn_the_bones_by_the_take(animated, preset):
    path, report = animated[f"{preset}.fbx"]
    names = BONES[preset]
    assert report["animated_joints"] == [names[r] for r in ("neck", "head", "eye_l", "eye_r")]
    assert report["joints_not_animated"] == []
    scene = probe_bones(path, sorted(names.values()), [FRAME / FPS, 7 / FPS])
    assert scene["warnings"] == []
    axes = np.eye(3) if preset == "unity" else TO_UNREAL
    take = turn_take()
    for bone in names.values():
        curves = scene["curves"][bone]
        assert sorted(curves) == ["X", "Y", "Z"] and all(n == FRAMES for n in curves.values()), curves
    for t, frame in ((FRAME / FPS, FRAME), (7 / FPS, 7)):
        for role, turn in expected_turns(take, frame).items():
            theirs = np.asarray(scene["turns"][str(t)][names[role]])
            assert degrees_apart(theirs, axes @ turn @ axes.T) < 0.01, (t, role)


def _probe_bones_main(path, bones, times):  # runs in a subprocess
    import os

    import ufbx
    keep = []

    def k(obj):
        keep.append(obj)
        return obj

    scene = k(ufbx.load_file(path))
    (stack,) = k(scene.anim_stacks)
    anim = k(stack.anim)
    nodes = {k(n).name: n for n in k(scene.nodes)}
    result = {"warnings": [k(w).description for w in k(k(scene.metadata).warnings)], "curves": {}, "turns": {}}

    def quat_matrix(q):
        x, y, z, w = q.x, q.y, q.z, q.w
        return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])

    def world(node, time):   # rotation only, composed up the parents from the evaluated local transforms
        rotation = np.eye(3)
        while node is not None and not node.is_root:
            local = k(ufbx.evaluate_transform(anim, node, time)) if time is not None else k(node.local_transform)
            rotation = quat_matrix(k(local.rotation)) @ rotation
            node = k(node.parent)
        return rotation

    for bone in bones:
        node = nodes[bone]
        prop = k(ufbx.find_anim_prop(k(k(anim.layers)[0]), node, "Lcl Rotation"))
        value = k(prop.anim_value)
        result["curves"][bone] = {axis: len(k(k(curve).keyframes))
                                  for axis, curve in zip("XYZ", k(value.curves)) if curve is not None}
    for time in times:
        result["turns"][str(time)] = {bone: (world(nodes[bone], time) @ world(nodes[bone], None).T).tolist()
                                      for bone in bones}
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)


def probe_bones(path, bones, times) -> dict:
    run = subprocess.run([sys.executable, __file__, "ufbx", json.dumps([str(path), bones, times])],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_an_avatar_without_a_skeleton_still_gets_a_morph_only_clip_in_glb_and_fbx(tmp_path):
    ee.write_gltf(make_head_asset(clip=False), tmp_path / "plain.glb")
    for fmt in ("glb", "fbx"):
        report = write_take(tmp_path / "plain.glb", turn_take(), tmp_path / f"anim.{fmt}")
        assert report["animated_joints"] == []
    document, _ = read_glb((tmp_path / "anim.glb").read_bytes())
    assert [c["target"]["path"] for c in document["animations"][0]["channels"]] == ["weights"]
    scene = probe(tmp_path / "anim.fbx")
    assert scene["warnings"] == [] and len(scene["stacks"]) == 1 and scene["clusters"] == []


def test_engine_export_refuses_joint_rotations_it_cannot_write():
    asset = make_head_asset(skeleton=True)
    clip = asset.animations[0]
    turn = np.tile([0, 0, 0, 1.0], (len(clip.times), 1))
    for rotations, problem in (({"nose": turn}, "not a joint"), ({"skull": turn[:2]}, "shape"),
                               ({"skull": 2 * turn}, "unit length"), ({"skull": np.nan * turn}, "NaN")):
        clip.joint_rotations = rotations
        with pytest.raises(ee.ExportError, match=problem):
            ee.validate_asset(asset)
    clip.joint_rotations = {"skull": turn}
    ee.validate_asset(asset)
    asset.skeleton = None
    for p in asset.meshes[0].primitives:
        p.joints = p.joint_weights = None
    with pytest.raises(ee.ExportError, match="not a joint"):
        ee.validate_asset(asset)


def test_engine_export_writes_the_same_turn_to_gltf_and_fbx(tmp_path):
    """engine_export on its own: a 30 deg turn of the skull about glTF +Y, read back."""
    asset = make_head_asset(skeleton=True)
    clip = asset.animations[0]
    half = np.radians(30) / 2 * np.linspace(0, 1, len(clip.times))
    clip.joint_rotations = {"skull": np.stack([0 * half, np.sin(half), 0 * half, np.cos(half)], 1)}
    ee.write_gltf(asset, tmp_path / "head.glb")
    ee.write_fbx(asset, tmp_path / "head.fbx", preset="unreal")
    turns = glb_world_turns(tmp_path / "head.glb", len(clip.times) - 1)
    assert degrees_apart(turns["skull"], _rotation(np.array([0, 1.0, 0]), np.radians(30))) < 1e-4
    end = float(clip.times[-1])
    scene = probe_bones(tmp_path / "head.fbx", ["skull"], [end])
    assert scene["curves"]["skull"] == {"X": 4, "Y": 4, "Z": 4}
    # Unreal's axes: glTF +Y is the file's +Z.
    assert degrees_apart(scene["turns"][str(end)]["skull"], _rotation(np.array([0, 0, 1.0]), np.radians(30))) < 0.01


def test_write_take_refuses_a_neck_share_outside_0_to_1(avatars, tmp_path):
    for share in (-0.1, 1.5, "half"):
        with pytest.raises(InvalidInputError, match="neck_share"):
            write_take(avatars["unity"], turn_take(), tmp_path / "x.glb", neck_share=share)
    assert not (tmp_path / "x.glb").exists()
    write_take(avatars["unity"], turn_take(), tmp_path / "head_only.glb", neck_share=0.0)
    turns = glb_world_turns(tmp_path / "head_only.glb", FRAME)
    assert degrees_apart(turns["Neck"], np.eye(3)) < 1e-4
    assert degrees_apart(turns["Head"], expected_turns(turn_take(), FRAME)["head"]) < 1e-3


# ----------------------------------------------------------------------------- Blender
def _blender_bone_turns(paths, bones, time):  # runs in a subprocess
    import bpy
    from _readers import blender_import_into_empty_scene

    out = {}
    for path in paths:
        blender_import_into_empty_scene(bpy, path)
        first = 1 if path.endswith(".fbx") else 0   # Blender's FBX importer puts time 0 on frame 1
        scene = bpy.context.scene
        fps = scene.render.fps / scene.render.fps_base
        frame = first + time * fps
        assert abs(frame - round(frame)) < 1e-9, (fps, time)
        (arm,) = [o for o in scene.objects if o.type == "ARMATURE"]
        scene.frame_set(int(round(frame)))       # plays the clip
        turns = {}
        for name in bones:
            pb = arm.pose.bones[name]
            posed = (arm.matrix_world @ pb.matrix).to_3x3().normalized()
            rest = (arm.matrix_world @ pb.bone.matrix_local).to_3x3().normalized()
            turns[name] = [list(row) for row in posed @ rest.transposed()]
        out[path] = {"turns": turns, "fps": fps,
                     "animated_bones": sorted({path.split('"')[1] for path in slot_fcurves(arm)
                                               if path.startswith("pose.bones")})}
    sys.stdout.write("\nRESULT " + json.dumps(out) + "\n")


def test_blender_plays_the_bone_curves_from_glb_and_fbx_in_both_presets(animated):
    take = turn_take()
    expected = expected_turns(take, FRAME)
    for preset in ("unity", "unreal"):
        names = BONES[preset]
        paths = [animated[f"{preset}.{fmt}"][0] for fmt in ("glb", "fbx")]
        spec = json.dumps({"paths": [str(p) for p in paths], "bones": list(names.values()), "time": FRAME / FPS})
        run = subprocess.run([sys.executable, __file__, "blender", spec], capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads([ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
        for path in paths:
            seen = result[str(path)]
            assert set(names.values()) <= set(seen["animated_bones"]), (path.name, seen["animated_bones"])
            for role, turn in expected.items():
                theirs = np.asarray(seen["turns"][names[role]])
                # Blender's world is Z-up: our glTF turn seen in its frame.
                assert degrees_apart(theirs, BLENDER_FROM_GLTF @ turn @ BLENDER_FROM_GLTF.T) < 1.0, \
                    (preset, path.name, role, theirs)


if __name__ == "__main__":
    if sys.argv[1] == "ufbx":
        _probe_bones_main(*json.loads(sys.argv[2]))
    else:
        spec = json.loads(sys.argv[2])
        _blender_bone_turns(spec["paths"], spec["bones"], spec["time"])
