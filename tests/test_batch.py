"""`pyfacerig batch`: local processes, a real Dask LocalCluster, the manifest and resuming."""
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _portrait_set import write_portrait_set
from pyfacerig.batch import MANIFEST_NAME, TEMP_PREFIX, BuildOptions, run_batch
from test_cli import PACKAGE_PARENT

EXAMPLES = PACKAGE_PARENT / "pyfacerig" / "examples"


def start_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(PACKAGE_PARENT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-P", "-m", "pyfacerig.cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def manifest_of(out: Path) -> dict:
    return json.loads((out / MANIFEST_NAME).read_text())


def assert_whole_glb(path: Path):
    """A complete GLB: its header's length is the file's and its JSON chunk parses."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data)), path.name
    chunk_length, chunk_type = struct.unpack_from("<II", data, 12)
    assert chunk_type == 0x4E4F534A
    json.loads(data[20:20 + chunk_length])


def assert_nothing_half_written(out: Path):
    assert not list(out.glob(TEMP_PREFIX + "*"))
    for glb in out.glob("*.glb"):
        assert_whole_glb(glb)
    for sidecar in out.glob("*.json"):
        json.loads(sidecar.read_text())


@pytest.fixture(scope="module")
def portraits20(tmp_path_factory):
    folder = tmp_path_factory.mktemp("portraits20")
    write_portrait_set(folder, 20)
    (folder / "contact_sheet.txt").write_text("not an image")
    return folder


def test_local_cluster_with_a_worker_killed_halfway_completes_on_rerun(portraits20, tmp_path):
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        first = start_cli("batch", portraits20, "-o", out, "--scheduler", cluster.scheduler_address)
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and first.poll() is None:
                if (out / MANIFEST_NAME).is_file() and len(manifest_of(out)["avatars"]) >= 10:
                    break
                time.sleep(0.2)
            assert first.poll() is None, "the batch finished before half of it was done"
            victim_address, victim_pid = sorted(client.run(os.getpid).items())[0]
            os.kill(victim_pid, signal.SIGKILL)
            first_stdout, first_stderr = first.communicate(timeout=600)
        finally:
            first.kill()
        assert "Traceback" not in first_stderr
        assert "skipped 1" in first_stdout and "contact_sheet.txt" in first_stdout
        assert_nothing_half_written(out)
        after_kill = manifest_of(out)
        built_first = {r["input"] for r in after_kill["avatars"] if not r["error"]}
        assert len(built_first) >= 10

        second = start_cli("batch", portraits20, "-o", out, "--scheduler", cluster.scheduler_address)
        stdout, stderr = second.communicate(timeout=600)
    assert second.returncode == 0, stderr
    manifest = manifest_of(out)
    assert manifest["summary"] == {"avatars": 20, "failed": 0, "reused": len(built_first), "skipped_files": 1}
    assert {r["input"] for r in manifest["avatars"] if r.get("reused")} == built_first
    assert len(list(out.glob("*.glb"))) == 20 and len(list(out.glob("*.json"))) == 21
    assert_nothing_half_written(out)
    for record in manifest["avatars"]:
        assert record["seconds"] > 0 and record["error"] is None
        assert sorted(record["outputs"]) == [Path(record["input"]).stem + s for s in (".glb", ".json")]
    assert manifest["skipped_files"] == ["contact_sheet.txt"]


@pytest.fixture(scope="module")
def two_portraits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two")
    for name in ("astronaut.png", "grace_hopper.jpg"):
        (folder / name).write_bytes((EXAMPLES / name).read_bytes())
    return folder


def test_two_local_workers_write_the_same_assets_as_one(two_portraits, tmp_path):
    one = run_batch(two_portraits, tmp_path / "one", workers=1)
    two = run_batch(two_portraits, tmp_path / "two", workers=2)
    assert one["summary"]["avatars"] == two["summary"]["avatars"] == 2
    assert len({r["worker"] for r in two["avatars"]}) == 2          # really two processes
    for name in ("astronaut.glb", "grace_hopper.glb"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_rerun_reuses_only_avatars_with_the_same_input_and_options(two_portraits, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for image in two_portraits.iterdir():
        (folder / image.name).write_bytes(image.read_bytes())
    out = tmp_path / "out"
    first = run_batch(folder, out, workers=1)
    assert first["summary"]["reused"] == 0

    again = run_batch(folder, out, workers=1)
    assert again["summary"] == {"avatars": 2, "failed": 0, "reused": 2, "skipped_files": 0}

    (folder / "astronaut.png").write_bytes((EXAMPLES / "grace_hopper.jpg").read_bytes())  # new content
    changed = run_batch(folder, out, workers=1)
    assert [r["input"] for r in changed["avatars"] if r.get("reused")] == ["grace_hopper.jpg"]

    (out / "grace_hopper.glb").write_bytes(b"glTF broken")          # damaged output: rebuilt
    repaired = run_batch(folder, out, workers=1)
    assert [r["input"] for r in repaired["avatars"] if r.get("reused")] == ["astronaut.png"]
    assert_whole_glb(out / "grace_hopper.glb")

    unreal = run_batch(folder, out, BuildOptions(preset="unreal"), workers=1)   # other options: all rebuilt
    assert unreal["summary"]["reused"] == 0


def test_failures_are_recorded_in_the_manifest_and_the_batch_goes_on(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "grace.jpg").write_bytes((EXAMPLES / "grace_hopper.jpg").read_bytes())
    (folder / "cut.jpg").write_bytes((EXAMPLES / "grace_hopper.jpg").read_bytes()[:2048])
    manifest = run_batch(folder, tmp_path / "out", workers=1)
    records = {r["input"]: r for r in manifest["avatars"]}
    assert records["grace.jpg"]["error"] is None
    assert records["cut.jpg"]["error_type"] == "ImageReadError" and records["cut.jpg"]["outputs"] == {}
    assert records["cut.jpg"]["seconds"] >= 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["grace.glb", "grace.json", MANIFEST_NAME]


def test_local_pool_with_a_worker_killed_records_the_lost_images_and_the_rerun_completes(portraits20, tmp_path):
    psutil = pytest.importorskip("psutil")
    folder = tmp_path / "in"
    folder.mkdir()
    for image in sorted(portraits20.glob("*.*g"))[:6]:
        (folder / image.name).write_bytes(image.read_bytes())
    out = tmp_path / "out"
    first = start_cli("batch", folder, "-o", out, "--workers", "2")
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and first.poll() is None:
            if (out / MANIFEST_NAME).is_file() and len(manifest_of(out)["avatars"]) >= 2:
                break
            time.sleep(0.2)
        assert first.poll() is None, "the batch finished before a worker could be killed"
        workers = [child for child in psutil.Process(first.pid).children() if "spawn_main" in " ".join(child.cmdline())]
        assert len(workers) == 2
        workers[0].kill()
        stdout, stderr = first.communicate(timeout=600)
    finally:
        first.kill()
    assert first.returncode == 1 and "Traceback" not in stderr
    assert "WorkerLostError" in stderr and "re-run the batch" in stderr
    assert_nothing_half_written(out)
    built_first = {r["input"] for r in manifest_of(out)["avatars"] if not r["error"]}
    assert 2 <= len(built_first) < 6

    second = start_cli("batch", folder, "-o", out, "--workers", "2")
    stdout, stderr = second.communicate(timeout=600)
    assert second.returncode == 0, stderr
    manifest = manifest_of(out)
    assert manifest["summary"] == {"avatars": 6, "failed": 0, "reused": len(built_first), "skipped_files": 0}
    assert len(list(out.glob("*.glb"))) == 6
    assert_nothing_half_written(out)


def test_terminating_a_local_batch_stops_its_workers_and_leaves_whole_files(portraits20, tmp_path):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "out"
    batch = start_cli("batch", portraits20, "-o", out, "--workers", "2")
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and batch.poll() is None:
            if (out / MANIFEST_NAME).is_file() and len(manifest_of(out)["avatars"]) >= 1:
                break
            time.sleep(0.2)
        workers = [c for c in psutil.Process(batch.pid).children() if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2
        batch.terminate()                                   # SIGTERM, as a CI timeout sends it
        _, stderr = batch.communicate(timeout=120)
    finally:
        batch.kill()
    assert batch.returncode == 130 and "interrupted" in stderr and "Traceback" not in stderr
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == []                                      # no orphaned worker processes
    assert_nothing_half_written(out)
