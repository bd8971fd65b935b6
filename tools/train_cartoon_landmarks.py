"""Train pyfacerig's cartoon landmark network (issue #14) and export it to ONNX.

    python tools/train_cartoon_landmarks.py [--work DIR] [--rasters 350] [--steps 1000] [--jobs 2]

Stages (each cached in --work, so a re-run only does what is missing):

1. **photo textures** -- ``build()`` on the two bundled portraits (pyfacerig/examples); their baked
   skin atlases are the photo look's textures.
2. **render** -- ``--rasters`` random identities/expressions/poses of the head template, each
   shaded in 3 training looks (:mod:`pyfacerig.cartoon_renders`): 160 x 160 images with exact
   478-point ground truth.  Chunk ``k`` is rendered with ``numpy.random.default_rng([SEED, k])``,
   so the data does not depend on how many processes render it.
3. **train** -- :class:`LandmarkNet` (below) on square crops around the ground truth's face box,
   jittered as a face detector's box would be (shift, scale, roll), mirrored half of the time;
   AdamW, cosine schedule, L1 loss with the eyes and irises weighted x3; seeded, with torch's
   deterministic algorithms on one thread per process.
4. **export** -- ONNX (opset 17) to ``pyfacerig/models/cartoon_landmarks.onnx``: input
   (1, 3, 96, 96) float32 RGB in [0, 1], output (1, 478, 2) in [0, 1] of the crop.

torch is needed for training only (``pip install ".[train]"``); pyfacerig runs the ONNX file
with ONNX Runtime (:class:`pyfacerig.networks.CartoonLandmarkDetector`).
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
from pyfacerig.cartoon_renders import TRAINING_LOOKS, Renderer, crop_box  # noqa: E402

SEED = 14
INPUT = 96           # network input side (pixels)
CROP_SCALE = 1.35     # crop side = CROP_SCALE x the face box's longer side
LOOKS_PER_RASTER = 3
CHUNK = 25            # rasters per render job
OUT = ROOT / "pyfacerig" / "models" / "cartoon_landmarks.onnx"


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
    crop = cv2.warpAffine(image, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    p = np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]
    return crop, (p / INPUT).astype(np.float32)


def augment_batch(images, points, indices, rng):
    mirror = np.asarray(LANDMARK_MIRROR)
    xs, ys = [], []
    for i in indices:
        crop, p = jittered_crop(images[i], points[i], rng)
        if rng.random() < 0.5:     # mirror image: flip x and swap left/right landmark labels
            crop = crop[:, ::-1]
            p = p[mirror] * [-1, 1] + [1, 0]
        crop = crop.astype(np.float32) / 255.0
        crop = crop * rng.uniform(0.75, 1.25) + rng.uniform(-0.1, 0.1)       # brightness / contrast
        if rng.random() < 0.3:
            crop = crop.mean(axis=2, keepdims=True).repeat(3, axis=2)
        crop = crop + rng.normal(0, rng.uniform(0, 0.03), crop.shape)
        xs.append(np.clip(crop, 0, 1).transpose(2, 0, 1))
        ys.append(p)
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


# ----------------------------------------------------------------------------- network
def make_network():
    from torch import nn

    def block(cin, cout, stride):
        # MobileNet-style: depthwise 3x3 + pointwise 1x1, each with BatchNorm and ReLU6.
        return nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU6(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))

    class LandmarkNet(nn.Module):
        """96 px crop -> 478 x 2 points in [0, 1]: a MobileNet-ish trunk (96 -> 3 px) and one
        linear layer over the 3 x 3 map (it keeps where things are, unlike global pooling)."""

        def __init__(self):
            super().__init__()
            self.trunk = nn.Sequential(
                nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(inplace=True),   # 48
                block(16, 24, 2),                                                                   # 24
                block(24, 48, 2), block(48, 48, 1),                                                 # 12
                block(48, 96, 2), block(96, 96, 1),                                                 # 6
                block(96, 128, 2),                                                                  # 3
            )
            self.head = nn.Linear(128 * 9, 478 * 2)
            # Start at the mean shape: the bias holds it, the weights learn the offsets.
            nn.init.zeros_(self.head.bias)
            nn.init.normal_(self.head.weight, std=1e-3)

        def forward(self, x):
            f = self.trunk(x).flatten(1)
            return self.head(f).view(-1, 478, 2) + 0.5

    return LandmarkNet()


def train(images, points, steps: int, batch: int, log):
    import torch
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(int(os.environ.get("TRAIN_THREADS", "2")))
    net = make_network()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.08)
    weights = torch.ones(478)
    weights[_eye_ids()] = 3.0
    rng = np.random.default_rng([SEED, 999])
    net.train()
    start = time.perf_counter()
    running = None
    for step in range(steps):
        idx = rng.integers(0, len(images), batch)
        x, y = augment_batch(images, points, idx, rng)
        pred = net(torch.from_numpy(x))
        loss = ((pred - torch.from_numpy(y)).abs().sum(-1) * weights).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 100 == 0 or step == steps - 1:
            log(f"step {step} loss {running:.5f} ({time.perf_counter() - start:.0f}s)")
    net.eval()
    return net


def export(net, path: Path):
    import torch
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, INPUT, INPUT)
    buffer = io.BytesIO()
    torch.onnx.export(net, dummy, buffer, input_names=["image"], output_names=["points"], opset_version=17,
                      dynamo=False)
    import onnx
    model = onnx.load_from_string(buffer.getvalue())
    model.producer_name, model.producer_version = "pyfacerig tools/train_cartoon_landmarks.py", ""
    path.write_bytes(model.SerializeToString())


def evaluate(net, images, points):
    """NME (% of the outer-corner IOD) of single-pass crops at the ground truth's box."""
    import torch
    errs, eyes = [], []
    eye_ids = _eye_ids()[:32]
    for i in range(len(images)):
        crop, p = jittered_crop(images[i], points[i], None, jitter=False)
        x = torch.from_numpy((crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        with torch.no_grad():
            pred = net(x)[0].numpy()
        iod = np.linalg.norm(p[33] - p[263])
        d = np.linalg.norm(pred - p, axis=1) / iod
        errs.append(d[:468].mean())
        eyes.append(d[eye_ids].mean())
    return 100 * float(np.mean(errs)), 100 * float(np.mean(eyes))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=ROOT / ".cartoon_train")
    ap.add_argument("--rasters", type=int, default=350)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    log_path = args.work / "train_log.txt"

    def log(msg):
        print(msg, flush=True)
        with open(log_path, "a") as f:
            f.write(msg + "\n")

    t0 = time.perf_counter()
    photo_textures(args.work)
    t1 = time.perf_counter()
    images, points, looks = render_dataset(args.work, args.rasters, args.jobs)
    t2 = time.perf_counter()
    log(f"data: {len(images)} renders; photo textures {t1 - t0:.0f}s, rendering {t2 - t1:.0f}s")
    if args.render_only:
        return
    held = len(images) // 20          # the last 5 %: a validation split of the training looks
    net = train(images[:-held], points[:-held], args.steps, args.batch, log)
    t3 = time.perf_counter()
    nme, eyes = evaluate(net, images[-held:], points[-held:])
    export(net, args.out)
    timing = {"renders": int(len(images)), "photo_textures_s": round(t1 - t0, 1), "render_s": round(t2 - t1, 1),
              "train_s": round(t3 - t2, 1), "steps": args.steps, "batch": args.batch,
              "validation_nme_percent": round(nme, 2), "validation_eyes_percent": round(eyes, 2),
              "onnx_bytes": args.out.stat().st_size}
    log(json.dumps(timing))


if __name__ == "__main__":
    main()
