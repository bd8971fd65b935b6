"""Fuzz the .frig loader and evaluator with libFuzzer for a bounded time (not part of CI).

Why libFuzzer and not atheris: the code under test is C.  atheris drives Python
and, through ctypes, would call an uninstrumented library blind (no coverage
feedback from the C branches, no AddressSanitizer).  libFuzzer links the
runtime sources compiled with -fsanitize=fuzzer,address,undefined, so every
branch of the validator guides the mutations and any out-of-bounds read,
overflow or undefined behaviour stops the run with a report.

Needs Debian's clang (apt-get install clang).  Seeds are small valid rigs written
by pyfacerig.runtime (with and without normals, float32 and float16 deltas).

    PYTHONPATH=$PWD python tools/fuzz_rig_loader.py --seconds 300
"""
import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RUNTIME = REPO / "src_cpp" / "runtime"
SOURCES = ["error.c", "crc32.c", "cpu_features.c", "rig_loader.c", "evaluate.c",
           "kernels_scalar.c", "kernels_x86.c", "kernels_neon.c", "fuzz/fuzz_rig_loader.c"]


def build(workdir: Path, clang: str) -> Path:
    binary = workdir / "fuzz_rig_loader"
    cmd = [clang, "-g", "-O1", "-std=c11", "-fsanitize=fuzzer,address,undefined",
           "-fno-sanitize-recover=undefined", "-I", str(RUNTIME),
           *[str(RUNTIME / s) for s in SOURCES], "-lm", "-o", str(binary)]
    subprocess.run(cmd, check=True)
    return binary


def write_seeds(corpus: Path) -> int:
    from pyfacerig.runtime import build_rig_bytes

    rng = np.random.default_rng(0)
    seeds = []
    for vertices, shapes, normals, precision in [(1, 1, False, "float32"), (20, 3, True, "float32"),
                                                 (17, 2, False, "float16"), (33, 4, True, "float16"),
                                                 (5, 0, False, "float32")]:
        deltas = rng.normal(size=(shapes, vertices, 3)) * (rng.random((shapes, vertices, 1)) < 0.5)
        extra = dict(normals=rng.normal(size=(vertices, 3)),
                     normal_deltas=rng.normal(size=(shapes, vertices, 3))) if normals else {}
        seeds.append(build_rig_bytes(rng.normal(size=(vertices, 3)), deltas,
                                     [f"s{i}" for i in range(shapes)], delta_precision=precision,
                                     **extra))
    corpus.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(seeds):
        (corpus / f"seed{i}.frig").write_bytes(data)
    return len(seeds)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=int, default=300, help="total fuzzing time")
    p.add_argument("--max-len", type=int, default=4096, help="largest input libFuzzer tries")
    p.add_argument("--workdir", type=Path, default=REPO / "build" / "fuzz")
    args = p.parse_args()

    clang = shutil.which("clang")
    if clang is None:
        print("clang not found: apt-get install clang", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    binary = build(args.workdir, clang)
    corpus = args.workdir / "corpus"
    seeds = write_seeds(corpus)
    artifacts = args.workdir / "artifacts"
    artifacts.mkdir(exist_ok=True)
    start = time.time()
    run = subprocess.run([str(binary), str(corpus), f"-max_total_time={args.seconds}",
                          f"-max_len={args.max_len}", "-print_final_stats=1", "-timeout=10",
                          f"-artifact_prefix={artifacts}/"],
                         capture_output=True, text=True)
    elapsed = time.time() - start
    log = run.stdout + run.stderr
    (args.workdir / "fuzz.log").write_text(log)
    stats = dict(re.findall(r"stat::(\w+):\s+(\d+)", log))
    crashes = sorted(p.name for p in artifacts.iterdir())
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    print(f"libFuzzer on the .frig loader + evaluator (ASan+UBSan), {seeds} seeds")
    print(f"  duration            {elapsed:.0f} s")
    print(f"  executions          {stats.get('number_of_executed_units', '?')}"
          f" ({stats.get('average_exec_per_sec', '?')}/s)")
    print(f"  coverage (edges)    {cov[-1][0] if cov else '?'}   features {cov[-1][1] if cov else '?'}")
    print(f"  corpus              {len(list(corpus.iterdir()))} inputs")
    print(f"  crashes/leaks/ooms  {len(crashes)} {crashes if crashes else ''}")
    print(f"  exit code           {run.returncode}   (log: {args.workdir / 'fuzz.log'})")
    return 0 if run.returncode == 0 and not crashes else 1


if __name__ == "__main__":
    sys.exit(main())
