// The pyfacerig viewer page: the head with orbit controls, one slider per blendshape in ARKit's
// groups, the asset's clips, its textures and the sidecar's figures.  It renders on demand
// (only when something changed), so an idle tab costs no CPU.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, children = []) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of [].concat(children)) node.append(child);
  return node;
};
const fmtBytes = (n) => n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(0)} kB` : `${n} B`;

// What a script (or a test) can read and drive; every UI control goes through the same calls.
const state = { ready: false, error: null, weights: {}, clip: null, paused: false, clipTime: 0, frames: 0 };
window.pyfacerigViewer = { state, setWeight, resetWeights, playClip, stopClip, seekClip, setPaused, setView };

function fail(message) {
  state.error = String(message);
  const overlay = $('overlay');
  overlay.textContent = `Could not show the asset:\n${message}`;
  overlay.classList.add('error');
  overlay.style.display = 'flex';
}
window.addEventListener('error', (event) => fail(event.message));
window.addEventListener('unhandledrejection', (event) => fail(event.reason && event.reason.message || event.reason));

const viewport = $('viewport');
const renderer = new THREE.WebGLRenderer({ antialias: true });
renderer.setPixelRatio(window.devicePixelRatio);
renderer.outputColorSpace = THREE.SRGBColorSpace;
viewport.prepend(renderer.domElement);

const scene = new THREE.Scene();
scene.background = new THREE.Color(0x3a3e45);
scene.add(new THREE.HemisphereLight(0xf2f4ff, 0x403830, 1.4));
const camera = new THREE.PerspectiveCamera(28, 1, 0.001, 100);
const key = new THREE.DirectionalLight(0xffffff, 1.8);
const fill = new THREE.DirectionalLight(0xdde6ff, 0.6);
camera.add(key, fill);                      // lights follow the camera: the face stays lit as it turns
key.position.set(0.6, 0.8, 1);
fill.position.set(-1, 0.2, 0.6);
scene.add(camera);
const controls = new OrbitControls(camera, renderer.domElement);
controls.enableDamping = true;

let needsRender = true;
const requestRender = () => { needsRender = true; };
controls.addEventListener('change', requestRender);

function resize() {
  const { clientWidth: w, clientHeight: h } = viewport;
  renderer.setSize(w, h);
  camera.aspect = w / Math.max(h, 1);
  camera.updateProjectionMatrix();
  requestRender();
}
new ResizeObserver(resize).observe(viewport);

const info = await (await fetch('/api/info.json')).json();
document.title = `${info.name} — pyfacerig viewer`;
$('asset-name').textContent = info.name;

const gltf = await new GLTFLoader().loadAsync('/asset.glb');
scene.add(gltf.scene);
const morphMeshes = [];
let vertexCount = 0, triangleCount = 0;
gltf.scene.traverse((object) => {
  if (!object.isMesh) return;
  const geometry = object.geometry;
  vertexCount += geometry.attributes.position.count;
  triangleCount += (geometry.index ? geometry.index.count : geometry.attributes.position.count) / 3;
  if (object.morphTargetDictionary) morphMeshes.push(object);
});

// Frame the head: the camera looks at the bounding box's centre from the front (+Z in glTF).
const box = new THREE.Box3().setFromObject(gltf.scene);
const centre = box.getCenter(new THREE.Vector3());
const size = box.getSize(new THREE.Vector3());
const radius = Math.max(size.x, size.y, size.z) * 0.5;
const distance = radius / Math.sin(THREE.MathUtils.degToRad(camera.fov / 2)) * 1.05;
camera.near = distance / 100;
camera.far = distance * 100;
controls.target.copy(centre);
controls.minDistance = distance * 0.2;
controls.maxDistance = distance * 5;

function setView(name) {
  const angle = { front: 0, left: 90, right: -90, 'three-quarter': 35 }[name] ?? 0;
  const a = THREE.MathUtils.degToRad(angle);
  // The subject's left is the viewer's right on a frontal view, i.e. +X.
  camera.position.set(centre.x + distance * Math.sin(a), centre.y, centre.z + distance * Math.cos(a));
  camera.lookAt(centre);
  camera.updateProjectionMatrix();
  controls.update();
  requestRender();
}
setView('front');
for (const button of document.querySelectorAll('[data-view]')) {
  button.addEventListener('click', () => setView(button.dataset.view));
}
$('wireframe').addEventListener('change', (event) => {
  gltf.scene.traverse((object) => { if (object.isMesh) object.material.wireframe = event.target.checked; });
  requestRender();
});
window.addEventListener('keydown', (event) => {
  if (event.target.tagName === 'INPUT' && event.target.type !== 'range') return;
  const view = { f: 'front', l: 'left', r: 'right', q: 'three-quarter' }[event.key.toLowerCase()];
  if (view) setView(view);
  if (event.key.toLowerCase() === 'w') $('wireframe').click();
});

// ---------------------------------------------------------------- blendshape sliders
const names = [];
for (const mesh of morphMeshes) {
  for (const name of Object.keys(mesh.morphTargetDictionary)) if (!names.includes(name)) names.push(name);
}
const groups = info.shape_groups.length ? info.shape_groups : [['Shapes', names]];
const rows = {};
for (const [title, members] of groups) {
  const reset = el('button', { textContent: 'reset', title: `set the ${title} shapes to 0` });
  const details = el('details', { className: 'group', open: true }, [
    el('summary', {}, [el('span', { textContent: title }), el('span', { className: 'count', textContent: members.length }), reset]),
  ]);
  reset.addEventListener('click', (event) => { event.preventDefault(); for (const n of members) setWeight(n, 0); });
  for (const name of members) {
    const input = el('input', { type: 'range', min: 0, max: 1, step: 0.01, value: 0, id: `shape-${name}` });
    const output = el('output', { textContent: '0.00' });
    const row = el('div', { className: 'shape' }, [el('label', { htmlFor: input.id, textContent: name, title: name }), input, output]);
    input.addEventListener('input', () => setWeight(name, Number(input.value), true));
    input.addEventListener('dblclick', () => setWeight(name, 0));
    rows[name] = { row, input, output };
    details.append(row);
  }
  $('shape-groups').append(details);
}
$('shape-count').textContent = `${names.length}`;

function counterpart(name) {
  if (name.endsWith('Left')) return name.slice(0, -4) + 'Right';
  if (name.endsWith('Right')) return name.slice(0, -5) + 'Left';
  return null;
}

function applyWeight(name, value) {
  for (const mesh of morphMeshes) {
    const index = mesh.morphTargetDictionary[name];
    if (index !== undefined) mesh.morphTargetInfluences[index] = value;
  }
  state.weights[name] = value;
  const row = rows[name];
  if (row) {
    row.input.value = value;
    row.output.textContent = value.toFixed(2);
    row.row.classList.toggle('active', value > 0);
  }
}

function setWeight(name, value, fromSlider = false) {
  value = Math.min(1, Math.max(0, Number(value)));
  applyWeight(name, value);
  const other = counterpart(name);
  if (fromSlider && $('mirror').checked && other && rows[other]) applyWeight(other, value);
  requestRender();
}

function resetWeights() { for (const name of names) applyWeight(name, 0); requestRender(); }
$('reset-all').addEventListener('click', resetWeights);
$('copy-pose').addEventListener('click', async () => {
  // The pose as {name: weight} for the non-zero shapes: paste it into a script or a bug report.
  const pose = Object.fromEntries(Object.entries(state.weights).filter(([, w]) => w > 0));
  const text = JSON.stringify(pose);
  try { await navigator.clipboard.writeText(text); $('copy-pose').textContent = 'Copied'; }
  catch { window.prompt('Weights (JSON):', text); }
  setTimeout(() => { $('copy-pose').textContent = 'Copy'; }, 1200);
});
$('shape-filter').addEventListener('input', (event) => {
  const text = event.target.value.trim().toLowerCase();
  for (const [name, { row }] of Object.entries(rows)) row.classList.toggle('hidden', !name.toLowerCase().includes(text));
});
for (const name of names) state.weights[name] = 0;

// ---------------------------------------------------------------- clips
// Per clip: Play/Pause, Stop, loop, and a scrubber that poses the head at any time of the clip.
const mixer = new THREE.AnimationMixer(gltf.scene);
const clipRows = {};
let currentAction = null;
if (gltf.animations.length) $('clips').textContent = '';
for (const clip of gltf.animations) {
  const play = el('button', { textContent: '▶ Play', id: `play-${clip.name}`, title: 'play / pause (space)' });
  const stop = el('button', { textContent: '■', id: `stop-${clip.name}`, title: 'stop: back to the sliders' });
  const loop = el('input', { type: 'checkbox', checked: true, title: 'loop' });
  const scrub = el('input', { type: 'range', min: 0, max: clip.duration, step: 0.01, value: 0, id: `scrub-${clip.name}`, className: 'scrub' });
  const time = el('span', { className: 'dim time', textContent: `0.00 / ${clip.duration.toFixed(2)} s` });
  const row = el('div', { className: 'clip' }, [
    el('span', { className: 'name', textContent: clip.name }),
    el('label', { className: 'dim' }, [loop, ' loop']),
    el('span', { className: 'buttons' }, [play, stop]),
    scrub, time,
  ]);
  play.addEventListener('click', () => {
    if (state.clip !== clip.name) playClip(clip.name, loop.checked);
    else setPaused(!state.paused);
  });
  stop.addEventListener('click', () => { if (state.clip === clip.name) stopClip(); });
  loop.addEventListener('change', () => {
    if (state.clip === clip.name) currentAction.setLoop(loop.checked ? THREE.LoopRepeat : THREE.LoopOnce, Infinity);
  });
  scrub.addEventListener('input', () => seekClip(clip.name, Number(scrub.value)));
  clipRows[clip.name] = { play, scrub, time, loop, duration: clip.duration };
  $('clips').append(row);
}
window.addEventListener('keydown', (event) => {
  if (event.key === ' ' && state.clip && event.target.tagName !== 'INPUT') { event.preventDefault(); setPaused(!state.paused); }
});

function playClip(name, loop = true) {
  const clip = gltf.animations.find((c) => c.name === name);
  if (!clip) throw new Error(`no clip named ${name}`);
  stopClip();
  currentAction = mixer.clipAction(clip);
  currentAction.setLoop(loop ? THREE.LoopRepeat : THREE.LoopOnce, Infinity);
  currentAction.clampWhenFinished = true;
  currentAction.reset().play();
  state.clip = name;
  setPaused(false);
}

function setPaused(paused) {
  if (!currentAction) return;
  state.paused = paused;
  currentAction.paused = paused;
  const button = clipRows[state.clip].play;
  button.textContent = paused ? '▶ Play' : '❚❚ Pause';
  button.classList.toggle('playing', !paused);
  requestRender();
}

function seekClip(name, seconds) {
  if (state.clip !== name) playClip(name, clipRows[name].loop.checked);
  setPaused(true);
  currentAction.time = seconds;
  currentAction.paused = false;          // a paused action ignores update(); apply this pose, then pause again
  mixer.update(0);
  currentAction.paused = true;
  showClipTime();
  syncSlidersToClip();
  requestRender();
}

function stopClip() {
  if (!currentAction) return;
  const name = state.clip;
  currentAction.stop();
  currentAction = null;
  state.clip = null;
  state.paused = false;
  clipRows[name].play.textContent = '▶ Play';
  clipRows[name].play.classList.remove('playing');
  clipRows[name].scrub.value = 0;
  clipRows[name].time.textContent = `0.00 / ${clipRows[name].duration.toFixed(2)} s`;
  for (const shape of names) applyWeight(shape, state.weights[shape]);   // back to the sliders' pose
  requestRender();
}

function showClipTime() {
  state.clipTime = currentAction.time;
  const row = clipRows[state.clip];
  row.scrub.value = currentAction.time;
  row.time.textContent = `${currentAction.time.toFixed(2)} / ${row.duration.toFixed(2)} s`;
}

function syncSlidersToClip() {
  for (const shape of names) {
    const mesh = morphMeshes.find((m) => m.morphTargetDictionary[shape] !== undefined);
    const value = mesh.morphTargetInfluences[mesh.morphTargetDictionary[shape]];
    rows[shape].input.value = value;
    rows[shape].output.textContent = value.toFixed(2);
  }
}
mixer.addEventListener('finished', () => stopClip());

// ---------------------------------------------------------------- textures and figures
const textures = $('textures');
const dialog = $('texture-dialog');
info.textures.forEach((texture, i) => {
  const img = el('img', { src: `/api/texture/${texture.index}`, alt: texture.name, title: `${texture.name}: click to enlarge` });
  const caption = el('figcaption', { textContent: `${texture.name} · ${fmtBytes(texture.bytes)}` });
  img.addEventListener('load', () => { caption.textContent = `${texture.name} · ${img.naturalWidth}×${img.naturalHeight} · ${fmtBytes(texture.bytes)}`; });
  img.addEventListener('click', () => {
    $('texture-full').replaceChildren(el('img', { src: img.src, alt: texture.name }));
    dialog.showModal();
  });
  const figure = el('figure', {}, [img, caption]);
  if (i === 0) textures.append(figure);        // the skin atlas, full width
  else (textures.querySelector('.minor') || textures.appendChild(el('div', { className: 'minor' }))).append(figure);
});

function table(rowsData, cls = '') {
  return el('table', { className: cls }, rowsData.map(([label, value]) =>
    el('tr', {}, [el('td', { textContent: label }), el('td', { className: 'num', textContent: value })])));
}

const figures = $('figures');
figures.append(table([
  ['file', `${fmtBytes(info.bytes)}`],
  ['vertices', vertexCount.toLocaleString('en')],
  ['triangles', triangleCount.toLocaleString('en')],
  ['blendshapes', `${names.length}`],
  ['clips', `${gltf.animations.length}`],
  ['three.js', `r${THREE.REVISION}`],
]));
const sidecar = info.sidecar;
if (!sidecar) {
  figures.append(el('p', { className: 'dim', textContent: `no sidecar (${info.name.replace(/\.glb$/i, '.json')}) next to the asset` }));
} else {
  const rowsData = [];
  if (sidecar.image_size) rowsData.push(['portrait', `${sidecar.image_size[0]} × ${sidecar.image_size[1]} px`]);
  if (sidecar.pose && sidecar.pose.rotation) {
    const m = sidecar.pose.rotation;
    const euler = new THREE.Euler().setFromRotationMatrix(new THREE.Matrix4().set(
      m[0][0], m[0][1], m[0][2], 0, m[1][0], m[1][1], m[1][2], 0, m[2][0], m[2][1], m[2][2], 0, 0, 0, 0, 1));
    const deg = (r) => THREE.MathUtils.radToDeg(r).toFixed(1);
    rowsData.push(['head rotation x / y / z', `${deg(euler.x)}° / ${deg(euler.y)}° / ${deg(euler.z)}°`]);
  }
  if (sidecar.pose && sidecar.pose.scale_px_per_m) rowsData.push(['scale', `${sidecar.pose.scale_px_per_m.toFixed(0)} px/m`]);
  for (const key of ['landmarks68.coarse', 'landmarks68.fine']) {
    if (sidecar[key]) rowsData.push([key, `${sidecar[key].length} points`]);
  }
  if (sidecar.files) rowsData.push(['files', sidecar.files.join(', ')]);
  figures.append(el('h2', { textContent: `sidecar ${info.sidecar_name}` }), table(rowsData));
  if (sidecar.timings_s) {
    const entries = Object.entries(sidecar.timings_s);
    const total = entries.reduce((sum, [, s]) => sum + s, 0);
    const longest = Math.max(...entries.map(([, s]) => s), 1e-9);
    const timing = el('table', {}, entries.map(([stage, s]) => el('tr', {}, [
      el('td', { textContent: stage.replace('_', ' ') }),
      el('td', { className: 'bar' }, [el('span', { style: `width:${(100 * s / longest).toFixed(1)}%` })]),
      el('td', { className: 'num', textContent: `${s.toFixed(3)} s` }),
    ])));
    timing.append(el('tr', { className: 'total' }, [el('td', { textContent: 'total' }), el('td'), el('td', { className: 'num', textContent: `${total.toFixed(2)} s` })]));
    figures.append(el('h2', { textContent: 'build timings' }), timing);
  }
  if (sidecar.parts) {
    figures.append(el('h2', { textContent: 'parts (vertices)' }),
      table(sidecar.parts.map((p) => [p.name, p.count.toLocaleString('en')])));
  }
}
$('asset-stats').textContent = `${vertexCount.toLocaleString('en')} vertices · ${triangleCount.toLocaleString('en')} triangles · ${names.length} shapes · ${gltf.animations.length} clip(s) · ${fmtBytes(info.bytes)}`;

// ---------------------------------------------------------------- render loop
const timer = new THREE.Timer();
let lastSync = 0;
renderer.setAnimationLoop((time) => {
  timer.update(time);
  const delta = timer.getDelta();
  const damping = controls.update();
  if (currentAction && !state.paused) {
    mixer.update(delta);
    showClipTime();
    if (time - lastSync > 100) {            // sliders follow the clip at 10 Hz, not every frame
      lastSync = time;
      syncSlidersToClip();
    }
    needsRender = true;
  }
  if (!needsRender && !damping) return;
  needsRender = false;
  renderer.render(scene, camera);
  state.frames += 1;
  $('hud').textContent = state.clip ? `${state.paused ? 'paused' : 'playing'} ${state.clip} · ${state.clipTime.toFixed(2)} s` : 'drag: orbit · right-drag: pan · wheel: zoom · F/L/R/Q: views · W: wireframe';
  if (!state.ready) {
    state.ready = true;
    $('overlay').style.display = 'none';
    document.body.dataset.ready = '1';
  }
});
