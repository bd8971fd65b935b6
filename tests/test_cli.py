"""The ``pyfacerig`` command line: the README's main-job command, batch mode and clean failures."""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import pyfacerig
from pyfacerig import cli

# The folder holding the pyfacerig this test process imported: the installed package in CI,
# the source tree in a developer build.  The CLI subprocess must run that same package, not
# whatever `python -m` would find first in its working directory.
PACKAGE_PARENT = Path(pyfacerig.__file__).resolve().parents[1]


def run_cli(*args, cwd=None, module="pyfacerig.cli"):
    """Run ``python -m pyfacerig.cli`` (or ``module``) as a user would run the console script."""
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_PARENT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # -P (Python 3.11+): do not put the working directory in front of sys.path either.
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    return subprocess.run([sys.executable, *safe_path, "-m", module, *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def no_face_png(tmp_path_factory, astronaut_rgb):
    """A real photo without a face: the lower right of the astronaut portrait (suit and flag)."""
    path = tmp_path_factory.mktemp("inputs") / "suit.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut_rgb[300:, 300:], cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def corrupt_jpeg(tmp_path_factory, grace_hopper_path):
    """Grace Hopper's JPEG cut after 2 kB."""
    path = tmp_path_factory.mktemp("inputs") / "cut.jpg"
    path.write_bytes(grace_hopper_path.read_bytes()[:2048])
    return path


def test_readme_main_job_command_writes_a_glb_and_its_sidecar(tmp_path):
    result = run_cli("build", "--example", "astronaut", "-o", "out/astronaut.glb", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    glb = tmp_path / "out" / "astronaut.glb"
    assert glb.read_bytes()[:4] == b"glTF"
    sidecar = json.loads((tmp_path / "out" / "astronaut.json").read_text())
    assert sidecar["image_size"] == [512, 512]
    assert result.stderr == ""          # nothing from MediaPipe's C++ logging either


def test_native_logs_option_lets_mediapipe_log_lines_through(tmp_path):
    result = run_cli("build", "--example", "astronaut", "-o", "a.glb", "--native-logs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "TensorFlow Lite" in result.stderr or "0000 " in result.stderr


def test_cut_off_face_is_a_clean_error_naming_the_problem(tmp_path, astronaut_rgb):
    path = tmp_path / "chinless.png"
    cv2.imwrite(str(path), cv2.cvtColor(astronaut_rgb[:150], cv2.COLOR_RGB2BGR))
    result = run_cli("build", path, "-o", tmp_path / "x.glb")
    assert result.returncode == 1 and "outside the image" in result.stderr
    assert result.stderr.startswith("pyfacerig: error: chinless.png") and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chinless.png"]


def test_format_option_writes_both_glb_and_fbx(tmp_path, grace_hopper_path):
    result = run_cli("build", grace_hopper_path, "-o", tmp_path / "grace.glb", "--format", "glb", "fbx",
                     "--preset", "unreal")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "grace.glb").is_file() and (tmp_path / "grace.fbx").is_file()
    assert (tmp_path / "grace.fbx").read_bytes()[:18] == b"Kaydara FBX Binary"


def test_no_face_exits_non_zero_with_a_message_and_no_files(tmp_path, no_face_png):
    result = run_cli("build", no_face_png, "-o", tmp_path / "x.glb")
    assert result.returncode != 0
    assert "no face" in result.stderr.lower() and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_corrupt_file_exits_non_zero_without_traceback(tmp_path, corrupt_jpeg):
    result = run_cli("build", corrupt_jpeg, "-o", tmp_path / "x.glb")
    assert result.returncode != 0
    assert "cut.jpg" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_exits_non_zero_and_leaves_nothing(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run_cli("build", "--example", "grace_hopper", "-o", blocker / "x.glb")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "a_file" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_batch_keeps_going_past_bad_images_and_reports_them(tmp_path, grace_hopper_path, no_face_png,
                                                            corrupt_jpeg):
    folder = tmp_path / "in"
    folder.mkdir()
    for source in (grace_hopper_path, no_face_png, corrupt_jpeg):
        (folder / source.name).write_bytes(source.read_bytes())
    result = run_cli("batch", folder, "-o", tmp_path / "out")
    assert result.returncode != 0
    assert (tmp_path / "out" / "grace_hopper.glb").is_file()
    assert "suit.png" in result.stderr and "cut.jpg" in result.stderr
    assert "grace_hopper" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["grace_hopper.glb", "grace_hopper.json",
                                                                     "manifest.json"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    errors = {r["input"]: r["error_type"] for r in manifest["avatars"]}
    assert errors == {"grace_hopper.jpg": None, "suit.png": "NoFaceError", "cut.jpg": "ImageReadError"}


def test_batch_of_good_images_exits_zero(tmp_path, grace_hopper_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "grace.jpg").write_bytes(grace_hopper_path.read_bytes())
    result = run_cli("batch", folder, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "grace.glb").is_file()


def test_python_dash_m_pyfacerig_is_the_same_command_line():
    done = run_cli("build", "--help", module="pyfacerig")
    assert done.returncode == 0 and "--example" in done.stdout, done.stderr


def test_bundled_examples_are_the_real_portraits(astronaut_rgb, grace_hopper_path):
    bundled = cv2.cvtColor(cv2.imread(str(cli.EXAMPLES["astronaut"])), cv2.COLOR_BGR2RGB)
    assert np.array_equal(bundled, astronaut_rgb)
    assert cli.EXAMPLES["grace_hopper"].read_bytes() == grace_hopper_path.read_bytes()


def test_cartoon_style_with_eye_refinement_builds(tmp_path, grace_hopper_path):
    result = run_cli("build", grace_hopper_path, "-o", tmp_path / "toon.glb", "--style", "cartoon",
                     "--refine-eyes", "on")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "toon.glb").is_file()


def test_bad_face_choice_is_a_clean_error(tmp_path, grace_hopper_path):
    result = run_cli("build", grace_hopper_path, "-o", tmp_path / "x.glb", "--face", "weird")
    assert result.returncode != 0 and "face" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def two_faces_png(tmp_path_factory, astronaut_rgb, grace_hopper_path):
    """The astronaut and Grace Hopper side by side: two real faces in one image."""
    grace = cv2.imread(str(grace_hopper_path))
    grace = cv2.resize(grace, (grace.shape[1] * 512 // grace.shape[0], 512))
    path = tmp_path_factory.mktemp("inputs") / "two.png"
    cv2.imwrite(str(path), np.hstack([cv2.cvtColor(astronaut_rgb, cv2.COLOR_RGB2BGR), grace]))
    return path


def test_several_faces_error_is_one_unwrapped_line_in_cli_spelling(tmp_path, two_faces_png):
    result = run_cli("build", two_faces_png, "-o", tmp_path / "x.glb")       # stderr is a pipe, not a terminal
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and len(result.stderr) > 100     # longer than 80 columns, not wrapped
    assert "--face largest" in result.stderr and "face='largest'" not in result.stderr
    assert result.stdout == ""


def test_several_faces_builds_with_the_hinted_option(tmp_path, two_faces_png):
    result = run_cli("build", two_faces_png, "-o", tmp_path / "x.glb", "--face", "largest")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "x.glb").is_file()


def test_unknown_output_suffix_is_refused_before_the_build(tmp_path):
    result = run_cli("build", "--example", "astronaut", "-o", "o/x.obj", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'.obj'" in result.stderr and ".glb" in result.stderr
    assert list(tmp_path.iterdir()) == []                                   # no o/, no x.obj.glb


def test_output_location_is_checked_before_the_portrait_is_even_read(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    # A corrupt image would fail at "load"; the output error comes first, so nothing ran.
    with pytest.raises(pyfacerig.ExportError, match="a_file"):
        pyfacerig.build(b"not an image", out=blocker / "sub" / "x.glb")
    with pytest.raises(pyfacerig.ExportError, match="'.obj'"):
        pyfacerig.build(b"not an image", out=tmp_path / "x.obj")


def test_batch_lists_the_files_it_skips(tmp_path, grace_hopper_path):
    folder = tmp_path / "in"
    (folder / "refs").mkdir(parents=True)
    (folder / "grace.jpg").write_bytes(grace_hopper_path.read_bytes())
    (folder / "notes.txt").write_text("casting notes")
    result = run_cli("batch", folder, "-o", tmp_path / "out", "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "skipped 2" in result.stdout and "notes.txt" in result.stdout and "refs/" in result.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["skipped_files"] == ["notes.txt", "refs/"]


def test_batch_rejects_zero_workers_as_a_usage_error(tmp_path):
    result = run_cli("batch", tmp_path, "-o", tmp_path / "out", "--workers", "0")
    assert result.returncode == 2 and "--workers" in result.stderr and "Traceback" not in result.stderr


def test_batch_with_an_unreachable_scheduler_is_a_clean_error(tmp_path, grace_hopper_path):
    pytest.importorskip("distributed")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "grace.jpg").write_bytes(grace_hopper_path.read_bytes())
    result = run_cli("batch", folder, "-o", tmp_path / "out", "--scheduler", "tcp://127.0.0.1:9")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot reach the Dask scheduler" in result.stderr and result.stderr.count("\n") == 1
