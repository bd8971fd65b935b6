#!/usr/bin/env python
"""Render an avatar .glb in Blender (Cycles, CPU) from the front, 3/4, side and back.

    python tools/render_blender_views.py AVATAR.glb OUT.png [--size 480] [--samples 24]

Blender (the ``bpy`` wheel, a test-only dependency: GPL) imports the file exactly as an artist
would, lights it with a key, a fill and a rim light, and renders the four views side by side
into one PNG.  Runs Blender in a subprocess so its global state stays out of the caller.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

VIEWS = (("front", 0.0), ("three-quarter", 40.0), ("side", 90.0), ("back", 180.0))


def _blender(spec: dict) -> None:  # runs in the subprocess
    import math

    import bpy
    import numpy as np
    from mathutils import Vector

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=spec["glb"])
    meshes = [o for o in bpy.context.scene.objects if o.type == "MESH" and o.data.shape_keys is not None]
    points = np.array([list(o.matrix_world @ v.co) for o in meshes for v in o.data.vertices])
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre = Vector(((lo + hi) / 2).tolist())
    radius = float(np.max(hi - lo)) / 2
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = spec["samples"]
    scene.render.resolution_x = scene.render.resolution_y = spec["size"]
    scene.render.film_transparent = False
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs[0].default_value = (0.22, 0.23, 0.26, 1.0)
    world.node_tree.nodes["Background"].inputs[1].default_value = 0.6
    scene.world = world
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.data.lens = 85
    scene.collection.objects.link(camera)
    scene.camera = camera
    for name, energy, direction in (("key", 280.0, (0.6, -1.0, 0.5)), ("fill", 90.0, (-0.8, -0.6, 0.1)),
                                    ("rim", 200.0, (0.0, 1.0, 0.6))):
        light = bpy.data.objects.new(name, bpy.data.lights.new(name, "AREA"))
        light.data.energy = energy * (radius / 0.15) ** 2 / 12
        light.data.size = radius
        light.location = centre + Vector(direction).normalized() * radius * 6
        light.rotation_euler = (centre - light.location).to_track_quat("-Z", "Y").to_euler()
        scene.collection.objects.link(light)
    distance = radius / (18 / 85) * 1.08
    outputs = []
    for label, yaw in spec["views"]:
        a = math.radians(yaw)
        # Blender is Z-up with the glTF face looking toward -Y.
        camera.location = centre + Vector((math.sin(a), -math.cos(a), 0.0)) * distance
        camera.rotation_euler = (centre - camera.location).to_track_quat("-Z", "Y").to_euler()
        path = spec["out"] + f".{label}.png"
        scene.render.filepath = path
        bpy.ops.render.render(write_still=True)
        outputs.append(path)
    print("RESULT " + json.dumps(outputs))


def main(argv) -> int:
    if len(argv) > 2 and argv[1] == "--blender":
        _blender(json.loads(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("glb", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", type=int, default=480)
    parser.add_argument("--samples", type=int, default=24)
    opts = parser.parse_args(argv[1:])
    spec = {"glb": str(opts.glb.resolve()), "out": str(opts.out.resolve()), "size": opts.size,
            "samples": opts.samples, "views": VIEWS}
    run = subprocess.run([sys.executable, __file__, "--blender", json.dumps(spec)], capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stderr[-3000:])
        return 1
    paths = json.loads([ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
    from PIL import Image, ImageDraw
    tiles = [Image.open(p).convert("RGB") for p in paths]
    sheet = Image.new("RGB", (opts.size * len(tiles), opts.size + 28), (30, 31, 34))
    draw = ImageDraw.Draw(sheet)
    for k, (tile, (label, _)) in enumerate(zip(tiles, VIEWS)):
        sheet.paste(tile, (k * opts.size, 28))
        draw.text((k * opts.size + 8, 8), f"Blender 4.5, Cycles: {label}", fill=(230, 230, 230))
    sheet.save(opts.out)
    for p in paths:
        Path(p).unlink()
    print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
