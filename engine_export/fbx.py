"""FBX 7.4 binary writer: builds the node tree described in docs/engine_export.md.

Per mesh of the asset:
- one Geometry "Mesh" holding all its primitives (vertices concatenated, never welded), with
  normals and UVs per polygon vertex, smoothing per polygon and a material index per polygon;
- one Model "Mesh" at the scene root with the identity transform;
- when it has targets: one Deformer "BlendShape" with one "BlendShapeChannel" per target name
  (FullWeights 100) and one Geometry "Shape" per channel holding only the moved vertices
  (indices, position deltas, normal deltas).  A target that moves nothing is written with one
  zero delta on vertex 0 rather than empty: Unity crashes on empty shapes, and dropping the
  channel would lose a name that animation drivers look up;
- when skinned: Deformer "Skin" with one "Cluster" per influencing joint and a BindPose.
Joints become LimbNode Models.  Clips become AnimationStack -> AnimationLayer ->
AnimationCurveNode "DeformPercent" -> AnimationCurve (weights x 100, linear keys), and for the
joints a clip turns, AnimationCurveNode "R" on the LimbNode's Lcl Rotation -> three
AnimationCurves d|X, d|Y, d|Z (XYZ Euler degrees in the file's axes, linear keys).
Object ids are assigned by a counter in a fixed order, so the output is deterministic.
"""
from __future__ import annotations

import numpy as np

from .atomic import check_destination, write_files_atomically
from .fbx_binary import CREATION_TIME, FILE_ID, Node, encode_file
from .model import Asset, joint_world_matrices, quat_to_matrix, validate_asset
from .presets import Preset, get_preset
from .rootjoint import add_root_joint

KTIME_PER_SECOND = 46186158000  # FBX time unit (FBX 7.x)
INTERPOLATION_LINEAR = 0x4  # KeyAttrFlags bit for linear keys
# KeyAttrDataFloat holds (right slope, next left slope, packed tangent weights, velocity);
# the weights are two int16 in units of 1/10000: 3333 and 3333, i.e. the default 1/3.
DEFAULT_TANGENT_WEIGHTS = np.array([0x0D050D05], dtype=np.int32).view(np.float32)[0]
FIRST_ID = 1_000_000


def _p(name: str, type_: str, label: str, flags: str, *values) -> Node:
    """One Properties70 entry."""
    return Node("P", name, type_, label, flags, *values)


def _props(*entries: Node) -> Node:
    return Node("Properties70", children=entries)


def _name(name: str, cls: str) -> str:
    """FBX's "name\\0\\1class" object name (binary files separate the two with NUL, 0x01)."""
    return f"{name}\x00\x01{cls}"


def _matrix(m: np.ndarray) -> np.ndarray:
    """4x4 matrix as FBX stores it: 16 doubles, column-major."""
    return np.ascontiguousarray(np.asarray(m, dtype=np.float64).T).reshape(16)


def _euler_xyz_degrees(r: np.ndarray) -> np.ndarray:
    """Angles (x, y, z) in degrees with r = Rz @ Ry @ Rx (FBX's default rotation order XYZ)."""
    sy = -r[2, 0]
    if abs(sy) < 1 - 1e-9:
        x, y, z = np.arctan2(r[2, 1], r[2, 2]), np.arcsin(sy), np.arctan2(r[1, 0], r[0, 0])
    else:  # gimbal lock: put everything in x
        x, y, z = np.arctan2(-r[1, 2], r[1, 1]), np.copysign(np.pi / 2, sy), 0.0
    return np.degrees([x, y, z])


def _trs_props(matrix: np.ndarray) -> list:
    t = matrix[:3, 3]
    s = np.linalg.norm(matrix[:3, :3], axis=0)
    angles = _euler_xyz_degrees(matrix[:3, :3] / s)
    return [_p("Lcl Translation", "Lcl Translation", "", "A", *map(float, t)),
            _p("Lcl Rotation", "Lcl Rotation", "", "A", *map(float, angles)),
            _p("Lcl Scaling", "Lcl Scaling", "", "A", *map(float, s))]


class _Scene:
    """Collects objects and connections in the order they are made."""

    def __init__(self):
        self.next_id = FIRST_ID
        self.objects = []
        self.connections = []
        self.counts = {}

    def add(self, kind: str, name: str, cls: str, subtype: str, *children: Node) -> np.int64:
        oid = np.int64(self.next_id)
        self.next_id += 1
        self.objects.append(Node(kind, oid, _name(name, cls), subtype, children=children))
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return oid

    def connect(self, child, parent, prop: str | None = None):
        if prop is None:
            self.connections.append(Node("C", "OO", np.int64(child), np.int64(parent)))
        else:
            self.connections.append(Node("C", "OP", np.int64(child), np.int64(parent), prop))


def _merged_mesh(mesh, basis: np.ndarray):
    """Concatenate the primitives of ``mesh`` in FBX file coordinates."""
    rotation = basis / np.linalg.norm(basis[0])
    pos, nrm, uvs, faces, tgt, tgt_n, mats, joints, weights = [], [], [], [], [], [], [], [], []
    offset = 0
    m = len(mesh.target_names)
    for prim in mesh.primitives:
        n = len(prim.positions)
        pos.append(np.asarray(prim.positions, np.float64) @ basis.T)
        nn = np.asarray(prim.normals, np.float64)
        nrm.append((nn / np.linalg.norm(nn, axis=1, keepdims=True)) @ rotation.T)
        uvs.append(np.zeros((n, 2)) if prim.uvs is None else np.asarray(prim.uvs, np.float64))
        faces.append(np.asarray(prim.indices, np.int64) + offset)
        mats.append(np.full(len(prim.indices), -1 if prim.material is None else prim.material))
        if m:
            tgt.append(np.asarray(prim.target_positions, np.float64) @ basis.T)
            tgt_n.append(np.zeros((m, n, 3)) if prim.target_normals is None else
                         np.asarray(prim.target_normals, np.float64) @ rotation.T)
        if prim.joints is not None:
            joints.append(np.asarray(prim.joints, np.int64))
            weights.append(np.asarray(prim.joint_weights, np.float64))
        offset += n
    out = dict(positions=np.concatenate(pos), normals=np.concatenate(nrm),
               uvs=np.concatenate(uvs), faces=np.concatenate(faces),
               face_materials=np.concatenate(mats))
    if m:
        out["targets"] = np.concatenate(tgt, axis=1)
        out["target_normals"] = np.concatenate(tgt_n, axis=1)
        # Which vertices a target moves is decided on the given data, before the basis change
        # can turn an exact zero into a rounding residue.
        # Vertices next to moved ones often change only their normal: they belong in the shape.
        out["moved"] = np.concatenate([
            np.any(np.asarray(p.target_positions) != 0, axis=2) |
            (False if p.target_normals is None else np.any(np.asarray(p.target_normals) != 0, axis=2))
            for p in mesh.primitives], axis=1)
    if joints:
        out["joints"], out["weights"] = np.concatenate(joints), np.concatenate(weights)
    return out


def _geometry_children(data: dict, material_slots: dict) -> list:
    faces = data["faces"]
    polygon_vertex_index = faces.copy()
    polygon_vertex_index[:, 2] = -polygon_vertex_index[:, 2] - 1  # last corner marks the end
    uvs = data["uvs"].copy()
    uvs[:, 1] = 1 - uvs[:, 1]  # FBX's v runs up from the image's bottom
    children = [
        Node("GeometryVersion", 124),
        Node("Vertices", data["positions"].reshape(-1)),
        Node("PolygonVertexIndex", polygon_vertex_index.astype(np.int32).reshape(-1)),
        Node("LayerElementNormal", 0, children=[
            Node("Version", 101), Node("Name", ""),
            Node("MappingInformationType", "ByPolygonVertex"),
            Node("ReferenceInformationType", "Direct"),
            Node("Normals", data["normals"][faces].reshape(-1))]),
        Node("LayerElementSmoothing", 0, children=[
            Node("Version", 102), Node("Name", ""),
            Node("MappingInformationType", "ByPolygon"),
            Node("ReferenceInformationType", "Direct"),
            Node("Smoothing", np.ones(len(faces), dtype=np.int32))]),
        Node("LayerElementUV", 0, children=[
            Node("Version", 101), Node("Name", "UVMap"),
            Node("MappingInformationType", "ByPolygonVertex"),
            Node("ReferenceInformationType", "IndexToDirect"),
            Node("UV", uvs.reshape(-1)),
            Node("UVIndex", faces.astype(np.int32).reshape(-1))]),
    ]
    layer = [Node("Version", 100)]
    for kind in ("LayerElementNormal", "LayerElementSmoothing", "LayerElementUV"):
        layer.append(Node("LayerElement", children=[Node("Type", kind), Node("TypedIndex", 0)]))
    if material_slots:
        slots = np.array([material_slots[m] for m in data["face_materials"]], dtype=np.int32)
        children.append(Node("LayerElementMaterial", 0, children=[
            Node("Version", 101), Node("Name", ""),
            Node("MappingInformationType", "ByPolygon"),
            Node("ReferenceInformationType", "IndexToDirect"),
            Node("Materials", slots)]))
        layer.append(Node("LayerElement", children=[Node("Type", "LayerElementMaterial"),
                                                    Node("TypedIndex", 0)]))
    children.append(Node("Layer", 0, children=layer))
    return children


def _material_nodes(mat) -> list:
    r, g, b, a = (float(v) for v in mat.base_color_factor)
    # Phong approximation of metallic-roughness: glossier surfaces get a higher exponent.
    shininess = 2.0 / max(float(mat.roughness), 0.05) ** 4 - 2.0
    return [Node("Version", 102), Node("ShadingModel", "phong"), Node("MultiLayer", 0),
            _props(_p("DiffuseColor", "Color", "", "A", r, g, b),
                   _p("DiffuseFactor", "Number", "", "A", 1.0),
                   _p("TransparencyFactor", "Number", "", "A", 1.0 - a),
                   _p("Opacity", "double", "Number", "", a),
                   _p("SpecularColor", "Color", "", "A", 0.5, 0.5, 0.5),
                   _p("SpecularFactor", "Number", "", "A", 1.0 - float(mat.roughness)),
                   _p("ShininessExponent", "Number", "", "A", min(shininess, 1024.0)),
                   _p("ReflectionFactor", "Number", "", "A", float(mat.metallic)))]


def _texture_objects(scene: _Scene, mat, material_id):
    tex = mat.base_color_texture
    filename = tex.name + (".png" if tex.mime_type == "image/png" else ".jpg")
    video = scene.add("Video", tex.name, "Video", "Clip",
                      Node("Type", "Clip"),
                      _props(_p("Path", "KString", "XRefUrl", "", filename)),
                      Node("UseMipMap", 0), Node("Filename", filename),
                      Node("RelativeFilename", filename), Node("Content", bytes(tex.data)))
    texture = scene.add("Texture", tex.name, "Texture", "",
                        Node("Type", "TextureVideoClip"), Node("Version", 202),
                        Node("TextureName", _name(tex.name, "Texture")),
                        _props(_p("UVSet", "KString", "", "", "UVMap"),
                               _p("UseMaterial", "bool", "", "", 1)),
                        Node("Media", _name(tex.name, "Video")), Node("FileName", filename),
                        Node("RelativeFilename", filename),
                        Node("ModelUVTranslation", 0.0, 0.0), Node("ModelUVScaling", 1.0, 1.0),
                        Node("Texture_Alpha_Source", "None"), Node("Cropping", 0, 0, 0, 0))
    scene.connect(video, texture)
    scene.connect(texture, material_id, "DiffuseColor")


def _blend_shape(scene: _Scene, mesh, data: dict, geometry_id) -> list:
    """BlendShape deformer, channels and shapes; returns the channel ids in target order."""
    deformer = scene.add("Deformer", mesh.name, "Deformer", "BlendShape", Node("Version", 100))
    scene.connect(deformer, geometry_id)
    defaults = np.zeros(len(mesh.target_names)) if mesh.default_weights is None else \
        np.asarray(mesh.default_weights, np.float64)
    channels = []
    for t, name in enumerate(mesh.target_names):
        moved = np.flatnonzero(data["moved"][t])
        if len(moved) == 0:
            moved = np.zeros(1, dtype=np.int64)  # never an empty shape (see module docstring)
        still = ~data["moved"][t][moved]
        deltas, normal_deltas = data["targets"][t][moved], data["target_normals"][t][moved]
        deltas[still], normal_deltas[still] = 0, 0
        shape = scene.add("Geometry", name, "Geometry", "Shape",
                          Node("Version", 100),
                          Node("Indexes", moved.astype(np.int32)),
                          Node("Vertices", deltas.reshape(-1)),
                          Node("Normals", normal_deltas.reshape(-1)))
        channel = scene.add("Deformer", name, "SubDeformer", "BlendShapeChannel",
                            Node("Version", 100),
                            Node("DeformPercent", float(defaults[t] * 100)),
                            Node("FullWeights", np.array([100.0])))
        scene.connect(shape, channel)
        scene.connect(channel, deformer)
        channels.append(channel)
    return channels


def _skin(scene: _Scene, mesh, data: dict, geometry_id, joint_ids, joint_names,
          bind_world) -> None:
    skin = scene.add("Deformer", mesh.name, "Deformer", "Skin",
                     Node("Version", 101), Node("Link_DeformAcuracy", 50.0))
    scene.connect(skin, geometry_id)
    weights = data["weights"] / data["weights"].sum(axis=1, keepdims=True)
    joints = data["joints"]
    for j, joint_id in enumerate(joint_ids):
        mask = (joints == j) & (weights > 0)
        vertices = np.flatnonzero(mask.any(axis=1))
        if len(vertices) == 0:
            continue
        w = (weights * mask).sum(axis=1)[vertices]
        # Transform: the mesh (identity) seen from the joint at bind time, i.e. the inverse bind
        # matrix; TransformLink: the joint's world matrix at bind time.
        cluster = scene.add("Deformer", joint_names[j], "SubDeformer", "Cluster",
                            Node("Version", 100), Node("UserData", "", ""),
                            Node("Indexes", vertices.astype(np.int32)),
                            Node("Weights", w.astype(np.float64)),
                            Node("Transform", _matrix(np.linalg.inv(bind_world[j]))),
                            Node("TransformLink", _matrix(bind_world[j])))
        scene.connect(cluster, skin)
        scene.connect(joint_id, cluster)


def _joint_euler_keys(quats, basis: np.ndarray) -> np.ndarray:
    """(T, 3) Lcl Rotation keys in degrees (FBX's XYZ order) for local rotations given as glTF
    quaternions: each turned into the file's axes (A R A^-1, as the rest matrices are), then
    unwrapped over time so that linear interpolation between keys never takes the long way."""
    rotation = basis / np.linalg.norm(basis[0])
    matrices = rotation @ quat_to_matrix(quats) @ rotation.T
    degrees = np.array([_euler_xyz_degrees(m) for m in matrices])
    return np.degrees(np.unwrap(np.radians(degrees), axis=0))


def _linear_curve(scene: _Scene, ktimes: np.ndarray, values: np.ndarray):
    """An AnimationCurve of ``values`` at ``ktimes``, linear between keys; returns its id."""
    return scene.add(
        "AnimationCurve", "", "AnimCurve", "",
        Node("Default", float(values[0])), Node("KeyVer", 4008),
        Node("KeyTime", ktimes),
        Node("KeyValueFloat", np.asarray(values).astype(np.float32)),
        Node("KeyAttrFlags", np.array([INTERPOLATION_LINEAR], dtype=np.int32)),
        Node("KeyAttrDataFloat", np.array([0, 0, DEFAULT_TANGENT_WEIGHTS, 0], np.float32)),
        Node("KeyAttrRefCount", np.array([len(ktimes)], dtype=np.int32)))


def _rotation_curves(scene: _Scene, layer, model_id, ktimes: np.ndarray, degrees: np.ndarray) -> None:
    """An AnimationCurveNode "R" on the joint's Lcl Rotation with one linear curve per axis."""
    node = scene.add("AnimationCurveNode", "R", "AnimCurveNode", "", _props(
        *[_p(f"d|{axis}", "Number", "", "A", float(degrees[0, k])) for k, axis in enumerate("XYZ")]))
    for k, axis in enumerate("XYZ"):
        scene.connect(_linear_curve(scene, ktimes, degrees[:, k]), node, f"d|{axis}")
    scene.connect(node, model_id, "Lcl Rotation")
    scene.connect(node, layer)


def _global_settings(preset: Preset, stop_time: int) -> Node:
    if preset.fbx_up_axis == "Y":
        up, front, coord = (1, 1), (2, 1), (0, 1)
    else:
        up, front, coord = (2, 1), (1, -1), (0, 1)
    return Node("GlobalSettings", children=[Node("Version", 1000), _props(
        _p("UpAxis", "int", "Integer", "", up[0]), _p("UpAxisSign", "int", "Integer", "", up[1]),
        _p("FrontAxis", "int", "Integer", "", front[0]),
        _p("FrontAxisSign", "int", "Integer", "", front[1]),
        _p("CoordAxis", "int", "Integer", "", coord[0]),
        _p("CoordAxisSign", "int", "Integer", "", coord[1]),
        _p("OriginalUpAxis", "int", "Integer", "", up[0]),
        _p("OriginalUpAxisSign", "int", "Integer", "", up[1]),
        _p("UnitScaleFactor", "double", "Number", "", float(preset.fbx_unit_cm)),
        _p("OriginalUnitScaleFactor", "double", "Number", "", float(preset.fbx_unit_cm)),
        _p("AmbientColor", "ColorRGB", "Color", "", 0.0, 0.0, 0.0),
        _p("DefaultCamera", "KString", "", "", "Producer Perspective"),
        _p("TimeMode", "enum", "", "", 6),  # 30 frames per second
        _p("TimeSpanStart", "KTime", "Time", "", np.int64(0)),
        _p("TimeSpanStop", "KTime", "Time", "", np.int64(stop_time)),
        _p("CustomFrameRate", "double", "Number", "", -1.0))])


def build_fbx(asset: Asset, preset="unity") -> list:
    """Return the top-level FBX nodes for ``asset`` (validated first); nothing is written."""
    preset = get_preset(preset)
    validate_asset(asset, ascii_names=True)
    if preset.add_root_joint:
        asset = add_root_joint(asset)
    basis = preset.fbx_basis()
    scene = _Scene()

    # Materials first (a mesh's Model connects to the materials it uses, in slot order).
    material_ids = []
    for mat in asset.materials:
        material_ids.append(scene.add("Material", mat.name, "Material", "", *_material_nodes(mat)))
        if mat.base_color_texture is not None:
            _texture_objects(scene, mat, material_ids[-1])

    # Skeleton: world matrices in file coordinates, A W A^-1 with A the basis change.
    joint_ids, bind_world = [], None
    skel = asset.skeleton
    if skel is not None:
        a = np.eye(4)
        a[:3, :3] = basis
        bind_world = a @ joint_world_matrices(skel) @ np.linalg.inv(a)
        parents = np.asarray(skel.parents)
        for j, name in enumerate(skel.joint_names):
            local = bind_world[j] if parents[j] < 0 else \
                np.linalg.inv(bind_world[parents[j]]) @ bind_world[j]
            attribute = scene.add("NodeAttribute", name, "NodeAttribute", "LimbNode",
                                  _props(_p("Size", "double", "Number", "", 1.0)),
                                  Node("TypeFlags", "Skeleton"))
            model = scene.add("Model", name, "Model", "LimbNode", Node("Version", 232),
                              _props(*_trs_props(local)), Node("Shading", True),
                              Node("Culling", "CullingOff"))
            scene.connect(attribute, model)
            scene.connect(model, 0 if parents[j] < 0 else joint_ids[parents[j]])
            joint_ids.append(model)

    channels_of_mesh = []
    mesh_models = []
    for mesh in asset.meshes:
        data = _merged_mesh(mesh, basis)
        used = sorted({int(m) for m in data["face_materials"]})
        if -1 in used:  # some primitive has no material: give the whole mesh none
            used = []
        slots = {m: k for k, m in enumerate(used)}
        geometry = scene.add("Geometry", mesh.name, "Geometry", "Mesh",
                             *_geometry_children(data, slots))
        model = scene.add("Model", mesh.name, "Model", "Mesh", Node("Version", 232),
                          _props(*_trs_props(np.eye(4))), Node("Shading", True),
                          Node("Culling", "CullingOff"))
        scene.connect(model, 0)
        scene.connect(geometry, model)
        for m in used:
            scene.connect(material_ids[m], model)
        mesh_models.append(model)
        channels_of_mesh.append(_blend_shape(scene, mesh, data, geometry)
                                if mesh.target_names else [])
        if "joints" in data:
            _skin(scene, mesh, data, geometry, joint_ids, skel.joint_names, bind_world)

    if joint_ids:
        pose_nodes = [Node("PoseNode", children=[Node("Node", m), Node("Matrix", _matrix(np.eye(4)))])
                      for m in mesh_models]
        pose_nodes += [Node("PoseNode", children=[Node("Node", jid), Node("Matrix", _matrix(w))])
                       for jid, w in zip(joint_ids, bind_world)]
        scene.add("Pose", asset.name, "Pose", "BindPose", Node("Type", "BindPose"),
                  Node("Version", 100), Node("NbPoseNodes", len(pose_nodes)), *pose_nodes)

    stop = 0
    for clip in asset.animations:
        ktimes = np.round(np.asarray(clip.times, np.float64) * KTIME_PER_SECOND).astype(np.int64)
        stop = max(stop, int(ktimes[-1]))
        stack = scene.add("AnimationStack", clip.name, "AnimStack", "", _props(
            _p("LocalStart", "KTime", "Time", "", ktimes[0]),
            _p("LocalStop", "KTime", "Time", "", ktimes[-1]),
            _p("ReferenceStart", "KTime", "Time", "", ktimes[0]),
            _p("ReferenceStop", "KTime", "Time", "", ktimes[-1])))
        layer = scene.add("AnimationLayer", clip.name, "AnimLayer", "")
        scene.connect(layer, stack)
        weights = np.asarray(clip.weights, np.float64) * 100.0  # FBX weights are percentages
        for t, channel in enumerate(channels_of_mesh[clip.mesh]):
            node = scene.add("AnimationCurveNode", "DeformPercent", "AnimCurveNode", "", _props(
                _p("d|DeformPercent", "Number", "", "A", float(weights[0, t]))))
            scene.connect(_linear_curve(scene, ktimes, weights[:, t]), node, "d|DeformPercent")
            scene.connect(node, channel, "DeformPercent")
            scene.connect(node, layer)
        for j, name in enumerate(skel.joint_names if clip.joint_rotations else ()):
            if name in clip.joint_rotations:
                _rotation_curves(scene, layer, joint_ids[j], ktimes,
                                 _joint_euler_keys(clip.joint_rotations[name], basis))

    header = Node("FBXHeaderExtension", children=[
        Node("FBXHeaderVersion", 1003), Node("FBXVersion", 7400), Node("EncryptionType", 0),
        Node("CreationTimeStamp", children=[
            Node("Version", 1000), Node("Year", 1970), Node("Month", 1), Node("Day", 1),
            Node("Hour", 10), Node("Minute", 0), Node("Second", 0), Node("Millisecond", 0)]),
        Node("Creator", "engine_export")])
    documents = Node("Documents", children=[Node("Count", 1), Node(
        "Document", np.int64(FIRST_ID - 1), "Scene", "Scene", children=[
            _props(_p("SourceObject", "object", "", ""),
                   _p("ActiveAnimStackName", "KString", "", "",
                      asset.animations[0].name if asset.animations else "")),
            Node("RootNode", np.int64(0))])])
    definitions = Node("Definitions", children=[
        Node("Version", 100), Node("Count", 1 + sum(scene.counts.values())),
        Node("ObjectType", "GlobalSettings", children=[Node("Count", 1)]),
        *[Node("ObjectType", kind, children=[Node("Count", n)])
          for kind, n in scene.counts.items()]])
    return [header, Node("FileId", FILE_ID), Node("CreationTime", CREATION_TIME),
            Node("Creator", "engine_export"), _global_settings(preset, stop), documents,
            Node("References"), definitions, Node("Objects", children=scene.objects),
            Node("Connections", children=scene.connections)]


def write_fbx(asset: Asset, path, preset="unity") -> None:
    """Write ``asset`` as binary FBX 7.4 laid out for ``preset`` ("unity" or "unreal", see
    engine_export.PRESETS).  Raises ExportError before writing anything if the asset is invalid
    or uses names FBX cannot carry; the file appears atomically."""
    path = check_destination(path, (".fbx",))
    write_files_atomically({path: encode_file(build_fbx(asset, preset))})
