"""engine_export's data model: the small test head every export test writes, and the bad inputs
that must be refused before anything is written.

The head is built here, not loaded: an ellipsoid "skin" (UV sphere with a seam, textured by a
Pillow PNG) and two eyeballs in a second primitive, sharing six morph targets named as ARKit
shapes.  ``tongueOut`` moves nothing in either primitive (the empty-shape case), the eyes move
only in ``eyeLookUpLeft``, and the skin moves in the others.
"""
import io

import numpy as np
import pytest
from PIL import Image

import engine_export as ee

TARGET_NAMES = ("jawOpen", "eyeBlinkLeft", "mouthSmileLeft", "browInnerUp", "eyeLookUpLeft",
                "tongueOut")
HEAD_RADII = np.array([0.075, 0.105, 0.09])  # metres: a head-sized ellipsoid
EYE_CENTERS = np.array([[0.032, 0.03, 0.07], [-0.032, 0.03, 0.07]])
EYE_RADIUS = 0.012


def uv_sphere(rings: int, segments: int):
    """Unit sphere: (positions, uvs, faces).  Poles are single vertices; the seam column is
    duplicated so that the UVs have no wrap-around."""
    pos, uvs = [[0.0, 1.0, 0.0]], [[0.5, 0.0]]
    for i in range(1, rings):
        theta = np.pi * i / rings
        for j in range(segments + 1):
            phi = 2 * np.pi * j / segments
            pos.append([np.sin(theta) * np.sin(phi), np.cos(theta), np.sin(theta) * np.cos(phi)])
            uvs.append([j / segments, i / rings])
    pos.append([0.0, -1.0, 0.0])
    uvs.append([0.5, 1.0])
    row = lambda i: 1 + (i - 1) * (segments + 1)  # first vertex of ring i
    faces = []
    for j in range(segments):
        faces.append([0, row(1) + j, row(1) + j + 1])
        last = len(pos) - 1
        faces.append([last, row(rings - 1) + j + 1, row(rings - 1) + j])
    for i in range(1, rings - 1):
        for j in range(segments):
            a, b = row(i) + j, row(i) + j + 1
            c, d = row(i + 1) + j, row(i + 1) + j + 1
            faces += [[a, c, b], [b, c, d]]
    return np.array(pos), np.array(uvs, dtype=np.float32), np.array(faces, dtype=np.int32)


def vertex_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals, (N, 3) float64 unit length."""
    p = positions[faces]
    fn = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    n = np.zeros_like(positions)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _smooth_bump(positions, center, radius):
    d = np.linalg.norm(positions - center, axis=1) / radius
    return np.clip(1 - d * d, 0, None) ** 2


def _skin():
    unit, uvs, faces = uv_sphere(12, 24)
    pos = unit * HEAD_RADII
    deltas = np.zeros((len(TARGET_NAMES), len(pos), 3))
    # jawOpen: everything below the crown drops, the chin most (a dense target).
    below = np.clip((0.095 - pos[:, 1]) / (0.095 + HEAD_RADII[1]), 0, None)
    deltas[0, :, 1] = -0.02 * below ** 2
    deltas[0, :, 2] = -0.004 * below
    eye = _smooth_bump(pos, EYE_CENTERS[0] + [0, 0.01, 0.02], 0.03)
    deltas[1, :, 1] = -0.008 * eye  # eyeBlinkLeft
    corner = _smooth_bump(pos, [0.03, -0.04, 0.07], 0.03)
    deltas[2] = corner[:, None] * [0.004, 0.005, -0.002]  # mouthSmileLeft
    brow = _smooth_bump(pos, [0.0, 0.055, 0.07], 0.035)
    deltas[3, :, 1] = 0.006 * brow  # browInnerUp
    return pos, uvs, faces, deltas


def _eyes():
    unit, uvs, faces = uv_sphere(6, 12)
    pos = np.concatenate([unit * EYE_RADIUS + c for c in EYE_CENTERS])
    faces = np.concatenate([faces, faces + len(unit)])
    uvs = np.concatenate([uvs, uvs])
    deltas = np.zeros((len(TARGET_NAMES), len(pos), 3))
    # eyeLookUpLeft: the left eyeball (first half) turns up; small rotation as a displacement.
    left = np.arange(len(unit))
    rel = pos[left] - EYE_CENTERS[0]
    angle = np.radians(20)
    rot = np.array([[1, 0, 0], [0, np.cos(angle), np.sin(angle)], [0, -np.sin(angle), np.cos(angle)]])
    deltas[4, left] = rel @ rot.T - rel
    return pos, uvs, faces, deltas


def _primitive(pos, uvs, faces, deltas, material, joints=None, joint_weights=None):
    normals = vertex_normals(pos, faces)
    target_normals = np.stack([vertex_normals(pos + d, faces) - normals for d in deltas])
    target_normals[np.abs(target_normals) < 1e-7] = 0
    return ee.Primitive(positions=pos.astype(np.float32), normals=normals.astype(np.float32),
                        uvs=uvs, indices=faces, material=material,
                        target_positions=deltas.astype(np.float32),
                        target_normals=target_normals.astype(np.float32),
                        joints=joints, joint_weights=joint_weights)


def skin_png(fmt: str = "PNG") -> bytes:
    """A 64x64 image made by Pillow (PNG or JPEG): a warm gradient with a darker band."""
    y, x = np.mgrid[0:64, 0:64]
    rgb = np.stack([200 + x // 2, 150 + y // 2, 120 + 0 * x], axis=-1).astype(np.uint8)
    rgb[28:36] //= 2
    out = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(out, format=fmt)
    return out.getvalue()


def make_head_asset(*, skeleton: bool = False, clip: bool = True, jpeg: bool = False) -> ee.Asset:
    """The test head: one mesh "head" with primitives skin + eyes sharing TARGET_NAMES.
    The skin texture is a PNG, or a JPEG with ``jpeg=True``."""
    skin, eyes = _skin(), _eyes()
    prim_joints = [None, None]
    skel = None
    if skeleton:
        # root -> skull -> jaw; the lower skin follows the jaw, everything else the skull.
        skel = ee.Skeleton(joint_names=("root", "skull", "jaw"), parents=np.array([-1, 0, 1]),
                           translations=np.array([[0, 0, 0], [0, 0.02, 0], [0, -0.03, 0.01]]),
                           rotations=np.array([[0, 0, 0, 1.0]] * 3))
        for k, (pos, *_rest) in enumerate((skin, eyes)):
            n = len(pos)
            jaw = np.clip(-pos[:, 1] / HEAD_RADII[1], 0, 1) if k == 0 else np.zeros(n)
            joints = np.tile(np.array([1, 2, 0, 0], dtype=np.uint16), (n, 1))
            weights = np.zeros((n, 4), dtype=np.float32)
            weights[:, 0], weights[:, 1] = 1 - jaw, jaw
            prim_joints[k] = (joints, weights)
    prims = []
    for k, (data, material) in enumerate(((skin, 0), (eyes, 1))):
        jw = prim_joints[k] or (None, None)
        prims.append(_primitive(*data, material, *jw))
    materials = [
        ee.Material(name="skin", base_color_texture=ee.Texture(
            "skin_albedo", skin_png("JPEG") if jpeg else skin_png(),
            "image/jpeg" if jpeg else "image/png"),
                    roughness=0.6),
        ee.Material(name="eye", base_color_factor=(0.95, 0.95, 0.95, 1.0), roughness=0.1),
    ]
    mesh = ee.Mesh(name="head", primitives=prims, target_names=TARGET_NAMES,
                   default_weights=np.zeros(len(TARGET_NAMES)))
    clips = []
    if clip:
        times = np.array([0.0, 0.5, 1.0, 1.5])
        weights = np.zeros((4, len(TARGET_NAMES)))
        weights[1, 0], weights[2, 1], weights[3, 2] = 1.0, 1.0, 0.5
        clips.append(ee.AnimationClip(name="talk", times=times, weights=weights, mesh=0))
    return ee.Asset(name="test_head", meshes=[mesh], materials=materials, skeleton=skel,
                    animations=clips)


def head_size(asset: ee.Asset) -> float:
    """Diagonal of the bounding box of every vertex, in metres."""
    pos = np.concatenate([p.positions for m in asset.meshes for p in m.primitives])
    return float(np.linalg.norm(pos.max(axis=0) - pos.min(axis=0)))


# ------------------------------------------------------------------ the test asset itself

def test_test_head_is_a_valid_asset_with_skeleton_and_clip():
    ee.validate_asset(make_head_asset(skeleton=True), ascii_names=True)


def test_test_head_has_an_empty_target_and_targets_that_move_only_one_primitive():
    skin, eyes = make_head_asset().meshes[0].primitives
    moved = lambda p: [bool(np.any(d != 0)) for d in p.target_positions]
    assert moved(skin) == [True, True, True, True, False, False]
    assert moved(eyes) == [False, False, False, False, True, False]


# ------------------------------------------------------------------ bad input

WRITERS = {
    "glb": lambda asset, path: ee.write_gltf(asset, path),
    "gltf": lambda asset, path: ee.write_gltf(asset, path),
    "fbx": lambda asset, path: ee.write_fbx(asset, path),
}


def _first_prim(asset):
    return asset.meshes[0].primitives[0]


def _set(attr, value_fn):
    def edit(asset):
        prim = _first_prim(asset)
        setattr(prim, attr, value_fn(prim))
    return edit


def _nan_position(asset):
    _first_prim(asset).positions[3, 1] = np.nan


def _add_joints(asset, weight):
    asset.skeleton = ee.Skeleton(joint_names=("root",), parents=np.array([-1]),
                                 translations=np.zeros((1, 3)), rotations=np.array([[0, 0, 0, 1.0]]))
    for prim in asset.meshes[0].primitives:
        n = len(prim.positions)
        prim.joints = np.zeros((n, 4), dtype=np.uint16)
        prim.joint_weights = np.zeros((n, 4), dtype=np.float32)
        prim.joint_weights[:, 0] = weight


def _rename_target(name):
    def edit(asset):
        names = list(asset.meshes[0].target_names)
        names[1] = name
        asset.meshes[0].target_names = tuple(names)
    return edit


BAD_ASSETS = {
    "nan position": _nan_position,
    "inf target delta": _set("target_positions", lambda p: np.where(
        np.arange(p.target_positions.size).reshape(p.target_positions.shape) == 7, np.inf,
        p.target_positions)),
    "normals shorter than positions": _set("normals", lambda p: p.normals[:-1]),
    "uvs with three columns": _set("uvs", lambda p: np.zeros((len(p.positions), 3))),
    "index out of range": _set("indices", lambda p: np.where(p.indices == 5, len(p.positions),
                                                             p.indices)),
    "negative index": _set("indices", lambda p: np.where(p.indices == 5, -1, p.indices)),
    "float indices": _set("indices", lambda p: p.indices.astype(np.float64)),
    "non-unit normals": _set("normals", lambda p: p.normals * 2),
    "target count differs between primitives": _set("target_positions",
                                                    lambda p: p.target_positions[:-1]),
    "target deltas for fewer vertices": _set("target_positions",
                                             lambda p: p.target_positions[:, :-1]),
    "duplicate target name": _rename_target("jawOpen"),
    "empty target name": _rename_target(""),
    "target name with NUL": _rename_target("eye\x00Blink"),
    "target name with newline": _rename_target("eye\nBlink"),
    "material index out of range": _set("material", lambda p: 7),
    "joints without skeleton": _set("joints", lambda p: np.zeros((len(p.positions), 4), int)),
    "duplicate material name": lambda a: setattr(a.materials[1], "name", "skin"),
    "texture that is not a PNG": lambda a: setattr(a.materials[0].base_color_texture, "data",
                                                   b"GIF89a...."),
    "clip with decreasing times": lambda a: setattr(a.animations[0], "times",
                                                    np.array([0.0, 1.0, 0.5, 2.0])),
    "clip weights for too few targets": lambda a: setattr(a.animations[0], "weights",
                                                          a.animations[0].weights[:, :-1]),
    "clip with NaN weight": lambda a: a.animations[0].weights.__setitem__((1, 1), np.nan),
    "no meshes": lambda a: setattr(a, "meshes", []),
    "target names given as one string": lambda a: setattr(a.meshes[0], "target_names", "jawOpen"),
    "two textures with one name": lambda a: setattr(
        a.materials[1], "base_color_texture", ee.Texture("skin_albedo", skin_png()[:-4] + b"xxxx")),
    "joint weights not summing to one": lambda a: _add_joints(a, weight=0.9),
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
@pytest.mark.parametrize("case", sorted(BAD_ASSETS))
def test_bad_asset_raises_export_error_and_writes_nothing(tmp_path, case, fmt):
    asset = make_head_asset()
    BAD_ASSETS[case](asset)
    with pytest.raises(ee.ExportError):
        WRITERS[fmt](asset, tmp_path / f"head.{fmt}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["eyeBlink\u00e9", "jaw:Open"])
def test_names_fbx_cannot_carry_are_refused_by_fbx_but_written_to_gltf(tmp_path, name):
    asset = make_head_asset()
    _rename_target(name)(asset)
    with pytest.raises(ee.ExportError, match="FBX"):
        ee.write_fbx(asset, tmp_path / "head.fbx")
    assert list(tmp_path.iterdir()) == []
    ee.write_gltf(asset, tmp_path / "head.glb")
    assert [p.name for p in tmp_path.iterdir()] == ["head.glb"]


def test_error_message_names_the_offending_array(tmp_path):
    asset = make_head_asset()
    _nan_position(asset)
    with pytest.raises(ee.ExportError, match=r"meshes\[0\] \(head\)\.primitives\[0\]\.positions"):
        ee.write_gltf(asset, tmp_path / "head.glb")


def test_export_error_is_a_value_error():
    assert issubclass(ee.ExportError, ValueError)


@pytest.mark.parametrize("path", ["head.obj", "missing_folder/head.glb"])
def test_bad_destination_raises_export_error(tmp_path, path):
    with pytest.raises(ee.ExportError):
        ee.write_gltf(make_head_asset(), tmp_path / path)
    assert list(tmp_path.iterdir()) == []


def test_unknown_preset_raises_export_error(tmp_path):
    with pytest.raises(ee.ExportError, match="preset"):
        ee.write_fbx(make_head_asset(), tmp_path / "head.fbx", preset="godot")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_raises_export_error():
    # /proc refuses new files even for root, so this holds wherever the tests run.
    with pytest.raises(ee.ExportError, match="cannot write"):
        ee.write_fbx(make_head_asset(), "/proc/head.fbx")


def test_written_files_get_the_usual_permissions_not_temporary_ones(tmp_path):
    import os
    ee.write_fbx(make_head_asset(), tmp_path / "head.fbx")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "head.fbx").stat().st_mode & 0o777 == 0o666 & ~mask


def test_failure_while_renaming_leaves_old_files_and_no_temporaries(tmp_path, monkeypatch):
    """A .gltf is two files; if the second rename fails (disk full, say), nothing new remains
    half-done: temporaries are removed and the error says which files."""
    import engine_export.atomic as atomic
    (tmp_path / "head.gltf").write_bytes(b"old gltf")
    real_replace, calls = atomic.os.replace, []

    def replace_then_fail(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace_then_fail)
    with pytest.raises(ee.ExportError, match="No space left"):
        ee.write_gltf(make_head_asset(), tmp_path / "head.gltf")
    assert (tmp_path / "head.gltf").read_bytes() == b"old gltf"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# ------------------------------------------------------------------ determinism

@pytest.mark.parametrize("suffix", ["glb", "gltf", "fbx"])
@pytest.mark.parametrize("preset", sorted(ee.PRESETS))
def test_same_asset_written_twice_is_byte_identical(tmp_path, suffix, preset):
    write = ee.write_fbx if suffix == "fbx" else ee.write_gltf
    out = []
    for k in range(2):
        folder = tmp_path / str(k)
        folder.mkdir()
        write(make_head_asset(skeleton=True), folder / f"head.{suffix}", preset=preset)
        out.append({p.name: p.read_bytes() for p in sorted(folder.iterdir())})
    assert out[0] == out[1]
    assert all(len(b) > 1000 for b in out[0].values())
