"""Train pyfacerig's cartoon landmark networks (issue #14) and export them to ONNX.

    python tools/train_cartoon_landmarks.py [--work DIR] [--rasters 6000] [--steps 18000]
        [--eye-steps 12000] [--jobs 2] [--stage all|face|eyes|evaluate]

Stages (the data cached in --work, so a re-run only renders what is missing):

1. **photo textures** -- ``build()`` on the two bundled portraits (pyfacerig/examples); their baked
   skin atlases are the photo look's textures.
2. **render** -- ``--rasters`` random identities/expressions/poses of the head template, each
   shaded in 3 training looks (:mod:`pyfacerig.cartoon_renders`): 160 x 160 images with exact
   478-point ground truth.  Chunk ``k`` is rendered with ``numpy.random.default_rng([SEED, k])``,
   so the data does not depend on how many processes render it.
3. **train the face network** (``--stage face``) -- :func:`make_network` on square crops around
   the ground truth's face box, jittered as a face detector's box would be (shift, scale, roll),
   mirrored half of the time; AdamW, one-cycle schedule, L1 loss with the eyes and irises
   weighted x3.
4. **train the eye network** (``--stage eyes``) -- :func:`make_eye_network` on crops around
   one eye (the left eye mirrored into a right eye), framed by the ground truth's eye corners
   and moved the way the face network's eye points miss them.
5. **export** -- ONNX (opset 17): ``pyfacerig/models/cartoon_landmarks.onnx``, input
   (1, 3, 128, 128) float32 RGB in [0, 1], output (1, 478, 2) in [0, 1] of the crop; and
   ``pyfacerig/models/cartoon_eyes.onnx``, input (N, 3, 64, 64), output (N, 21, 2).

The two networks are seeded each on its own (``torch.manual_seed(14)``, their own augmentation
streams) with torch's deterministic algorithms on one thread, so ``--stage face`` and
``--stage eyes`` can run as two processes and give what ``--stage all`` gives;
``--stage evaluate`` then measures both on the validation split.

torch is needed for training only (``pip install ".[train]"``); pyfacerig runs the ONNX files
with ONNX Runtime (:class:`pyfacerig.cartoon_landmarks.CartoonLandmarkDetector`).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# After the installed packages: an installed pyfacerig (with its compiled core) wins over this
# source tree, which has no compiled core until tools/dev_build.sh has run.
sys.path.append(str(ROOT))

from pyfacerig._landmark_mirror import LANDMARK_MIRROR  # noqa: E402
from pyfacerig.cartoon_landmarks import (LEFT_EYE_IDS, RIGHT_EYE_IDS, eye_affine, eye_frame,  # noqa: E402
                                         unwarp, warp_crop)
from pyfacerig.cartoon_renders import TRAINING_LOOKS, Renderer, crop_box  # noqa: E402

SEED = 14
INPUT = 128           # face network input side (pixels)
EYE_INPUT = 64        # eye network input side (pixels)
CROP_SCALE = 1.35     # crop side = CROP_SCALE x the face box's longer side
LOOKS_PER_RASTER = 3
CHUNK = 25            # rasters per render job
OUT = ROOT / "pyfacerig" / "models" / "cartoon_landmarks.onnx"
EYE_OUT = ROOT / "pyfacerig" / "models" / "cartoon_eyes.onnx"


def _eye_ids():
    from pyfacerig.landmarks import LEFT_EYE_CONTOUR, RIGHT_EYE_CONTOUR
    return np.array(RIGHT_EYE_CONTOUR + LEFT_EYE_CONTOUR + tuple(range(468, 478)))


# ----------------------------------------------------------------------------- data
def photo_textures(work: Path) -> list[np.ndarray]:
    """Skin atlases baked by build() from the bundled portraits (cached as PNG)."""
    out = []
    for name in ("astronaut.png", "grace_hopper.jpg"):
        cached = work / f"texture_{Path(name).stem}.png"
        if not cached.is_file():
            from pyfacerig.build import build
            avatar = build(ROOT / "pyfacerig" / "examples" / name)
            cached.write_bytes(avatar.textures["skin"])
        out.append(cv2.cvtColor(cv2.imread(str(cached)), cv2.COLOR_BGR2RGB))
    return out


def _render_chunk(args):
    chunk, count, textures_dir = args
    from pyfacerig.templates import load_default
    textures = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(Path(textures_dir).glob("texture_*.png"))]
    renderer = Renderer(load_default(), photo_textures=textures)
    rng = np.random.default_rng([SEED, chunk])
    images, points, looks = [], [], []
    for _ in range(count):
        picks = rng.choice(len(TRAINING_LOOKS), size=LOOKS_PER_RASTER, replace=False)
        for sample in renderer.render_looks(rng, [TRAINING_LOOKS[i] for i in picks]):
            images.append(sample.image)
            points.append(sample.points.astype(np.float32))
            looks.append(TRAINING_LOOKS.index(sample.look))
    path = Path(textures_dir) / f"chunk_{chunk:04d}.npz"
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, images=np.stack(images), points=np.stack(points), looks=np.array(looks))
    os.replace(tmp, path)
    return chunk


def render_dataset(work: Path, rasters: int, jobs: int):
    chunks = [(k, min(CHUNK, rasters - k * CHUNK), str(work)) for k in range((rasters + CHUNK - 1) // CHUNK)]
    todo = [c for c in chunks if not (work / f"chunk_{c[0]:04d}.npz").is_file()]
    if todo:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for done in pool.map(_render_chunk, todo):
                print(f"rendered chunk {done}", flush=True)
    data = [np.load(work / f"chunk_{c[0]:04d}.npz") for c in chunks]
    return (np.concatenate([d["images"] for d in data]), np.concatenate([d["points"] for d in data]),
            np.concatenate([d["looks"] for d in data]))


def jittered_crop(image, points, rng, jitter=True):
    """A training crop: (INPUT, INPUT, 3) uint8 and the points in [0, 1] of it.

    The box is the ground truth's face box (:func:`crop_box`) moved and scaled the way another
    detector's box (or the network's own first pass) differs from it; roll up to 15 degrees."""
    x0, y0, x1, y1 = crop_box(points)
    side = CROP_SCALE * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    angle = 0.0
    if jitter:
        side *= rng.uniform(0.85, 1.18)
        cx += rng.normal(0, 0.05) * side
        cy += rng.normal(0, 0.05) * side
        angle = rng.uniform(-15, 15)
    k = INPUT / side
    m = cv2.getRotationMatrix2D((cx, cy), angle, k)
    m[:, 2] += [INPUT / 2 - cx, INPUT / 2 - cy]
    # No half-pixel correction (warp_matrix) here, unlike the detector and the eye crops: these
    # crops scale a 160-px render by about 0.75-1.35x, where it is under 0.2 px, and the committed
    # face network was trained on them as they are.
    crop = cv2.warpAffine(image, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    p = np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]
    return crop, (p / INPUT).astype(np.float32)


def _photometric(crop, rng):
    """uint8 crop -> float32 CHW in [0, 1] with brightness/contrast, grey and noise jitter."""
    crop = crop.astype(np.float32) / 255.0
    crop = crop * rng.uniform(0.75, 1.25) + rng.uniform(-0.1, 0.1)       # brightness / contrast
    if rng.random() < 0.3:
        crop = crop.mean(axis=2, keepdims=True).repeat(3, axis=2)
    crop = crop + rng.normal(0, rng.uniform(0, 0.03), crop.shape)
    return np.clip(crop, 0, 1).transpose(2, 0, 1)


def augment_batch(images, points, indices, rng):
    mirror = np.asarray(LANDMARK_MIRROR)
    xs, ys = [], []
    for i in indices:
        crop, p = jittered_crop(images[i], points[i], rng)
        if rng.random() < 0.5:     # mirror image: flip x and swap left/right landmark labels
            crop = crop[:, ::-1]
            p = p[mirror] * [-1, 1] + [1, 0]
        xs.append(_photometric(crop, rng))
        ys.append(p)
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


def eye_crop(image, points, left, rng=None):
    """An eye-stage crop: (EYE_INPUT, EYE_INPUT, 3) uint8 and the eye's 21 points (right-eye
    order) in [0, 1] of it.  Training moves the ground truth's eye frame the way the face
    network's eye points miss it: centre by N(0, 8 %) of the eye width, width 0.8-1.25x,
    axis turned N(0, 6) degrees."""
    centre, width, axis = eye_frame(points, left)
    if rng is not None:
        centre = centre + rng.normal(0, 0.08, 2) * width
        width *= rng.uniform(0.8, 1.25)
        t = np.radians(rng.normal(0, 6))
        axis = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]) @ axis
    m = eye_affine(centre, width, axis, left, EYE_INPUT)
    crop = warp_crop(image, m, EYE_INPUT, cv2.INTER_LINEAR)
    ids = list(LEFT_EYE_IDS if left else RIGHT_EYE_IDS)
    p = np.asarray(points, np.float64)[ids] @ m[:, :2].T + m[:, 2]
    return crop, (p / EYE_INPUT).astype(np.float32)


def augment_eye_batch(images, points, indices, rng):
    xs, ys = [], []
    for i in indices:
        crop, p = eye_crop(images[i], points[i], bool(rng.random() < 0.5), rng)
        xs.append(_photometric(crop, rng))
        ys.append(p)
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


# ----------------------------------------------------------------------------- network
def _block(cin, cout, stride):
    from torch import nn
    # MobileNet-style: depthwise 3x3 + pointwise 1x1, each with BatchNorm and ReLU6.
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))


def _trunk(stem: int, widths):
    """A stride-2 3x3 stem to ``stem`` channels, then per width a stride-2 and a stride-1
    depthwise-separable block: each width halves the map."""
    from torch import nn
    layers = [nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU6(inplace=True)]
    cin = stem
    for width in widths:
        layers += [_block(cin, width, 2), _block(width, width, 1)]
        cin = width
    return nn.Sequential(*layers)


def make_network():
    from torch import nn

    class LandmarkNet(nn.Module):
        """128 px crop -> 478 x 2 points in [0, 1]: a MobileNet-ish trunk (128 -> 4 px) and a
        two-layer head over the flattened 4 x 4 map (it keeps where things are, unlike global
        pooling; the 384-wide bottleneck keeps the file under the issue's 10 MB)."""

        def __init__(self):
            super().__init__()
            self.trunk = _trunk(24, (32, 64, 128, 192))                                      # 128 -> 4 px
            self.hidden = nn.Sequential(nn.Linear(192 * 16, 384), nn.ReLU6(inplace=True))
            self.head = nn.Linear(384, 478 * 2)
            # Start at the mean shape: the bias holds it, the weights learn the offsets.
            nn.init.zeros_(self.head.bias)
            nn.init.normal_(self.head.weight, std=1e-3)

        def forward(self, x):
            f = self.hidden(self.trunk(x).flatten(1))
            return self.head(f).view(-1, 478, 2) + 0.5

    return LandmarkNet()


def make_eye_network():
    from torch import nn

    class EyeNet(nn.Module):
        """64 px eye crop -> 21 x 2 points (16 contour, 5 iris) in [0, 1] of the crop."""

        def __init__(self):
            super().__init__()
            self.trunk = _trunk(16, (32, 64, 128))                                           # 64 -> 4 px
            self.head = nn.Linear(128 * 16, 21 * 2)
            nn.init.zeros_(self.head.bias)
            nn.init.normal_(self.head.weight, std=1e-3)

        def forward(self, x):
            return self.head(self.trunk(x).flatten(1)).view(-1, 21, 2) + 0.5

    return EyeNet()


def train(images, points, steps: int, batch: int, log, stage: str = "face", checkpoints: Path = None):
    """Train the face network (stage "face") or the eye network (stage "eyes"); with
    ``checkpoints`` (a folder), the weights are saved there every 2000 steps."""
    import torch
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "1")))
    if stage == "face":
        net, augment = make_network(), augment_batch
        weights = torch.ones(478)
        weights[_eye_ids()] = 3.0
    else:
        net, augment = make_eye_network(), augment_eye_batch
        weights = torch.ones(21)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    rng = np.random.default_rng([SEED, 999 if stage == "face" else 998])
    net.train()
    start = time.perf_counter()
    running = None
    for step in range(steps):
        idx = rng.integers(0, len(images), batch)
        x, y = augment(images, points, idx, rng)
        pred = net(torch.from_numpy(x))
        loss = ((pred - torch.from_numpy(y)).abs().sum(-1) * weights).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 250 == 0 or step == steps - 1:
            log(f"{stage} step {step} loss {running:.5f} ({time.perf_counter() - start:.0f}s)")
        if checkpoints is not None and step % 2000 == 1999:
            torch.save(net.state_dict(), checkpoints / f"{stage}_step{step + 1}.pt")
    net.eval()
    return net


def export(net, path: Path, size: int = INPUT, dynamic_batch: bool = False):
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, size, size)
    buffer = io.BytesIO()
    axes = {"image": {0: "batch"}, "points": {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(net, dummy, buffer, input_names=["image"], output_names=["points"], opset_version=17,
                      dynamo=False, dynamic_axes=axes)
    import onnx
    model = onnx.load_from_string(buffer.getvalue())
    model.producer_name, model.producer_version = "pyfacerig tools/train_cartoon_landmarks.py", ""
    path.write_bytes(model.SerializeToString())


def evaluate(net, images, points, eye_net=None):
    """NME (% of the outer-corner IOD) of single-pass crops at the ground truth's box: over the
    468 points and over the 32 eye-contour points; with ``eye_net``, the eye contours re-read by
    the eye stage from the face network's own eye points."""
    import torch
    errs, eyes = [], []
    eye_ids = _eye_ids()[:32]
    for i in range(len(images)):
        crop, p = jittered_crop(images[i], points[i], None, jitter=False)
        x = torch.from_numpy((crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        with torch.no_grad():
            pred = net(x)[0].numpy().astype(np.float64)
        if eye_net is not None:
            for left in (False, True):
                centre, width, axis = eye_frame(pred * INPUT, left)
                m = eye_affine(centre, width, axis, left, EYE_INPUT)
                patch = warp_crop(crop, m, EYE_INPUT, cv2.INTER_LINEAR)
                xe = torch.from_numpy((patch.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
                with torch.no_grad():
                    q = eye_net(xe)[0].numpy().astype(np.float64) * EYE_INPUT
                pred[list(LEFT_EYE_IDS if left else RIGHT_EYE_IDS)] = unwarp(q, m) / INPUT
        iod = np.linalg.norm(p[33] - p[263])
        d = np.linalg.norm(pred - p, axis=1) / iod
        errs.append(d[:468].mean())
        eyes.append(d[eye_ids].mean())
    return 100 * float(np.mean(errs)), 100 * float(np.mean(eyes))


def _load_stage(stage: str, work: Path):
    import torch
    net = make_network() if stage == "face" else make_eye_network()
    net.load_state_dict(torch.load(work / f"{stage}.pt"))
    return net.eval()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / ".cartoon_train")
    ap.add_argument("--rasters", type=int, default=6000)
    ap.add_argument("--stage", choices=("all", "face", "eyes", "evaluate"), default="all",
                    help="face / eyes: train one network (each seeded on its own, so the two can run "
                         "as two processes); evaluate: both trained networks on the validation split")
    ap.add_argument("--steps", type=int, default=18000, help="face network steps")
    ap.add_argument("--eye-steps", type=int, default=12000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--eye-batch", type=int, default=64)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--eye-out", type=Path, default=EYE_OUT)
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    log_path = args.work / "train_log.txt"

    def log(msg):
        print(msg, flush=True)
        with open(log_path, "a") as f:
            f.write(msg + "\n")

    import torch
    t0 = time.perf_counter()
    photo_textures(args.work)
    t1 = time.perf_counter()
    images, points, looks = render_dataset(args.work, args.rasters, args.jobs)
    t2 = time.perf_counter()
    log(f"data: {len(images)} renders; photo textures {t1 - t0:.0f}s, rendering {t2 - t1:.0f}s")
    if args.render_only:
        return
    held = len(images) // 20          # the last 5 %: a validation split of the training looks
    record = {"renders": int(len(images)), "photo_textures_s": round(t1 - t0, 1), "render_s": round(t2 - t1, 1)}
    stages = ("face", "eyes") if args.stage == "all" else (args.stage,) if args.stage != "evaluate" else ()
    for stage in stages:
        t3 = time.perf_counter()
        steps, batch = (args.steps, args.batch) if stage == "face" else (args.eye_steps, args.eye_batch)
        net = train(images[:-held], points[:-held], steps, batch, log, stage, args.work)
        torch.save(net.state_dict(), args.work / f"{stage}.pt")
        if stage == "face":
            export(net, args.out)
        else:
            export(net, args.eye_out, EYE_INPUT, dynamic_batch=True)
        record.update({f"{stage}_train_s": round(time.perf_counter() - t3, 1), f"{stage}_steps": steps,
                       f"{stage}_batch": batch})
    if stages:
        # The landmark definition the renders were made with goes with the networks, once
        # (pyfacerig.cartoon_landmarks.TRAINING_IDS_PATH; the tests measure the networks in it).
        from pyfacerig.cartoon_landmarks import TRAINING_IDS_PATH
        from pyfacerig.templates import load_default
        np.save(args.out.parent / TRAINING_IDS_PATH.name,
                np.asarray(load_default().landmark_vertex_ids[:468], dtype=np.int32))
    if not (args.work / "face.pt").is_file():
        log(json.dumps(record))       # the eyes alone: evaluated with the face network later
        return
    face = _load_stage("face", args.work)
    nme, eyes = evaluate(face, images[-held:], points[-held:])
    record.update({"validation_nme_percent": round(nme, 2), "validation_eyes_percent": round(eyes, 2),
                   "onnx_bytes": args.out.stat().st_size})
    if (args.work / "eyes.pt").is_file():
        nme, eyes = evaluate(face, images[-held:], points[-held:], _load_stage("eyes", args.work))
        record.update({"validation_with_eye_stage_nme_percent": round(nme, 2),
                       "validation_with_eye_stage_eyes_percent": round(eyes, 2),
                       "eye_onnx_bytes": args.eye_out.stat().st_size})
    log(json.dumps(record))


if __name__ == "__main__":
    main()
