"""The head skeleton: the template's joints and weights, the per-avatar calibration, and the skinned
files as Blender 4.5, three.js, ufbx and the Khronos validator read them.

The avatar is the bundled astronaut, built once per preset (glb + fbx each).  Blender poses the
bones itself (a 20° turn of the jaw about the ear-to-ear axis, of the left eye about the vertical
axis) and returns its evaluated mesh; the jaw is then judged on a render of that mesh by the
project's rasterizer.
"""
import numpy as np
import pytest
from scipy.spatial import cKDTree

from _readers import (BLENDER_FROM_GLTF, blender_pose_bones, khronos_validate, three_load)
from pyfacerig import render, skeleton
from pyfacerig.build import build
from pyfacerig.cli import EXAMPLES
from pyfacerig.templates import ARKIT_SHAPE_NAMES
from test_export_fbx import probe

JOINTS = ("root", "neck", "head", "jaw", "eye_l", "eye_r")
BONES = {"unity": ["Root", "Neck", "Head", "Jaw", "LeftEye", "RightEye"],
         "unreal": ["root", "neck_01", "head", "jaw", "eye_l", "eye_r"]}
#: Blender pose name -> (joint index, world axis in Blender's frame, degrees).  Blender's +X is
#: glTF's +X (the subject's left), Blender's +Z is glTF's +Y (up).
POSES = {"jaw": (3, [1.0, 0.0, 0.0], 20.0), "eye_l": (4, [0.0, 0.0, 1.0], 20.0)}


# ----------------------------------------------------------------------------- the template
def test_template_skeleton_has_the_six_head_joints_parents_first(template):
    sk = template.skeleton
    assert sk.joint_names == JOINTS
    assert sk.parents.tolist() == [-1, 0, 1, 2, 2, 2]


def test_eye_joints_sit_at_the_eyeball_centres(template):
    np.testing.assert_allclose(template.skeleton.positions[4:6], template.eye_centers, atol=1e-6)


def test_skin_weights_sum_to_one_with_at_most_four_joints_and_none_on_the_eyes(template):
    w = template.skeleton.weights["skin"].astype(np.float64)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    assert (w > 0).sum(axis=1).max() <= 4
    assert np.all(w[:, 4:6] == 0)                       # the lids belong to the head, not the eyeballs


def test_rigid_parts_are_bound_wholly_to_their_joint(template):
    expected = {"eye_left": 4, "eye_right": 5, "teeth_upper": 2, "teeth_lower": 3, "tongue": 3}
    for part, joint in expected.items():
        w = template.skeleton.weights[part]
        assert np.all(w[:, joint] == 1.0) and np.all(w.sum(axis=1) == 1.0), part


def test_the_jaw_moves_the_chin_and_lower_lip_and_not_the_upper_lip(template):
    w = template.skeleton.weights["skin"]
    ids = template.landmark_vertex_ids
    assert w[ids[152], 3] > 0.8 and w[ids[17], 3] > 0.8         # chin, lower lip
    assert w[ids[0], 3] < 0.1 and w[ids[10], 3] == 0            # upper lip, forehead


# ----------------------------------------------------------------------------- calibration
def _parts(template):
    return {name: np.asarray(part.vertices, np.float64) for name, part in template.parts.items()}


def test_calibration_of_a_moved_and_scaled_template_moves_every_joint_with_it(template):
    a = np.radians(12)
    rotation = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    moved = {name: 1.1 * v @ rotation.T + [0.01, -0.02, 0.03] for name, v in _parts(template).items()}
    cal = skeleton.calibrate(template.skeleton, _parts(template), moved)
    expected = 1.1 * template.skeleton.positions @ rotation.T + [0.01, -0.02, 0.03]
    np.testing.assert_allclose(cal.positions, expected, atol=1e-6)
    assert cal.residual_mm["after_jaw"] < 1e-3 and cal.jaw_shift_mm < 1e-3


def test_the_leaf_fit_moves_the_jaw_with_its_vertices_and_removes_that_residual(template):
    parts = _parts(template)
    moved = dict(parts)
    w = template.skeleton.weights["skin"][:, 3:4].astype(np.float64)
    moved["skin"] = parts["skin"] + w * [0.0, -0.004, 0.003]      # the jaw's vertices move 5 mm
    cal = skeleton.calibrate(template.skeleton, parts, moved)
    np.testing.assert_allclose(cal.positions[3] - template.skeleton.positions[3], [0, -0.004, 0.003], atol=2e-4)
    assert cal.residual_mm["after_jaw"] < 0.3 * cal.residual_mm["inner"]


def test_calibration_refuses_parts_of_another_topology(template):
    from pyfacerig.errors import InvalidInputError
    parts = _parts(template)
    with pytest.raises(InvalidInputError, match="skin"):
        skeleton.calibrate(template.skeleton, parts, dict(parts, skin=parts["skin"][:-1]))


# ----------------------------------------------------------------------------- the built avatar
@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """preset -> (avatar, folder with npc.glb and npc.fbx)."""
    out = {}
    for preset in ("unity", "unreal"):
        folder = tmp_path_factory.mktemp(preset)
        out[preset] = (build(EXAMPLES["astronaut"], out=folder / "npc.glb", formats=("glb", "fbx"),
                             preset=preset), folder)
    return out


@pytest.fixture(scope="module")
def files(built):
    return {f"{preset}.{fmt}": (preset, folder / f"npc.{fmt}")
            for preset, (_, folder) in built.items() for fmt in ("glb", "fbx")}


@pytest.fixture(scope="module")
def blender(files):
    out = {}
    for label, (preset, path) in files.items():
        poses = {name: [BONES[preset][j], axis, deg] for name, (j, axis, deg) in POSES.items()}
        out[label] = blender_pose_bones([path], poses)[str(path)]
    return out


def exported(avatar):
    """Our exported vertices in order (parts concatenated, UV seams split), and per vertex its
    part name and whether it is inside the mouth (mouth-interior skin, teeth, tongue)."""
    from pyfacerig.templates import load_default
    regions = load_default().regions
    points, part_of, mouth = [], [], []
    for name, part in avatar.parts.items():
        points.append(part.split(part.vertices))
        part_of += [name] * len(part.uvs)
        inside = (part.split(regions["mouth_interior"][:, None])[:, 0] if name == "skin"
                  else np.full(len(part.uvs), name in ("teeth_upper", "teeth_lower", "tongue")))
        mouth.append(inside)
    return np.concatenate(points).astype(np.float64), np.array(part_of), np.concatenate(mouth)


def lip_gap_pixels(points, triangles, inside_mouth, mouth_centre) -> int:
    """Render the head from the front (512 px, 10 cm field at the mouth) and count the pixels of
    the mouth's centre column where the nearest surface is inside the mouth."""
    camera = render.Camera(target=mouth_centre, distance=0.6, fov_deg=2 * np.degrees(np.arctan(0.05 / 0.6)))
    colours = np.where(inside_mouth[:, None], [40.0, 20.0, 20.0], [200.0, 170.0, 150.0])
    _, mesh_id, triangle, _ = render.render_with_ids(
        [render.Mesh(points, triangles, vertex_colors=colours)], camera, 512, 512)
    seen = np.zeros(mesh_id.shape, bool)
    hit = mesh_id >= 0
    seen[hit] = inside_mouth[triangles[triangle[hit]]].all(axis=1)
    return int(seen[:, 254:259].sum(axis=0).max())


@pytest.mark.parametrize("label", ["unity.glb", "unity.fbx", "unreal.glb", "unreal.fbx"])
def test_blender_imports_an_armature_of_the_named_bones_with_the_mesh_parented_and_weighted(blender, files, label):
    result = blender[label]
    preset = files[label][0]
    assert result["bones"] == BONES[preset]
    (armature,) = result["armatures"]
    assert result["parent"] == {"type": "ARMATURE", "name": armature}
    assert result["armature_modifiers"] == [armature]
    assert sorted(result["groups"]) == sorted(BONES[preset])
    np.testing.assert_allclose(result["weight_sums"], 1.0, atol=1e-5)


@pytest.mark.parametrize("label", ["unity.glb", "unity.fbx", "unreal.glb", "unreal.fbx"])
def test_blender_bone_heads_are_the_calibrated_joints(blender, built, files, label):
    avatar = built[files[label][0]][0]
    heads = np.array([blender[label]["bone_heads"][b] for b in BONES[files[label][0]]])
    np.testing.assert_allclose(heads, avatar.skeleton.positions @ BLENDER_FROM_GLTF.T, atol=1e-5)


@pytest.mark.parametrize("label", ["unity.glb", "unity.fbx", "unreal.glb", "unreal.fbx"])
def test_turning_the_jaw_20_degrees_in_blender_opens_the_mouth_on_a_render(blender, built, files, label):
    avatar = built[files[label][0]][0]
    ours, _, inside = exported(avatar)
    result = blender[label]
    rest = np.array(result["rest"]) @ BLENDER_FROM_GLTF        # Blender's world back to glTF's
    distance, index = cKDTree(ours).query(rest)
    assert distance.max() < 2e-5
    triangles = np.array(result["triangles"])
    skin = avatar.parts["skin"]
    from pyfacerig.templates import load_default
    lips = load_default().landmark_vertex_ids[[13, 14]]
    centre = skin.vertices[lips].mean(axis=0)
    closed = lip_gap_pixels(rest, triangles, inside[index], centre)
    opened = lip_gap_pixels(np.array(result["posed"]["jaw"]) @ BLENDER_FROM_GLTF, triangles, inside[index], centre)
    # 512 px over 10 cm: 5.1 px per millimetre; the mouth opens by well over a centimetre.
    assert opened > closed + 60, (closed, opened)


@pytest.mark.parametrize("label", ["unity.glb", "unity.fbx", "unreal.glb", "unreal.fbx"])
def test_turning_eye_l_20_degrees_moves_that_iris_about_its_centre_and_no_skin(blender, built, files, label):
    avatar = built[files[label][0]][0]
    ours, part_of, _ = exported(avatar)
    result = blender[label]
    rest = np.array(result["rest"]) @ BLENDER_FROM_GLTF
    posed = np.array(result["posed"]["eye_l"]) @ BLENDER_FROM_GLTF
    part = part_of[cKDTree(ours).query(rest)[1]]
    moved = np.linalg.norm(posed - rest, axis=1)
    assert moved[part != "eye_left"].max() < 1e-6
    # The iris centre (the eyeball's front pole) swings by 2 r sin(10°); the centre stays put.
    eye = part == "eye_left"
    centre = avatar.skeleton.positions[4]
    pole = np.argmax(np.where(eye, rest[:, 2], -np.inf))
    radius = np.linalg.norm(rest[pole] - centre)
    assert moved[pole] == pytest.approx(2 * radius * np.sin(np.radians(10)), rel=0.02)
    np.testing.assert_allclose(np.linalg.norm(posed[eye] - centre, axis=1),
                               np.linalg.norm(rest[eye] - centre, axis=1), atol=1e-6)
    assert posed[pole, 0] > rest[pole, 0] + 0.003      # turned toward the subject's left (+X)


@pytest.mark.parametrize("label", ["unity.glb", "unity.fbx", "unreal.glb", "unreal.fbx"])
def test_three_js_loads_a_skinned_mesh_with_the_bones_and_the_52_morph_targets(files, label):
    preset, path = files[label]
    loaded = three_load(path, shapes=["jawOpen"])
    for mesh in loaded["meshes"]:
        assert mesh["skinned"], mesh["name"]
        assert mesh["bones"] == BONES[preset]
        assert mesh["targetNames"] == list(ARKIT_SHAPE_NAMES)


@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_khronos_validator_finds_no_errors_and_no_warnings_in_the_skinned_glb(built, preset):
    report = khronos_validate(built[preset][1] / "npc.glb")
    assert report["issues"]["numErrors"] == 0 and report["issues"]["numWarnings"] == 0, report["issues"]


@pytest.mark.parametrize("preset", ["unity", "unreal"])
def test_ufbx_reads_one_cluster_per_weighting_bone_with_our_weights(built, preset):
    avatar, folder = built[preset]
    scene = probe(folder / "npc.fbx")
    assert scene["warnings"] == []
    clusters = {c["bone"]: c for c in scene["clusters"]}
    names = BONES[preset]
    assert set(clusters) <= set(names) and {names[2], names[3], names[4], names[5]} <= set(clusters)
    weights = np.concatenate([p.split(avatar.skeleton.weights[n]) for n, p in avatar.parts.items()])
    theirs = np.zeros_like(weights, dtype=np.float64)
    for j, bone in enumerate(names):
        if bone in clusters:
            theirs[clusters[bone]["vertices"], j] = clusters[bone]["weights"]
    np.testing.assert_allclose(theirs, weights, atol=1e-6)


def test_sidecar_records_the_calibrated_joints_and_the_residual(built):
    import json
    avatar, folder = built["unity"]
    entry = json.loads((folder / "npc.json").read_text())["skeleton"]
    assert [j["name"] for j in entry["joints"]] == list(JOINTS)
    np.testing.assert_allclose([j["position"] for j in entry["joints"]], avatar.skeleton.positions, atol=1e-6)
    assert entry["file_names"] == BONES
    assert 0 < entry["residual_mm"]["after_jaw"] <= entry["residual_mm"]["inner"]
