"""Benchmark: driving an avatar from video (pyfacerig.animate) against MediaPipe's own cost.

Builds the astronaut avatar, renders the known-motion take of pyfacerig.animate.preview
(blinks, jaw, smiles, brows, gaze, +-30 degree head turn) at 640x480 with the avatar's own
textures, and times, per frame:

* MediaPipe's face mesh in tracking mode alone (the detection every frame needs) -- the baseline;
* our solve alone (head pose + 52 weights + gaze, one pass), and scipy.optimize.lsq_linear
  (the textbook bounded least-squares solver) on the same per-frame problems, given in their
  smallest equivalent form (52 rows), so its figure is a lower bound on its cost;
* the whole take solve (two passes for the neutral calibration, One-Euro, gaps);
* end to end: pyfacerig.animate on the frames (detection + solve + filtering), with the
  avatar's detector calibration already cached (its one-time cost is printed apart).

Medians over --repeats runs.  One BLAS thread (set before numpy loads): these are small
matrices, and the 2-core machine is shared.

    python bench/bench_animate.py [--frames 48] [--repeats 3] [--loops 3]
"""
import argparse
import os


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=48, help="distinct rendered frames")
    p.add_argument("--loops", type=int, default=3, help="times the frames are played in a row")
    p.add_argument("--repeats", type=int, default=3, help="timings per measurement (median)")
    return p.parse_args()


args = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import pyfacerig  # noqa: E402
from pyfacerig.animate import SolveSettings, solve_take  # noqa: E402
from pyfacerig.animate.preview import AvatarRenderer, demo_take  # noqa: E402
from pyfacerig.animate.calibrate import load_or_calibrate  # noqa: E402
from pyfacerig.animate.rig import AvatarRig  # noqa: E402
from pyfacerig.animate.video import FrameSolver, VideoFaceTracker, track_landmarks  # noqa: E402

WIDTH, HEIGHT = 640, 480


def median_time(run, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    from skimage import data

    folder = Path(tempfile.mkdtemp(prefix="bench_animate_"))
    avatar = folder / "astronaut.glb"
    pyfacerig.build(data.astronaut(), out=avatar)
    truth = demo_take(args.frames, 24.0)
    renderer = AvatarRenderer(avatar, WIDTH, HEIGHT, distance=0.7, fov_deg=25.0)
    distinct = [renderer(truth.weights[k], yaw=truth.head_pose[k, 0]) for k in range(truth.frame_count)]
    frames = np.stack(distinct * args.loops)
    count = len(frames)
    print(f"{count} frames of {WIDTH}x{HEIGHT} ({args.frames} rendered, played {args.loops} times)")

    # MediaPipe alone, tracking mode, one graph per run (as animate() does).
    def mediapipe_only():
        tracker = VideoFaceTracker()
        for frame in frames:
            tracker(frame)
        tracker.close()

    mp_s = median_time(mediapipe_only, args.repeats) / count
    landmarks, _, size, _ = track_landmarks(frames)
    found = np.isfinite(landmarks).all(axis=(1, 2))
    cache = folder / "cache"
    start = time.perf_counter()
    calibration, _ = load_or_calibrate(avatar, None, cache)
    calibrate_s = time.perf_counter() - start
    rig = calibration.apply(AvatarRig.from_glb(avatar))
    solver = FrameSolver(rig, SolveSettings(fov_deg=25.0), (WIDTH, HEIGHT))
    observed = solver.observed(landmarks[found], HEIGHT)
    solve_s = median_time(lambda: solver.solve(observed), args.repeats) / found.sum()

    # The same box-constrained problems given to scipy.optimize.lsq_linear: each frame's QP
    # 1/2 wᵀGw - bᵀw as the least-squares |Lᵀw - L⁻¹b|² (G = L Lᵀ), which has the same minimiser.
    from scipy.optimize import lsq_linear

    weights, rotations, translations = solver.solve(observed)
    g_all, b_all = solver.systems(observed, rotations, translations)
    problems = []
    for k in range(min(60, len(observed))):
        chol = np.linalg.cholesky(g_all[k])
        problems.append((chol.T, np.linalg.solve(chol, b_all[k])))

    def scipy_only():
        for a, y in problems:
            lsq_linear(a, y, bounds=(0.0, 1.0), method="bvls")

    scipy_s = median_time(scipy_only, args.repeats) / len(problems)
    agree = max(np.abs(lsq_linear(a, y, bounds=(0.0, 1.0), method="bvls", tol=1e-12).x - weights[k]).max()
                for k, (a, y) in enumerate(problems[:10]))

    take_s = median_time(lambda: solve_take(landmarks, 24.0, size, rig), args.repeats) / count
    take = solve_take(landmarks, 24.0, size, rig)
    truth_yaw = np.tile(truth.head_pose[:, 0], args.loops)
    print(f"take check: field of view estimated {take.report['fov_deg']:.1f} deg (rendered 25.0), head yaw error "
          f"mean {np.degrees(np.abs(take.head_pose[:, 0] - truth_yaw)).mean():.2f} deg")
    setup_s = median_time(lambda: AvatarRig.from_glb(avatar), args.repeats)
    total_s = median_time(lambda: pyfacerig.animate(frames, avatar, fps=24.0, cache_dir=cache), args.repeats)
    stream_s = (total_s - setup_s) / count

    print(f"{'stage':52s} {'ms/frame':>9s} {'frames/s':>9s} {'vs MediaPipe':>13s}")
    rows = [("MediaPipe face mesh, tracking mode (baseline)", mp_s),
            ("our solve alone (pose + 52 weights + gaze)", solve_s),
            ("scipy lsq_linear (bvls), the same QPs only", scipy_s),
            ("our whole take solve (fov search, 2 passes, filters)", take_s),
            ("end to end per frame, after the avatar load", stream_s)]
    for name, seconds in rows:
        print(f"{name:52s} {seconds * 1e3:9.2f} {1 / seconds:9.0f} {seconds / mp_s:12.2f}x")
    print(f"one-time detector calibration of the avatar (renders + face mesh, then cached): {calibrate_s:.1f} s")
    print(f"one-time avatar load (glb + template): {setup_s * 1e3:.0f} ms; end to end over this take "
          f"including it: {count / total_s:.1f} frames/s")
    print(f"our solve is {scipy_s / solve_s:.1f}x faster than lsq_linear on the same problems "
          f"(largest weight difference {agree:.1e}), and costs {100 * solve_s / mp_s:.0f} % of MediaPipe's "
          f"per-frame time")


if __name__ == "__main__":
    main()
