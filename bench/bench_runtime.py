"""Benchmark: the embedded runtime (pyfacerig.runtime, C) against numpy's dense S0 + B @ w.

Case of issue 3: 52 shapes on a 20,000-vertex mesh, each shape moving about 20%
of the vertices; all 52 weights non-zero, then 13.  "in cache" evaluates one rig
over and over; "from memory" rotates over enough copies (>= 512 MB) that each
evaluation streams its deltas from DRAM.  One thread for both sides
(OPENBLAS_NUM_THREADS etc. are set to 1 before numpy loads unless --blas-threads).

The mesh is a 160 x 125 grid in row-major order (vertex order with the locality
of a real scanned or sculpted face); each shape moves a disk covering 20% of it
with a smooth fall-off.  A last row scatters each shape's 20% at random over the
vertex order, the worst case for the block layout (almost every block is stored).

    python bench/bench_runtime.py [--repeats 2000] [--memory-mb 512] [--blas-threads N]
"""
import argparse
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=2000, help="evaluations per in-cache timing")
    p.add_argument("--memory-mb", type=int, default=512, help="data rotated over for from-memory")
    p.add_argument("--blas-threads", type=int, default=1, help="threads numpy's BLAS may use")
    return p.parse_args()


args = parse_args()
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(args.blas_threads)

import time  # noqa: E402

import numpy as np  # noqa: E402

from pyfacerig import runtime  # noqa: E402
from pyfacerig.runtime import Rig  # noqa: E402

VERTICES, SHAPES, MOVED = 20_000, 52, 0.20
GRID_W, GRID_H = 160, 125


def face_like_rig(seed, scattered=False):
    rng = np.random.default_rng(seed)
    u, v = np.meshgrid(np.linspace(-1, 1, GRID_W), np.linspace(-1, 1, GRID_H))
    uv = np.stack([u.ravel(), v.ravel()], axis=1)
    neutral = np.column_stack([0.08 * uv, 0.05 * np.exp(-2 * (uv ** 2).sum(1))])
    deltas = np.zeros((SHAPES, VERTICES, 3))
    radius = np.sqrt(MOVED * 4 / np.pi)  # disk area = 20% of the 2 x 2 square
    for i in range(SHAPES):
        if scattered:
            moved = rng.random(VERTICES) < MOVED
            falloff = moved * rng.random(VERTICES)
        else:
            centre = rng.uniform(-1 + radius, 1 - radius, 2)
            dist = np.linalg.norm(uv - centre, axis=1) / radius
            falloff = np.clip(1 - dist, 0, None) ** 2
        deltas[i] = falloff[:, None] * rng.normal(scale=0.004, size=3)
    return neutral, deltas, [f"shape{i}" for i in range(SHAPES)]


def median_us(fn, repeats):
    times = np.empty(repeats)
    for k in range(repeats):
        t0 = time.perf_counter_ns()
        fn(k)
        times[k] = time.perf_counter_ns() - t0
    return float(np.median(times)) / 1e3


def frig_caller(rigs, weights, out):
    """The bare C call (ctypes, pointers prepared once): what a host engine pays, plus ~1 us."""
    evaluate = runtime._lib.frig_evaluate
    wptr, optr = weights.ctypes.data, out.ctypes.data
    handles = [r._handle for r in rigs]
    n = len(handles)

    def call(k):
        evaluate(handles[k % n], wptr, SHAPES, optr, None)
    return call


def delta_bytes(rig, weights):
    """Bytes of position deltas one evaluation reads (stored blocks of active shapes)."""
    data = rig.to_bytes()
    value_bytes = 2 if int.from_bytes(data[24:28], "little") & 2 else 4
    blocks = -(-VERTICES // 16)
    starts_off = int.from_bytes(data[80:88], "little")
    shapes_off = int.from_bytes(data[88:96], "little")
    entries = int.from_bytes(data[44:48], "little")
    shapes = np.frombuffer(data, "<u4", entries, shapes_off)
    assert int.from_bytes(data[starts_off + 4 * blocks: starts_off + 4 * blocks + 4], "little") == entries
    return int(np.count_nonzero(weights[shapes] != 0)) * 48 * value_bytes


def main():
    rng = np.random.default_rng(7)
    w52 = rng.uniform(0.05, 1.0, SHAPES).astype(np.float32)
    w13 = np.zeros(SHAPES, np.float32)
    w13[rng.choice(SHAPES, 13, replace=False)] = w52[:13]
    out = np.empty((VERTICES, 3), np.float32)

    rows = []
    for label, scattered, precision in (("regions", False, "float32"),
                                        ("regions", False, "float16"),
                                        ("scattered", True, "float32")):
        neutral, deltas, names = face_like_rig(1, scattered)
        rig = Rig.from_arrays(neutral, deltas, names, delta_precision=precision)
        s0 = neutral.astype(np.float32).ravel()
        basis = np.ascontiguousarray(deltas.astype(np.float32).reshape(SHAPES, -1).T)  # (3N, 52)
        stored_values = delta_bytes(rig, np.ones(SHAPES, np.float32)) // (2 if precision == "float16" else 4)
        fill = np.count_nonzero(deltas) / stored_values
        copies_frig = max(1, (args.memory_mb << 20) // len(rig.to_bytes()))
        copies_np = max(1, (args.memory_mb << 20) // basis.nbytes)
        image = rig.to_bytes()
        rigs_mem = [Rig.from_bytes(image) for _ in range(copies_frig)] if label == "regions" else []
        bases_mem = [basis.copy() for _ in range(copies_np)] if label == "regions" else []
        for wname, w in (("52 active", w52), ("13 active", w13)):
            ref = s0 + basis @ w
            rig.evaluate(w, out=out)
            assert np.allclose(out.ravel(), ref, atol=1e-5 if precision == "float32" else 1e-4), \
                "runtime disagrees with numpy"
            dense_bytes = basis.nbytes
            ours_bytes = delta_bytes(rig, w)
            settings = [("in cache", [rig], [basis], args.repeats)]
            if rigs_mem:
                settings.append(("from memory", rigs_mem, bases_mem,
                                 max(args.repeats // 4, 2 * len(rigs_mem))))
            for where, rig_set, basis_set, repeats in settings:
                ours = median_us(frig_caller(rig_set, w, out), repeats)
                nb = len(basis_set)
                theirs = median_us(lambda k: s0 + basis_set[k % nb] @ w, max(repeats // 4, 2 * nb))
                api = (median_us(lambda k: rig.evaluate(w, out=out), repeats)
                       if where == "in cache" else float("nan"))
                rows.append((f"{label} {precision[-2:]}, {wname}", where, ours, api, ours_bytes / ours / 1e3,
                             theirs, dense_bytes / theirs / 1e3, theirs / ours, fill))
        del rigs_mem, bases_mem

    print(f"pyfacerig runtime vs numpy: {VERTICES} vertices, {SHAPES} shapes, ~{MOVED:.0%} moved "
          f"per shape; SIMD={rig.simd_level}; BLAS threads={args.blas_threads}; "
          f"medians of up to {args.repeats} evaluations")
    head = (f"{'case':26} {'data':12} {'ours us':>8} {'Rig.eval':>9} {'ours GB/s':>9} "
            f"{'numpy us':>9} {'np GB/s':>8} {'speed-up':>8} {'block fill':>10}")
    print(head)
    print("-" * len(head))
    for case, where, ours, api, gbs, theirs, np_gbs, ratio, fill in rows:
        api_s = f"{api:9.1f}" if api == api else f"{'-':>9}"
        print(f"{case:26} {where:12} {ours:8.1f} {api_s} {gbs:9.1f} {theirs:9.1f} {np_gbs:8.1f} "
              f"{ratio:7.1f}x {fill:10.0%}")
    print("ours us: bare C call via ctypes; Rig.eval: the Python method with its argument checks;"
          "\nGB/s: delta bytes read per evaluation / time (ours: stored blocks of active shapes,"
          " numpy: the dense 3N x 52 float32 basis); block fill: moved values / stored values;"
          "\n32/16: deltas stored as float32 (lossless) or float16 (rounded, 2**-11 relative).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
