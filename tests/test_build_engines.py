"""The real avatar that build() makes from the bundled astronaut portrait, read the way an engine
user reads it: Blender 4.5, ufbx, three.js and the Khronos validator on the .glb/.fbx, and the
embedded C runtime on the .frig.

The avatar is built twice per module (Unity preset: glb + fbx + frig; Unreal preset: fbx) and
every reader runs once on those files.  "Ours" is always the Avatar's own arrays: the parts
concatenated in order (the sidecar's "parts" ranges), neutral + sum of weight x delta, in the
glTF frame (metres, +Y up, face toward +Z).
"""
import json
import subprocess

import numpy as np
import pygltflib
import pytest

import engine_export
import pyfacerig.runtime as runtime
from _readers import (BLENDER_FROM_GLTF, assert_same_point_sets, blender_import, khronos_validate,
                      three_load)
from pyfacerig.build import build
from pyfacerig.cli import EXAMPLES, main
from pyfacerig.errors import ExportError
from pyfacerig.runtime import Rig
from pyfacerig.templates import ARKIT_SHAPE_NAMES
from test_export_fbx import probe
from test_runtime_c import compile_program, read_f32

NAMES = list(ARKIT_SHAPE_NAMES)
PART_MATERIALS = ["skin", "eye", "eye", "teeth", "teeth", "tongue"]  # template part order
#: Shape weights Blender evaluates (the other 50 keys at 0).
POSES = {"rest": {}, "jawOpen": {"jawOpen": 1.0}, "eyeBlinkLeft": {"eyeBlinkLeft": 1.0},
         "jawOpen+eyeBlinkLeft": {"jawOpen": 1.0, "eyeBlinkLeft": 1.0}}
#: Our glTF frame to the Unreal preset's FBX frame (Z-up, front -Y, centimetres).
TO_UNREAL = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]) * 100


@pytest.fixture(scope="module")
def unity(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unity")
    avatar = build(EXAMPLES["astronaut"], out=folder / "npc.glb", formats=("glb", "fbx", "frig"),
                   preset="unity")
    return avatar, folder


@pytest.fixture(scope="module")
def unreal(tmp_path_factory):
    folder = tmp_path_factory.mktemp("unreal")
    avatar = build(EXAMPLES["astronaut"], out=folder / "npc.fbx", formats=("fbx",), preset="unreal")
    return avatar, folder


@pytest.fixture(scope="module")
def files(unity, unreal):
    """file label -> (avatar, path)."""
    return {"unity.glb": (unity[0], unity[1] / "npc.glb"), "unity.fbx": (unity[0], unity[1] / "npc.fbx"),
            "unreal.fbx": (unreal[0], unreal[1] / "npc.fbx")}


@pytest.fixture(scope="module")
def blender(files):
    results = blender_import([path for _, path in files.values()], poses=POSES)
    return {label: results[str(path)] for label, (_, path) in files.items()}


@pytest.fixture(scope="module")
def ufbx(files):
    return {label: probe(path) for label, (_, path) in files.items() if label.endswith(".fbx")}


@pytest.fixture(scope="module")
def three(files):
    return {label: three_load(path, shapes=["jawOpen"]) for label, (_, path) in files.items()}


def ours(avatar, weights=None) -> np.ndarray:
    """(N, 3) float64: every part's exported vertices (the skin's UV seams split), concatenated,
    with ``weights`` (name -> w) applied."""
    points = np.concatenate([p.split(p.vertices) for p in avatar.parts.values()]).astype(np.float64)
    for name, weight in (weights or {}).items():
        t = NAMES.index(name)
        points += weight * np.concatenate([p.split(p.shape_deltas[t]) for p in avatar.parts.values()])
    return points


def head_size(avatar) -> float:
    """Diagonal of the bounding box of every vertex, in metres."""
    points = ours(avatar)
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))


# ----------------------------------------------------------------------------- Blender 4.5
@pytest.mark.parametrize("label", ["unity.glb", "unity.fbx", "unreal.fbx"])
def test_blender_imports_the_52_arkit_shape_keys_by_their_exact_names(blender, label):
    assert blender[label]["mesh"] == "face"
    assert blender[label]["shape_keys"] == NAMES


@pytest.mark.parametrize("label", ["unity.glb", "unity.fbx", "unreal.fbx"])
def test_blender_finds_the_baked_skin_texture_on_the_skin_material(blender, label):
    images = blender[label]["material_images"]
    assert images["skin"] == [1024, 1024] and images["eye"] == [256, 256]
    assert sorted(images) == sorted(set(PART_MATERIALS))


@pytest.mark.parametrize("pose", sorted(POSES))
@pytest.mark.parametrize("label", ["unity.glb", "unity.fbx", "unreal.fbx"])
def test_blender_evaluated_positions_equal_ours_vertex_for_vertex(blender, files, label, pose):
    # In Blender's Z-up frame; Blender keeps our vertices in our order (the .frig's), glTF and FBX.
    avatar, _ = files[label]
    theirs = np.asarray(blender[label]["posed"][pose])
    expected = ours(avatar, POSES[pose]) @ BLENDER_FROM_GLTF.T
    assert theirs.shape == expected.shape
    assert np.abs(theirs - expected).max() <= 1e-5 * head_size(avatar)


# ----------------------------------------------------------------------------- ufbx
@pytest.mark.parametrize("label, unit_meters, axes, basis", [
    ("unity.fbx", 1.0, {"right": 0, "up": 2, "front": 4}, np.eye(3)),        # +X, +Y, +Z; metres
    ("unreal.fbx", 0.01, {"right": 0, "up": 4, "front": 3}, TO_UNREAL),       # +X, +Z, -Y; cm
])
def test_ufbx_reads_one_mesh_with_52_channels_by_name_in_the_presets_axes_and_units(
        ufbx, files, label, unit_meters, axes, basis):
    avatar, _ = files[label]
    scene = ufbx[label]
    assert scene["warnings"] == []
    assert scene["unit_meters"] == pytest.approx(unit_meters) and scene["axes"] == axes
    (mesh,) = scene["meshes"]
    assert mesh["name"] == "face"
    assert [c["name"] for c in scene["channels"]] == NAMES
    # FBX vertices are our float32 vertices, so 1e-6 m is far above rounding and far below any shape.
    np.testing.assert_allclose(mesh["vertices"], ours(avatar) @ basis.T, atol=1e-6 * np.abs(basis).max())


@pytest.mark.parametrize("label, basis", [("unity.fbx", np.eye(3)), ("unreal.fbx", TO_UNREAL)])
@pytest.mark.parametrize("shape", ["jawOpen", "eyeBlinkLeft"])
def test_ufbx_shape_offsets_are_our_deltas(ufbx, files, label, basis, shape):
    avatar, _ = files[label]
    channel = next(c for c in ufbx[label]["channels"] if c["name"] == shape)
    (target,) = channel["shapes"]
    assert target["target_weight"] == 1.0
    read = np.zeros((len(ours(avatar)), 3))
    read[target["vertices"]] = target["positions"]
    expected = (ours(avatar, {shape: 1.0}) - ours(avatar)) @ basis.T
    np.testing.assert_allclose(read, expected, atol=1e-7 * np.abs(basis).max())


# ----------------------------------------------------------------------------- three.js
@pytest.mark.parametrize("label", ["unity.glb", "unity.fbx", "unreal.fbx"])
def test_three_js_keeps_all_52_names_in_every_morph_target_dictionary(three, label):
    meshes = three[label]["meshes"]
    assert meshes
    for mesh in meshes:
        assert mesh["targetNames"] == NAMES


@pytest.mark.parametrize("label, scale", [("unity.glb", 1.0), ("unity.fbx", 1.0), ("unreal.fbx", 100.0)])
def test_three_js_positions_with_jaw_open_equal_ours(three, files, label, scale):
    # three.js keeps FBX units and turns a Z-up FBX upright, so the Unreal file is Y-up cm.
    avatar, _ = files[label]
    meshes = three[label]["meshes"]
    theirs = np.concatenate([np.asarray(m["shaped"]["jawOpen"]) for m in meshes])
    assert_same_point_sets(theirs, ours(avatar, {"jawOpen": 1.0}) * scale, 1e-5 * head_size(avatar) * scale)


def test_every_part_is_a_mesh_carrying_the_same_52_names_in_the_same_order(three, files):
    """What engines drive by name: GLTFLoader (like glTFast) makes one mesh per part, and each
    one -- skin, eyes, mouth, teeth, tongue, moving or not -- answers to all 52 names."""
    meshes = three["unity.glb"]["meshes"]
    assert [m["name"] for mesh in meshes for m in mesh["materials"]] == PART_MATERIALS
    assert all(mesh["targetNames"] == NAMES for mesh in meshes)
    gltf = pygltflib.GLTF2.load(str(files["unity.glb"][1]))
    (mesh,) = gltf.meshes
    assert mesh.extras["targetNames"] == NAMES
    assert [len(p.targets) for p in mesh.primitives] == [52] * len(PART_MATERIALS)
    assert all(p.extras["targetNames"] == NAMES for p in mesh.primitives)


def test_khronos_validator_finds_no_errors_and_no_warnings_in_the_glb(files):
    issues = khronos_validate(files["unity.glb"][1])["issues"]
    assert (issues["numErrors"], issues["numWarnings"]) == (0, 0), issues["messages"][:5]


# ----------------------------------------------------------------------------- .frig runtime
@pytest.fixture(scope="module")
def frig(unity):
    avatar, folder = unity
    return avatar, Rig.load(folder / "npc.frig")


def test_frig_holds_every_part_with_the_52_names_and_normals(frig):
    avatar, rig = frig
    assert rig.names == ARKIT_SHAPE_NAMES
    assert rig.vertex_count == sum(len(p.uvs) for p in avatar.parts.values())
    assert rig.has_normals


def test_frig_at_jaw_open_is_the_avatars_neutral_plus_delta(frig):
    avatar, rig = frig
    weights = np.zeros(52, np.float32)
    weights[NAMES.index("jawOpen")] = 1.0
    neutral = np.concatenate([p.split(p.vertices) for p in avatar.parts.values()])
    delta = np.concatenate([p.split(p.shape_deltas[NAMES.index("jawOpen")]) for p in avatar.parts.values()])
    # One float32 addition per coordinate (w = 1 makes the fused multiply-add exact).
    assert np.array_equal(rig.evaluate(weights), neutral + delta)


def test_frig_at_random_weights_is_the_avatars_blend_within_float32_rounding(frig):
    avatar, rig = frig
    weights = np.random.default_rng(7).uniform(-0.5, 1.5, 52)
    neutral = ours(avatar)
    deltas = np.concatenate([p.split(p.shape_deltas) for p in avatar.parts.values()], axis=1).astype(np.float64)
    expected = neutral + np.einsum("m,mnk->nk", weights, deltas)
    # Each of the 53 terms is rounded at most once per float32 add: |error| <= 53 eps (|S0| + sum |w dS|).
    bound = 53 * np.finfo(np.float32).eps * (np.abs(neutral) + np.einsum("m,mnk->nk", np.abs(weights),
                                                                          np.abs(deltas)))
    error = np.abs(rig.evaluate(weights.astype(np.float32)) - expected)
    assert np.all(error <= bound), float((error - bound).max())


def test_frig_vertex_k_is_fbx_vertex_k(frig, ufbx):
    """The rig's vertex order is the exported FBX geometry's, so a host can feed the runtime's
    output straight into the engine's mesh."""
    _, rig = frig
    np.testing.assert_allclose(rig.evaluate(np.zeros(52)), ufbx["unity.fbx"]["meshes"][0]["vertices"],
                               atol=1e-7)


def test_sidecar_lists_the_frig_and_each_parts_vertex_range(unity):
    avatar, folder = unity
    sidecar = json.loads((folder / "npc.json").read_text())
    assert sidecar["files"] == ["npc.glb", "npc.fbx", "npc.frig"]
    ranges = sidecar["parts"]
    assert [r["name"] for r in ranges] == list(avatar.parts)
    assert [r["count"] for r in ranges] == [len(p.uvs) for p in avatar.parts.values()]
    assert [r["first"] for r in ranges] == list(np.cumsum([0] + [r["count"] for r in ranges[:-1]]))


def test_c_program_loads_and_evaluates_the_built_avatars_frig(unity, frig, tmp_path):
    _, folder = unity
    _, rig = frig
    lib = runtime.library_path()
    program = compile_program(tmp_path / "evaluate_rig", [str(lib), f"-Wl,-rpath,{lib.parent}"])
    weights = np.zeros(52, np.float32)
    weights[[NAMES.index("jawOpen"), NAMES.index("eyeBlinkLeft")]] = 1.0
    (tmp_path / "weights.f32").write_bytes(weights.tobytes())
    run = subprocess.run([str(program), str(folder / "npc.frig"), str(tmp_path / "weights.f32"),
                          str(tmp_path / "positions.f32"), str(tmp_path / "normals.f32")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert f"vertices={rig.vertex_count} shapes=52" in run.stdout and "first=eyeBlinkLeft" in run.stdout
    positions, normals = rig.evaluate_with_normals(weights)
    assert np.array_equal(read_f32(tmp_path / "positions.f32"), positions)
    assert np.array_equal(read_f32(tmp_path / "normals.f32"), normals)


def test_cli_format_frig_writes_the_same_rig_bytes(unity, tmp_path):
    _, folder = unity
    assert main(["build", "--example", "astronaut", "-o", str(tmp_path / "npc.frig")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["npc.frig", "npc.json"]
    assert (tmp_path / "npc.frig").read_bytes() == (folder / "npc.frig").read_bytes()


def test_a_failing_writer_leaves_no_frig_and_no_temporary(monkeypatch, tmp_path):
    def refuse(asset, path, preset):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(engine_export, "write_fbx", refuse)
    with pytest.raises(ExportError, match="No space left"):
        build(EXAMPLES["astronaut"], out=tmp_path / "npc.frig", formats=("frig", "fbx"))
    assert list(tmp_path.iterdir()) == []
