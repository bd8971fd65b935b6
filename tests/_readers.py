"""Real readers shared by the export and build tests: Blender 4.5 (bpy) and three.js.

Blender runs in a subprocess (this file run as a script, `python _readers.py blender SPEC`) so
that its global state never touches the test process; one subprocess imports every file it is
given.  Blender's world is Z-up in metres: our glTF point (x, y, z) must appear at (x, -z, y)
whatever the file format and preset.

three.js runs under node (tests/js/three_load.mjs).
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

JS = Path(__file__).parent / "js"

#: Our glTF frame (Y-up, metres) to Blender's world (Z-up, metres).
BLENDER_FROM_GLTF = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def blender_import(paths, poses=None, timeout=600) -> dict:
    """Import each file into a fresh Blender scene and report what Blender made of it.

    poses: None evaluates every shape key alone at weight 1 (``result["shaped"][name]``);
    otherwise a dict pose name -> {shape key: weight} (``result["posed"][pose name]``), the
    other keys at 0.  Returns path (str) -> {"mesh", "shape_keys" (without the basis), "rest",
    "shaped"/"posed" (world points, list of [x, y, z]), "images" (sizes of every loaded image),
    "material_images" (material -> [w, h] of its image texture, or None), "materials",
    "animated" (shape-key fcurve data paths)}.
    """
    return _run_blender("blender", paths, poses, timeout)


def _run_blender(mode, paths, poses, timeout):
    """This file's ``mode`` in a fresh interpreter (bpy cannot be reset in-process): its RESULT."""
    spec = json.dumps({"paths": [str(p) for p in paths], "poses": poses})
    run = subprocess.run([sys.executable, __file__, mode, spec], capture_output=True,
                         text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    line = [ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _evaluated_world_points(obj, depsgraph) -> list:
    """The object's vertices as Blender evaluates them now (shape keys, armature), world frame."""
    depsgraph.update()
    ev = obj.evaluated_get(depsgraph)
    mesh = ev.to_mesh()
    co = np.empty(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    world = np.array(ev.matrix_world)
    ev.to_mesh_clear()
    return (co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]).tolist()


def blender_import_into_empty_scene(bpy, path):
    """A fresh, empty Blender scene with the .fbx or .glb at ``path`` imported into it."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    if path.endswith(".fbx"):
        bpy.ops.import_scene.fbx(filepath=path)
    else:
        bpy.ops.import_scene.gltf(filepath=path)


def _blender_main(spec):  # runs in the subprocess
    import bpy

    out = {}
    for path in spec["paths"]:
        blender_import_into_empty_scene(bpy, path)
        # Only our mesh carries shape keys (the glTF importer adds a bone-display Icosphere).
        (obj,) = [o for o in bpy.context.scene.objects
                  if o.type == "MESH" and o.data.shape_keys is not None]
        keys = obj.data.shape_keys.key_blocks
        # A clip is imported as an action on the shape keys; note it, then remove it so that
        # it does not override the weights set below.
        anim = obj.data.shape_keys.animation_data
        action = anim.action if anim else None
        fcurves = sorted(fc.data_path for fc in action.fcurves) if action else []
        obj.data.shape_keys.animation_data_clear()
        depsgraph = bpy.context.evaluated_depsgraph_get()

        def evaluated(weights):
            for key in keys[1:]:
                key.value = weights.get(key.name, 0.0)
            return _evaluated_world_points(obj, depsgraph)

        def texture_size(material):
            images = [n.image for n in (material.node_tree.nodes if material.node_tree else ())
                      if n.type == "TEX_IMAGE" and n.image is not None]
            return list(images[0].size) if images else None

        result = {"mesh": obj.data.name, "shape_keys": [k.name for k in keys][1:],
                  "rest": evaluated({}),
                  "images": sorted([list(im.size) for im in bpy.data.images if im.size[0]]),
                  "materials": [s.material.name for s in obj.material_slots if s.material],
                  "material_images": {s.material.name: texture_size(s.material)
                                      for s in obj.material_slots if s.material},
                  "animated": fcurves}
        if spec["poses"] is None:
            result["shaped"] = {key.name: evaluated({key.name: 1.0}) for key in keys[1:]}
        else:
            result["posed"] = {name: evaluated(weights) for name, weights in spec["poses"].items()}
        out[path] = result
    sys.stdout.write("\nRESULT " + json.dumps(out) + "\n")
    sys.stdout.flush()


def blender_pose_bones(paths, poses, timeout=600) -> dict:
    """Import each skinned file into a fresh Blender scene, then rotate bones and report the
    evaluated mesh.

    poses: pose name -> [bone name, world axis (x, y, z) in Blender's frame, degrees]: the bone
    is rotated about that axis through its head, in world space, the other bones at rest.
    Returns path (str) -> {"armatures": [names], "bones": [bone names in order], "bone_heads":
    bone -> world [x, y, z], "parent": {"type", "name"} of the mesh's parent (or None),
    "armature_modifiers": [object names the mesh's Armature modifiers use], "groups": vertex
    group names, "weight_sums": per vertex sum of its group weights, "triangles": (T, 3)
    vertex ids, "rest" and "posed"[pose] world points}.
    """
    return _run_blender("blender_pose", paths, poses, timeout)


def _blender_pose_main(spec):  # runs in the subprocess
    import bpy
    from mathutils import Matrix, Vector

    out = {}
    for path in spec["paths"]:
        blender_import_into_empty_scene(bpy, path)
        armatures = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
        (obj,) = [o for o in bpy.context.scene.objects
                  if o.type == "MESH" and o.data.shape_keys is not None]
        arm = armatures[0]
        depsgraph = bpy.context.evaluated_depsgraph_get()

        def evaluated():
            return _evaluated_world_points(obj, depsgraph)

        mesh = obj.data
        mesh.calc_loop_triangles()
        triangles = np.empty(len(mesh.loop_triangles) * 3, dtype=np.int64)
        mesh.loop_triangles.foreach_get("vertices", triangles)
        sums = np.zeros(len(mesh.vertices))
        for v in mesh.vertices:
            sums[v.index] = sum(g.weight for g in v.groups)
        result = {"armatures": [a.name for a in armatures],
                  "bones": [b.name for b in arm.data.bones],
                  "bone_heads": {b.name: list(arm.matrix_world @ b.head_local) for b in arm.data.bones},
                  "parent": None if obj.parent is None else {"type": obj.parent.type, "name": obj.parent.name},
                  "armature_modifiers": [m.object.name for m in obj.modifiers
                                         if m.type == "ARMATURE" and m.object is not None],
                  "groups": [g.name for g in obj.vertex_groups],
                  "weight_sums": sums.tolist(),
                  "triangles": triangles.reshape(-1, 3).tolist(),
                  "rest": evaluated(), "posed": {}}
        for name, (bone, axis, degrees) in spec["poses"].items():
            for pb in arm.pose.bones:
                pb.matrix_basis = Matrix.Identity(4)
            bpy.context.view_layer.update()
            pb = arm.pose.bones[bone]
            head = arm.matrix_world @ pb.head
            turn = (Matrix.Translation(head) @ Matrix.Rotation(np.radians(degrees), 4, Vector(axis))
                    @ Matrix.Translation(-head))
            pb.matrix = arm.matrix_world.inverted() @ turn @ arm.matrix_world @ pb.matrix
            bpy.context.view_layer.update()
            result["posed"][name] = evaluated()
        for pb in arm.pose.bones:
            pb.matrix_basis = Matrix.Identity(4)
        out[path] = result
    sys.stdout.write("\nRESULT " + json.dumps(out) + "\n")
    sys.stdout.flush()


def three_load(path, shapes=None, timeout=300) -> dict:
    """What three.js's GLTFLoader (.glb/.gltf) or FBXLoader (.fbx) made of ``path``.

    shapes: names whose morphed positions to report (default: every morph target; a real
    avatar's FBX has ~66k corner vertices, so reporting all 52 would be ~200 MB of JSON).
    """
    command = ["node", str(JS / "three_load.mjs"), str(path)]
    if shapes is not None:
        command += ["--shapes", ",".join(shapes)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def khronos_validate(path, timeout=120) -> dict:
    """The Khronos glTF-Validator's report on a .glb/.gltf (tests/js/validate.mjs)."""
    run = subprocess.run(["node", str(JS / "validate.mjs"), str(path)], capture_output=True,
                         text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def assert_same_point_sets(theirs, ours, tolerance):
    """Every point of each set has a point of the other within ``tolerance`` (importers may
    split or reorder vertices)."""
    theirs, ours = np.asarray(theirs, np.float64), np.asarray(ours, np.float64)
    d_ours = cKDTree(theirs).query(ours)[0]
    d_theirs = cKDTree(ours).query(theirs)[0]
    assert max(d_ours.max(), d_theirs.max()) <= tolerance, (d_ours.max(), d_theirs.max())


if __name__ == "__main__":
    if sys.argv[1] == "blender":
        _blender_main(json.loads(sys.argv[2]))
    elif sys.argv[1] == "blender_pose":
        _blender_pose_main(json.loads(sys.argv[2]))
