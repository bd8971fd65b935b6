"""glTF 2.0 writer (.glb, or .gltf with a .bin next to it), built on pygltflib.

Layout of what is written (see docs/engine_export.md for the reasons):
- one buffer; one bufferView per accessor, 4-byte aligned, in the order the data is added;
- one node per mesh at the scene root (identity transform), then the joint nodes;
- morph targets: POSITION deltas (with min/max) and, when given, NORMAL deltas; each target
  accessor is sparse when that is smaller than dense (``sparse="auto"``);
- target names in ``mesh.extras.targetNames`` and in every ``primitive.extras.targetNames``;
- one animation per clip: a LINEAR sampler on path "weights", output frame-major (T x M floats),
  plus a LINEAR "rotation" sampler per joint the clip turns (``AnimationClip.joint_rotations``).
"""
from __future__ import annotations

import dataclasses
import json
import struct

import numpy as np
import pygltflib as g

from .atomic import check_destination, write_files_atomically
from .errors import ExportError
from .model import Asset, joint_world_matrices, validate_asset
from .presets import get_preset
from .rootjoint import add_root_joint

FLOAT, UBYTE, USHORT, UINT = 5126, 5121, 5123, 5125
ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER = 34962, 34963
LINEAR, LINEAR_MIPMAP_LINEAR, REPEAT = 9729, 9987, 10497
SPARSE_MODES = ("auto", "never")


class _Buffer:
    """Accumulates the binary buffer and the bufferViews/accessors that point into it."""

    def __init__(self, gltf: g.GLTF2):
        self.gltf = gltf
        self.blob = bytearray()
        self.zero_targets: dict = {}   # vertex count -> the one accessor of an all-zero target

    def view(self, data: bytes, target=None) -> int:
        self.blob += b"\0" * (-len(self.blob) % 4)
        self.gltf.bufferViews.append(
            g.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data), target=target))
        self.blob += data
        return len(self.gltf.bufferViews) - 1

    def accessor(self, array: np.ndarray, component: int, kind: str, *, target=None,
                 bounds=False) -> int:
        array = np.ascontiguousarray(array)
        acc = g.Accessor(bufferView=self.view(array.tobytes(), target), componentType=component,
                         count=len(array), type=kind)
        if bounds:
            acc.min, acc.max = _bounds(array)
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1

    def morph_accessor(self, deltas: np.ndarray, *, bounds: bool, sparse: str) -> int:
        """A VEC3 float accessor of (N, 3) deltas, sparse when that takes fewer bytes."""
        deltas = np.ascontiguousarray(deltas, dtype=np.float32)
        n = len(deltas)
        nonzero = deltas != 0
        # OR of the columns: several times faster than any(axis=1) on (N, 3), and a target is
        # written per shape and part (hundreds per avatar).
        moved = np.flatnonzero(nonzero[:, 0] | nonzero[:, 1] | nonzero[:, 2]).astype(np.uint32)
        if len(moved) == 0:
            # Most targets of a part are empty (an eyeball under the mouth's shapes): they all
            # share one accessor per vertex count, with zero bounds (true of any empty target).
            key = (n, sparse)
            if key not in self.zero_targets:
                self.zero_targets[key] = self._morph_accessor(deltas, moved, bounds=True, sparse=sparse)
            return self.zero_targets[key]
        return self._morph_accessor(deltas, moved, bounds=bounds, sparse=sparse)

    def _morph_accessor(self, deltas: np.ndarray, moved: np.ndarray, *, bounds: bool, sparse: str) -> int:
        n = len(deltas)
        index_type, index_dtype = ((UBYTE, np.uint8) if n <= 256 else
                                   (USHORT, np.uint16) if n <= 65536 else (UINT, np.uint32))
        if len(moved) == 0:
            # glTF needs sparse.count >= 1: one explicit zero keeps the accessor tiny.
            moved = np.zeros(1, dtype=np.uint32)
        index_bytes = len(moved) * np.dtype(index_dtype).itemsize
        sparse_size = index_bytes + (-index_bytes % 4) + len(moved) * 12
        if sparse == "never" or sparse_size >= n * 12:
            return self.accessor(deltas, FLOAT, "VEC3", target=ARRAY_BUFFER, bounds=bounds)
        acc = g.Accessor(componentType=FLOAT, count=n, type="VEC3", byteOffset=None, sparse=g.Sparse(
            count=len(moved),
            indices=g.AccessorSparseIndices(bufferView=self.view(moved.astype(index_dtype).tobytes()),
                                    componentType=index_type),
            values=g.AccessorSparseValues(bufferView=self.view(deltas[moved].tobytes()))))
        if bounds:
            # Bounds are over the whole accessor: the untouched vertices count as zero deltas.
            acc.min, acc.max = _bounds(deltas)
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def _bounds(array: np.ndarray):
    # Per column: reducing (N, C) over axis 0 is ~30x slower than C one-dimensional reductions.
    flat = array.reshape(len(array), -1)
    columns = [flat[:, c] for c in range(flat.shape[1])]
    return [c.min().item() for c in columns], [c.max().item() for c in columns]


def build_gltf(asset: Asset, preset="unity", sparse: str = "auto") -> tuple:
    """Return (pygltflib.GLTF2, binary blob) for a validated asset; nothing is written."""
    if sparse not in SPARSE_MODES:
        raise ExportError(f"sparse: {sparse!r} is not one of {SPARSE_MODES}")
    preset = get_preset(preset)
    validate_asset(asset)
    if preset.add_root_joint:
        asset = add_root_joint(asset)
    gltf = g.GLTF2(asset=g.Asset(version="2.0", generator="engine_export"))
    buf = _Buffer(gltf)

    texture_of = {}
    for mi, mat in enumerate(asset.materials):
        tex = mat.base_color_texture
        if tex is not None:
            gltf.images.append(g.Image(name=tex.name, mimeType=tex.mime_type,
                                       bufferView=buf.view(bytes(tex.data))))
            if not gltf.samplers:
                gltf.samplers.append(g.Sampler(magFilter=LINEAR, minFilter=LINEAR_MIPMAP_LINEAR,
                                               wrapS=REPEAT, wrapT=REPEAT))
            gltf.textures.append(g.Texture(source=len(gltf.images) - 1, sampler=0, name=tex.name))
            texture_of[mi] = len(gltf.textures) - 1
        pbr = g.PbrMetallicRoughness(
            baseColorFactor=[float(v) for v in mat.base_color_factor],
            metallicFactor=float(mat.metallic), roughnessFactor=float(mat.roughness),
            baseColorTexture=g.TextureInfo(index=texture_of[mi]) if mi in texture_of else None)
        gltf.materials.append(g.Material(
            name=mat.name, pbrMetallicRoughness=pbr, doubleSided=bool(mat.double_sided),
            alphaMode=mat.alpha_mode,
            alphaCutoff=float(mat.alpha_cutoff) if mat.alpha_mode == "MASK" else None))

    skel = asset.skeleton
    n_joints = 0 if skel is None else len(skel.joint_names)
    joint_node0 = len(asset.meshes)
    for mi, mesh in enumerate(asset.meshes):
        names = list(mesh.target_names)
        prims = []
        for prim in mesh.primitives:
            pos = np.asarray(prim.positions, dtype=np.float32)
            nrm = np.asarray(prim.normals, dtype=np.float64)
            nrm = (nrm / np.linalg.norm(nrm, axis=1, keepdims=True)).astype(np.float32)
            attrs = g.Attributes(
                POSITION=buf.accessor(pos, FLOAT, "VEC3", target=ARRAY_BUFFER, bounds=True),
                NORMAL=buf.accessor(nrm, FLOAT, "VEC3", target=ARRAY_BUFFER))
            if prim.uvs is not None:
                attrs.TEXCOORD_0 = buf.accessor(np.asarray(prim.uvs, dtype=np.float32), FLOAT,
                                                "VEC2", target=ARRAY_BUFFER)
            if prim.joints is not None:
                jdtype, jtype = (np.uint8, UBYTE) if n_joints <= 256 else (np.uint16, USHORT)
                w = np.asarray(prim.joint_weights, dtype=np.float64)
                w = (w / w.sum(axis=1, keepdims=True)).astype(np.float32)
                # glTF wants index 0 in every slot whose weight is zero.
                joints = np.where(w > 0, np.asarray(prim.joints), 0).astype(jdtype)
                attrs.JOINTS_0 = buf.accessor(joints, jtype,
                                              "VEC4", target=ARRAY_BUFFER)
                attrs.WEIGHTS_0 = buf.accessor(w, FLOAT, "VEC4", target=ARRAY_BUFFER)
            idx = np.asarray(prim.indices).reshape(-1)
            itype, idtype = (USHORT, np.uint16) if len(pos) <= 65535 else (UINT, np.uint32)
            indices = buf.accessor(idx.astype(idtype), itype, "SCALAR", target=ELEMENT_ARRAY_BUFFER)
            targets = []
            for t in range(len(names)):
                target = {"POSITION": buf.morph_accessor(prim.target_positions[t], bounds=True,
                                                         sparse=sparse)}
                if prim.target_normals is not None:
                    target["NORMAL"] = buf.morph_accessor(prim.target_normals[t], bounds=False,
                                                          sparse=sparse)
                targets.append(g.Attributes(**target))
            prims.append(g.Primitive(
                attributes=attrs, indices=indices, material=prim.material, mode=4,
                targets=targets or None,
                # Older UniVRM/UniGLTF read the names per primitive.
                extras={"targetNames": names} if names else None))
        weights = None
        if names:
            weights = [0.0] * len(names) if mesh.default_weights is None else \
                [float(v) for v in mesh.default_weights]
        gltf.meshes.append(g.Mesh(name=mesh.name, primitives=prims, weights=weights,
                                  extras={"targetNames": names} if names else None))
        skinned = mesh.primitives[0].joints is not None
        gltf.nodes.append(g.Node(name=mesh.name, mesh=mi, skin=0 if skinned else None))

    roots = list(range(len(asset.meshes)))
    if skel is not None:
        parents = np.asarray(skel.parents)
        for j, name in enumerate(skel.joint_names):
            children = [joint_node0 + c for c in np.flatnonzero(parents == j).tolist()]
            node = g.Node(name=name, children=children or None,
                          translation=[float(v) for v in skel.translations[j]],
                          rotation=[float(v) for v in skel.rotations[j]])
            if skel.scales is not None:
                node.scale = [float(v) for v in skel.scales[j]]
            gltf.nodes.append(node)
            if parents[j] < 0:
                roots.append(joint_node0 + j)
        inverse_bind = np.linalg.inv(joint_world_matrices(skel))
        # glTF matrices are column-major: store each matrix transposed.
        ibm = buf.accessor(inverse_bind.transpose(0, 2, 1).astype(np.float32).reshape(-1, 16),
                           FLOAT, "MAT4")
        gltf.skins.append(g.Skin(name=asset.name, joints=list(range(joint_node0, joint_node0 + n_joints)),
                                 inverseBindMatrices=ibm))
    gltf.scenes.append(g.Scene(name=asset.name, nodes=roots))
    gltf.scene = 0

    for clip in asset.animations:
        times = np.asarray(clip.times, dtype=np.float32)
        # Frame-major: all M weights of key 0, then key 1, ... (the spec's layout for "weights").
        weights = np.asarray(clip.weights, dtype=np.float32).reshape(-1)
        key_times = buf.accessor(times, FLOAT, "SCALAR", bounds=True)
        samplers = [g.AnimationSampler(input=key_times, output=buf.accessor(weights, FLOAT, "SCALAR"),
                                       interpolation="LINEAR")]
        channels = [g.AnimationChannel(sampler=0, target=g.AnimationChannelTarget(node=clip.mesh,
                                                                                 path="weights"))]
        # Joint rotations: one LINEAR "rotation" sampler per joint (glTF slerps between keys).
        for j, name in enumerate(skel.joint_names if clip.joint_rotations else ()):
            if name not in clip.joint_rotations:
                continue
            quats = np.asarray(clip.joint_rotations[name], dtype=np.float64)
            quats = (quats / np.linalg.norm(quats, axis=1, keepdims=True)).astype(np.float32)
            samplers.append(g.AnimationSampler(input=key_times, output=buf.accessor(quats, FLOAT, "VEC4"),
                                               interpolation="LINEAR"))
            channels.append(g.AnimationChannel(sampler=len(samplers) - 1, target=g.AnimationChannelTarget(
                node=joint_node0 + j, path="rotation")))
        gltf.animations.append(g.Animation(name=clip.name, samplers=samplers, channels=channels))

    buf.blob += b"\0" * (-len(buf.blob) % 4)
    gltf.buffers.append(g.Buffer(byteLength=len(buf.blob)))
    return gltf, bytes(buf.blob)


_PLAIN_KINDS: dict = {}


def _plain_kind(cls) -> int:
    """How :func:`_plain` walks an instance of ``cls`` (1 object, 2 dict, 3 sequence, 4 numpy
    scalar, 0 leaf); decided once per type, since the same few types recur thousands of times."""
    kind = _PLAIN_KINDS.get(cls)
    if kind is None:
        kind = (1 if dataclasses.is_dataclass(cls) or issubclass(cls, g.Attributes) else
                2 if issubclass(cls, dict) else 3 if issubclass(cls, (list, tuple)) else
                4 if issubclass(cls, np.generic) else 0)
        _PLAIN_KINDS[cls] = kind
    return kind


def _plain(obj):
    """A pygltflib object as plain JSON data, with None and empty values left out.

    pygltflib's own serialisation deep-copies every object and took most of the time of
    writing a 52-target avatar; this walks the same dataclasses once.
    """
    kind = _plain_kind(type(obj))
    if kind == 1:
        items = obj.__dict__.items()            # Attributes is a plain class with custom keys
    elif kind == 2:
        items = obj.items()
    elif kind == 3:
        return [_plain(v) for v in obj]
    elif kind == 4:
        return obj.item()
    else:
        return obj
    out = {}
    for key, value in items:
        if value is None or key.startswith("_"):
            continue                             # pygltflib's private state (paths, loaded blobs)
        if type(value) not in _PLAIN_LEAVES:     # numbers and names (most values) need no walk
            value = _plain(value)
            if value is None or (isinstance(value, (list, dict, str)) and len(value) == 0):
                continue
        elif type(value) is str and not value:
            continue
        out[key] = value
    return out


_PLAIN_LEAVES = frozenset((int, float, bool, str))


def glb_bytes(gltf: g.GLTF2, blob: bytes) -> bytes:
    """The .glb container: 12-byte header, a JSON chunk padded with spaces, a BIN chunk padded with zeros."""
    gltf.buffers = [g.Buffer(byteLength=len(blob))]
    text = json.dumps(_plain(gltf), separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary = bytes(blob) + b"\0" * (-len(blob) % 4)
    length = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join([b"glTF", struct.pack("<II", 2, length), struct.pack("<I", len(text)), b"JSON", text,
                     struct.pack("<I", len(binary)), b"BIN\0", binary])


def write_gltf(asset: Asset, path, preset="unity", *, sparse: str = "auto") -> None:
    """Write ``asset`` as glTF 2.0: binary when ``path`` ends in .glb; for .gltf the buffer goes
    to a .bin of the same stem.  Raises ExportError before writing anything if the asset is
    invalid; the files appear atomically.  ``sparse``: "auto" (per target, whichever of sparse
    and dense is smaller) or "never"."""
    path = check_destination(path, (".glb", ".gltf"))
    gltf, blob = build_gltf(asset, preset, sparse)
    if path.suffix.lower() == ".glb":
        write_files_atomically({path: glb_bytes(gltf, blob)})
    else:
        bin_path = path.with_suffix(".bin")
        gltf.buffers[0].uri = bin_path.name
        text = json.dumps(_plain(gltf), separators=(",", ":"), allow_nan=False)
        write_files_atomically({bin_path: blob, path: text.encode("utf-8")})
