"""The runtime as a C host sees it: tests/c/evaluate_rig.c compiled against facerig_runtime.h.

The program is built with the system C compiler against the shared library
pyfacerig.runtime loads (so Python and C share one binary), and once more against
the static library of a stand-alone CMake build of src_cpp/runtime.
"""
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import pyfacerig.runtime as runtime
from pyfacerig.runtime import Rig

REPO = Path(__file__).resolve().parents[1]
PROGRAM = REPO / "tests" / "c" / "evaluate_rig.c"
RUNTIME_SOURCES = REPO / "src_cpp" / "runtime"


def header_dir() -> Path:
    """The header installed into the wheel (pyfacerig/include), else the source tree's."""
    installed = runtime.library_path().parent / "include"
    return installed if (installed / "facerig_runtime.h").is_file() else RUNTIME_SOURCES


def compile_program(out: Path, link_args) -> Path:
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", str(PROGRAM),
           "-I", str(header_dir()), "-o", str(out), *link_args, "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


@pytest.fixture(scope="module")
def program(tmp_path_factory) -> Path:
    lib = runtime.library_path()
    return compile_program(tmp_path_factory.mktemp("c") / "evaluate_rig",
                           [str(lib), f"-Wl,-rpath,{lib.parent}"])


def write_case(folder: Path, with_normals: bool):
    rng = np.random.default_rng(42)
    neutral = rng.normal(size=(1003, 3))
    deltas = rng.normal(scale=0.05, size=(52, 1003, 3)) * (rng.random((52, 1003, 1)) < 0.2)
    extra = {}
    if with_normals:
        extra = dict(normals=rng.normal(size=(1003, 3)),
                     normal_deltas=rng.normal(scale=0.1, size=(52, 1003, 3)))
    rig = Rig.from_arrays(neutral, deltas, [f"s{i}" for i in range(52)], **extra)
    weights = rng.uniform(-1, 2, 52).astype(np.float32)
    weights[::3] = 0
    rig.save(folder / "face.frig")
    (folder / "weights.f32").write_bytes(weights.tobytes())
    return rig, weights


def run(program: Path, folder: Path, *outputs):
    return subprocess.run([str(program), str(folder / "face.frig"), str(folder / "weights.f32"),
                           *[str(folder / o) for o in outputs]],
                          capture_output=True, text=True, timeout=60)


def read_f32(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype=np.float32).reshape(-1, 3)


def test_c_program_evaluates_a_file_written_from_python_like_python(program, tmp_path):
    rig, weights = write_case(tmp_path, with_normals=False)
    result = run(program, tmp_path, "positions.f32")
    assert result.returncode == 0, result.stderr
    assert "vertices=1003 shapes=52" in result.stdout and "first=s0" in result.stdout
    assert np.array_equal(read_f32(tmp_path / "positions.f32"), rig.evaluate(weights))


def test_c_program_evaluates_normals_like_python(program, tmp_path):
    rig, weights = write_case(tmp_path, with_normals=True)
    result = run(program, tmp_path, "positions.f32", "normals.f32")
    assert result.returncode == 0, result.stderr
    positions, normals = rig.evaluate_with_normals(weights)
    assert np.array_equal(read_f32(tmp_path / "positions.f32"), positions)
    assert np.array_equal(read_f32(tmp_path / "normals.f32"), normals)


def test_c_program_gets_an_error_message_for_a_corrupt_file(program, tmp_path):
    write_case(tmp_path, with_normals=False)
    path = tmp_path / "face.frig"
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    result = run(program, tmp_path, "positions.f32")
    assert result.returncode == 2
    assert "checksum mismatch" in result.stderr
    assert not (tmp_path / "positions.f32").exists()


def test_runtime_builds_standalone_as_shared_and_static_library(tmp_path):
    cmake = shutil.which("cmake")
    assert cmake, "cmake is required to build the runtime"
    build = tmp_path / "build"
    subprocess.run([cmake, "-S", str(RUNTIME_SOURCES), "-B", str(build),
                    "-DCMAKE_BUILD_TYPE=Release"], check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(build), "-j", "2"], check=True, capture_output=True)
    assert (build / "libfacerig_runtime.so").is_file()
    static = build / "libfacerig_runtime.a"
    # The static build runs the same program and agrees with the Python-loaded shared one.
    program = compile_program(tmp_path / "evaluate_rig_static", [str(static)])
    rig, weights = write_case(tmp_path, with_normals=False)
    result = run(program, tmp_path, "positions.f32")
    assert result.returncode == 0, result.stderr
    assert np.array_equal(read_f32(tmp_path / "positions.f32"), rig.evaluate(weights))
