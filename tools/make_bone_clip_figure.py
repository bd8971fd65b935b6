#!/usr/bin/env python
"""Draw docs/animation_bones.png: a take played on the astronaut avatar by Blender.

The take is tests/test_animate_bones.py's (head yaw 20°, pitch 6° down, roll -4°, the eyes
looking about, jawOpen 0.5 at t = 0.5 s).  It is written into the avatar's .glb with
``write_take``; Blender 4.5 imports the file and evaluates the skinned, morphed mesh at t = 0 and
t = 0.5 s (bones and shape keys driven by the clip); ``pyfacerig.render`` draws both with the
avatar's own textures, rest on the left.
Usage: python tools/make_bone_clip_figure.py [output]
"""
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
# After the installed packages: an installed pyfacerig (with its compiled core) wins over this
# source tree, which has no compiled core until tools/dev_build.sh has run.
sys.path.append(str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from _readers import BLENDER_FROM_GLTF  # noqa: E402
from pyfacerig import render  # noqa: E402
from pyfacerig.animate import write_take  # noqa: E402
from pyfacerig.animate.avatar_file import load_avatar_glb  # noqa: E402
from pyfacerig.build import build  # noqa: E402
from pyfacerig.cli import EXAMPLES  # noqa: E402
from test_animate_bones import FPS, FRAME, turn_take  # noqa: E402

# Runs inside a Python with bpy: world positions of the face mesh's vertices at each time.
BLENDER = r'''
import bpy, json, sys
import numpy as np
path, times = sys.argv[-2], json.loads(sys.argv[-1])
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=path)
scene = bpy.context.scene
(obj,) = [o for o in scene.objects if o.type == "MESH" and o.data.shape_keys is not None]
fps = scene.render.fps / scene.render.fps_base
out = []
for t in times:
    scene.frame_set(int(round(t * fps)))          # the glTF importer puts time 0 on frame 0
    ev = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = ev.to_mesh()
    co = np.empty(len(mesh.vertices) * 3)
    mesh.vertices.foreach_get("co", co)
    world = np.array(ev.matrix_world)
    ev.to_mesh_clear()
    out.append((co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]).tolist())
print("RESULT " + json.dumps(out))
'''


def textures(avatar) -> list:
    """Per primitive its base-colour image as an (H, W, 3) uint8 array, or None."""
    document, out = avatar.document, []
    for primitive in avatar.primitives:
        image = None
        if primitive.material is not None and primitive.uvs is not None:
            pbr = document["materials"][primitive.material].get("pbrMetallicRoughness", {})
            if "baseColorTexture" in pbr:
                source = document["textures"][pbr["baseColorTexture"]["index"]]["source"]
                image = np.asarray(Image.open(io.BytesIO(avatar.image_bytes(source)[0])).convert("RGB"))
        out.append(image)
    return out


def main(output: Path) -> None:
    with tempfile.TemporaryDirectory() as folder:
        glb = Path(folder) / "npc.glb"
        build(EXAMPLES["astronaut"], out=glb, formats=("glb",))
        animated = Path(folder) / "take.glb"
        write_take(glb, turn_take(), animated)
        run = subprocess.run([sys.executable, "-c", BLENDER, str(animated), json.dumps([0.0, FRAME / FPS])],
                             capture_output=True, text=True, check=True)
        frames = json.loads([ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")][-1][7:])
        avatar = load_avatar_glb(animated)
    sizes = np.cumsum([0] + [len(p.positions) for p in avatar.primitives])
    images = textures(avatar)
    centre = avatar.primitives[0].positions.mean(axis=0)
    camera = render.Camera(target=np.array([0.0, centre[1] - 0.03, centre[2]]), distance=0.75, fov_deg=20)
    panels = []
    for points in frames:
        points = np.asarray(points) @ BLENDER_FROM_GLTF        # Blender's Z-up back to glTF (orthonormal)
        meshes = [render.Mesh(points[sizes[k]:sizes[k + 1]], p.indices, p.uvs if images[k] is not None else None,
                              images[k]) for k, p in enumerate(avatar.primitives)]
        panels.append(render.render(meshes, camera, 400, 400))
    Image.fromarray(np.concatenate(panels, axis=1)).save(output, optimize=True)
    print(f"wrote {output}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "animation_bones.png")
