"""Time the landmark quality gate against the landmark stage it guards.

    PYTHONPATH=$PWD python bench/bench_landmark_quality.py [--repeat 15]

For the two bundled portraits and two drawn cartoons (tests/_cartoons.py): the median time of
``detect_landmarks`` (the baseline: MediaPipe face detection + face mesh), of the whole gate
(``assess_landmark_quality``: image evidence + the mirror pass), and of the image evidence alone
(mirror landmarks given), with the gate/landmarks ratio.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pyfacerig.cli import EXAMPLES  # noqa: E402
from pyfacerig.image_io import load_image  # noqa: E402
from pyfacerig.landmark_quality import _mirror_pass, assess_landmark_quality  # noqa: E402
from pyfacerig.landmarks import detect_landmarks  # noqa: E402


def _median_seconds(call, repeat: int) -> float:
    call()   # warm-up (graphs, caches)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    from _cartoons import make_cartoons
    images = {name: load_image(path) for name, path in EXAMPLES.items()}
    for image, cartoon in make_cartoons()[:2]:
        images[cartoon.name] = image
    print(f"median of {args.repeat}, milliseconds")
    print(f"{'image':<36} {'size':>9} {'landmarks':>10} {'gate':>8} {'evidence only':>14} {'gate/landmarks':>15}")
    for name, image in images.items():
        points = detect_landmarks(image).points
        mirror = _mirror_pass(image, points[:, :2], None)
        landmarks = _median_seconds(lambda: detect_landmarks(image), args.repeat)
        gate = _median_seconds(lambda: assess_landmark_quality(image, points), args.repeat)
        evidence = _median_seconds(lambda: assess_landmark_quality(image, points, mirror_points=mirror), args.repeat)
        size = f"{image.shape[1]}x{image.shape[0]}"
        print(f"{name:<36} {size:>9} {1000 * landmarks:10.1f} {1000 * gate:8.1f} {1000 * evidence:14.1f} "
              f"{gate / landmarks:14.2f}x")


if __name__ == "__main__":
    main()
