// Load one .glb/.gltf (GLTFLoader) or .fbx (FBXLoader) with three.js under node and print, as
// JSON, what three.js made of it: meshes with their morph target names (morphTargetDictionary),
// world-space positions with each morph target fully applied, materials with their texture
// size, and the animation clips.
// Usage: node three_load.mjs <file> [--shapes name,name,...]
//   --shapes: report morphed positions only for these targets (default: every target).
import { readFile } from "node:fs/promises";
import { resolveObjectURL } from "node:buffer";
import path from "node:path";

// three.js expects a browser.  The loaders only need `self` and an <img> element; the
// stand-in image below reads the PNG/JPEG header of the blob the loader hands it, so a
// texture whose embedded bytes are missing or not an image fails to load.
globalThis.self = globalThis;
class HeaderOnlyImage {
  constructor() { this.listeners = {}; this.width = 0; this.height = 0; this.complete = false; }
  addEventListener(type, fn) { this.listeners[type] = fn; }
  removeEventListener(type) { delete this.listeners[type]; }
  set src(url) {
    this._src = url;
    const blob = url.startsWith("blob:") ? resolveObjectURL(url) : undefined;
    const fire = (type) => setTimeout(() => this.listeners[type]?.call(this, { type }), 0);
    if (!blob) { fire("error"); return; }
    blob.arrayBuffer().then((buffer) => {
      const b = new Uint8Array(buffer);
      const view = new DataView(buffer);
      if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
        this.width = view.getUint32(16); this.height = view.getUint32(20);
      } else if (b[0] === 0xff && b[1] === 0xd8) {
        for (let i = 2; i + 9 < b.length;) { // walk JPEG segments to the first SOFn
          const marker = b[i + 1], size = view.getUint16(i + 2);
          if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
            this.height = view.getUint16(i + 5); this.width = view.getUint16(i + 7); break;
          }
          i += 2 + size;
        }
      }
      this.complete = this.width > 0;
      fire(this.complete ? "load" : "error");
    });
  }
  get src() { return this._src; }
}
globalThis.document = { createElementNS: () => new HeaderOnlyImage() };
globalThis.ProgressEvent ??= class ProgressEvent extends Event {  // FileLoader reports progress
  constructor(type, init = {}) { super(type); Object.assign(this, init); }
};

const THREE = await import("three");
const { GLTFLoader } = await import("three/examples/jsm/loaders/GLTFLoader.js");
const { FBXLoader } = await import("three/examples/jsm/loaders/FBXLoader.js");

const file = process.argv[2];
const only = process.argv[3] === "--shapes" ? new Set(process.argv[4].split(",")) : null;
const data = await readFile(file);
const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
const dir = path.dirname(file) + "/";

// node's fetch cannot read local paths: hand external resources (the .bin) over as data: URLs.
import { readFileSync } from "node:fs";
const manager = new THREE.LoadingManager();
manager.setURLModifier((url) => url.startsWith(dir)
  ? "data:application/octet-stream;base64," + readFileSync(url).toString("base64") : url);

let root, animations;
if (file.endsWith(".fbx")) {
  root = new FBXLoader(manager).parse(buffer, dir);
  animations = root.animations;
} else {
  const gltf = await new GLTFLoader(manager).parseAsync(
    file.endsWith(".gltf") ? new TextDecoder().decode(data) : buffer, dir);
  root = gltf.scene;
  animations = gltf.animations;
}
await new Promise((done) => setTimeout(done, 50)); // let texture images "decode"
root.updateMatrixWorld(true);

const meshes = [];
root.traverse((obj) => {
  if (!obj.isMesh) return;
  const geometry = obj.geometry;
  const position = geometry.attributes.position;
  const names = Object.entries(obj.morphTargetDictionary || {}).sort((a, b) => a[1] - b[1]);
  const worldPoints = (offsets) => {
    const out = [];
    const v = new THREE.Vector3();
    for (let i = 0; i < position.count; i++) {
      v.fromBufferAttribute(position, i);
      if (offsets) {
        const o = new THREE.Vector3().fromBufferAttribute(offsets, i);
        if (geometry.morphTargetsRelative) v.add(o); else v.copy(o);
      }
      v.applyMatrix4(obj.matrixWorld);
      out.push([v.x, v.y, v.z]);
    }
    return out;
  };
  const materials = Array.isArray(obj.material) ? obj.material : [obj.material];
  meshes.push({
    name: obj.name,
    geometryName: geometry.name,
    targetNames: names.map(([name]) => name),
    rest: worldPoints(null),
    shaped: Object.fromEntries(names.filter(([name]) => !only || only.has(name)).map(([name, i]) =>
      [name, worldPoints(geometry.morphAttributes.position[i])])),
    hasMorphNormals: (geometry.morphAttributes.normal || []).length === names.length,
    influences: obj.morphTargetInfluences || [],
    skinned: obj.isSkinnedMesh === true,
    bones: obj.skeleton ? obj.skeleton.bones.map((b) => b.name) : [],
    materials: materials.map((m) => ({
      name: m.name,
      map: m.map ? [m.map.image?.width ?? 0, m.map.image?.height ?? 0] : null,
    })),
  });
});

process.stdout.write(JSON.stringify({
  meshes,
  animations: animations.map((clip) => ({
    name: clip.name,
    tracks: clip.tracks.map((t) => ({ name: t.name, times: Array.from(t.times),
                                      values: Array.from(t.values) })),
  })),
}));
