"""Batch builds: one avatar per portrait in a folder, on local processes or a Dask cluster.

Both back ends run the same per-image job, :func:`run_job`: it receives the image's bytes and
the build options, builds into a private temporary folder and returns the files' bytes.  Only
the driver (:func:`run_batch`) writes into the output folder, each file under a temporary name
then renamed, so a worker that dies mid-build leaves nothing behind, and the cluster's workers
need no access to the input or output folders.

The driver records every result in ``OUT/manifest.json`` (rewritten atomically after each one).
A re-run reuses an avatar when its manifest entry has the same input hash and options and its
files are still there with the recorded hashes; everything else is built again.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import socket
import tempfile
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import InvalidInputError, PyFaceRigError

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "pyfacerig-batch-manifest/1"
#: Prefix of the driver's temporary files in the output folder; stale ones (a killed driver) are
#: removed when the next run starts.
TEMP_PREFIX = ".pyfacerig-tmp-"


@dataclass(frozen=True)
class BuildOptions:
    """The :func:`pyfacerig.build` options a batch applies to every image."""

    formats: tuple = ("glb",)
    preset: str = "unity"
    style: Optional[str] = None
    face: object = "error"
    refine_eyes: bool = True
    force: bool = False          # build past the landmark quality gate (issue #14)
    landmarks: str = "auto"      # landmark detector: "auto", "photo" (MediaPipe) or "cartoon"

    def key(self) -> str:
        """Hash of the options and the pyfacerig version: equal keys build equal avatars."""
        from . import __version__
        text = json.dumps({"pyfacerig": __version__, **asdict(self)}, sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class BatchJob:
    """One portrait to build: its file name and path, output stem, hash, options and bytes.

    ``image`` is read only when the job is handed to a worker (:func:`_loaded`), so a batch of
    thousands of portraits never holds them all in memory.
    """

    input_name: str
    stem: str
    path: str
    input_sha256: str
    options: BuildOptions
    image: Optional[bytes] = field(default=None, repr=False)


@dataclass
class BatchPlan:
    """What a run will do: jobs to build, records reused from the manifest, files skipped."""

    jobs: list
    reused: list
    skipped: list


# ----------------------------------------------------------------------------- worker side
def _warm_worker() -> None:
    """Pool initializer: import the pipeline and read the template once per worker process."""
    from .build import build  # noqa: F401
    from .templates import load_default
    load_default()


def run_job(job: BatchJob) -> dict:
    """Build one avatar; return {"input", "files": {name: bytes}, "seconds", "error", "worker"}.

    Never raises for a bad image: a :class:`PyFaceRigError` (or any other exception, so one odd
    image cannot stop a batch) becomes the "error" string and "files" is empty.
    """
    from .build import build
    from .templates import load_default

    started = time.perf_counter()
    files, error, error_type = {}, None, None
    with tempfile.TemporaryDirectory(prefix="pyfacerig-job-") as tmp:
        out = Path(tmp) / f"{job.stem}.{job.options.formats[0]}"
        try:
            image = job.image if job.image is not None else job.path
            avatar = build(image, out=out, template=load_default(), formats=job.options.formats,
                           preset=job.options.preset, style=job.options.style, face=job.options.face,
                           refine_eyes=job.options.refine_eyes, force=job.options.force,
                           landmarks=job.options.landmarks)
            files = {path.name: path.read_bytes() for path in avatar.paths}
        except PyFaceRigError as exc:
            error, error_type = str(exc), type(exc).__name__
        except Exception as exc:  # noqa: BLE001 -- reported per image, the batch goes on
            error, error_type = f"unexpected {type(exc).__name__}: {exc}", type(exc).__name__
    return {"input": job.input_name, "files": files, "seconds": round(time.perf_counter() - started, 3),
            "error": error, "error_type": error_type, "worker": f"{socket.gethostname()}:{os.getpid()}"}


# ----------------------------------------------------------------------------- driver side
def list_images(folder) -> tuple[list, list]:
    """(images, skipped): image files in ``folder`` by suffix, and every other entry's name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"{str(folder)!r} is not a folder")
    images, skipped = [], []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and entry.suffix.lower() in IMAGE_SUFFIXES:
            images.append(entry)
        else:
            skipped.append(entry.name + ("/" if entry.is_dir() else ""))
    return images, skipped


def _output_stems(images: Sequence[Path]) -> dict:
    """input name -> output stem; `a.jpg` and `a.png` in one folder become `a_jpg` and `a_png`."""
    counts: dict = {}
    for image in images:
        counts[image.stem] = counts.get(image.stem, 0) + 1
    return {image.name: image.stem if counts[image.stem] == 1 else f"{image.stem}_{image.suffix.lstrip('.').lower()}"
            for image in images}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(out_dir) -> dict:
    """The manifest in ``out_dir`` as a dict, or an empty one if there is none or it is unreadable."""
    path = Path(out_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) and manifest.get("format") == MANIFEST_FORMAT else {}


def _still_valid(record: dict, out_dir: Path, input_sha256: str, options_key: str) -> bool:
    if record.get("error") or record.get("input_sha256") != input_sha256 or record.get("options_key") != options_key:
        return False
    outputs = record.get("outputs") or {}
    for name, digest in outputs.items():
        try:
            if _sha256((out_dir / name).read_bytes()) != digest:
                return False
        except OSError:
            return False
    return bool(outputs)


def plan_batch(folder, out_dir, options: BuildOptions) -> BatchPlan:
    """Read the folder and the manifest: which images must be built, which are already done."""
    images, skipped = list_images(folder)
    out_dir = Path(out_dir)
    previous = {record.get("input"): record for record in read_manifest(out_dir).get("avatars", [])}
    stems = _output_stems(images)
    options_key = options.key()
    jobs, reused = [], []
    for image in images:
        digest = _file_sha256(image)
        record = previous.get(image.name)
        if record is not None and _still_valid(record, out_dir, digest, options_key):
            reused.append(dict(record, reused=True))
        else:
            jobs.append(BatchJob(image.name, stems[image.name], str(image), digest, options))
    return BatchPlan(jobs=jobs, reused=reused, skipped=skipped)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def _loaded(job: BatchJob) -> BatchJob:
    """The job with its image's bytes (and their hash, should the file have changed since planning)."""
    try:
        data = Path(job.path).read_bytes()
    except OSError:
        return job          # the worker reports the missing file as the image's error
    return replace(job, image=data, input_sha256=_sha256(data))


def _atomic_write(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary file beside ``path``; return the temporary's path."""
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _store(out_dir: Path, files: dict) -> None:
    """Write all of one avatar's files, then rename them into place together."""
    temporaries = {}
    try:
        for name, data in files.items():
            temporaries[name] = _atomic_write(out_dir / name, data)
        for name, tmp in temporaries.items():
            os.replace(tmp, out_dir / name)
    finally:
        for tmp in temporaries.values():
            tmp.unlink(missing_ok=True)


def _write_manifest(out_dir: Path, folder: Path, options: BuildOptions, records: dict, skipped: list) -> None:
    from . import __version__
    avatars = [records[name] for name in sorted(records)]
    manifest = {
        "format": MANIFEST_FORMAT,
        "pyfacerig": __version__,
        "input_folder": str(folder.resolve()),
        "options": asdict(options),
        "options_key": options.key(),
        "summary": {"avatars": sum(1 for r in avatars if not r["error"]),
                    "failed": sum(1 for r in avatars if r["error"]),
                    "reused": sum(1 for r in avatars if r.get("reused")),
                    "skipped_files": len(skipped)},
        "skipped_files": skipped,
        "avatars": avatars,
    }
    tmp = _atomic_write(out_dir / MANIFEST_NAME, (json.dumps(manifest, indent=1) + "\n").encode("utf-8"))
    os.replace(tmp, out_dir / MANIFEST_NAME)


def _record(job: BatchJob, result: dict, out_dir: Path) -> dict:
    """The manifest entry of one finished job (its files are written here first)."""
    record = {"input": job.input_name, "input_sha256": job.input_sha256, "options_key": job.options.key(),
              "outputs": {}, "seconds": result.get("seconds"), "worker": result.get("worker"),
              "error": result.get("error"), "error_type": result.get("error_type")}
    if not record["error"]:
        try:
            _store(out_dir, result["files"])
            record["outputs"] = {name: _sha256(data) for name, data in sorted(result["files"].items())}
        except OSError as exc:
            record["error"], record["error_type"] = f"cannot write {out_dir}: {exc.strerror or exc}", "ExportError"
    return record


def default_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _local_results(jobs, workers: int):
    """Yield (job, result) as jobs finish on a pool of ``workers`` local processes.

    Every worker runs BLAS/OpenMP on one thread, whatever the number of workers: N workers do
    not fight over the cores, and (since the thread count changes the order of floating-point
    sums) a batch writes the same bytes with --workers 1 as with --workers 8, on any machine.
    The pool is used for one worker too, for the same reason.
    """
    import multiprocessing

    if not jobs:
        return
    limits = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {name: os.environ.get(name) for name in limits}
    os.environ.update({name: "1" for name in limits})
    # "spawn": the driver may already hold threads (rich, onnxruntime); forking those is unsafe.
    # The initializer imports the pipeline once per worker, not once per image.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_warm_worker)
    try:
        pending, queue = {}, iter(jobs)
        while True:
            # At most two jobs per worker are in flight: each carries its image's bytes.
            for job in queue:
                pending[pool.submit(run_job, _loaded(job))] = job
                if len(pending) >= 2 * workers:
                    break
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    result = _lost(job, "a worker process died before this image finished; re-run the batch to build it")
                yield job, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _dask_results(jobs, address: str):
    """Yield (job, result) as jobs finish on the Dask cluster whose scheduler is at ``address``."""
    try:
        from distributed import Client
        from distributed import as_completed as dask_as_completed
    except ImportError:
        raise InvalidInputError("--scheduler needs Dask: pip install 'pyfacerig[dask]'") from None
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise InvalidInputError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None
    try:
        # At most four jobs per worker thread are queued on the cluster, each with its image's bytes.
        window = max(8, 4 * sum(client.nthreads().values()))
        queue = iter(jobs)
        pending = {}

        def submit(job):
            # Keys name the image so the cluster's dashboard shows which portrait runs where.
            future = client.submit(run_job, _loaded(job), pure=False,
                                   key=f"pyfacerig-{job.stem}-{job.input_sha256[:12]}-{uuid.uuid4().hex[:8]}")
            pending[future] = job
            return future

        finished = dask_as_completed([submit(job) for job in itertools.islice(queue, window)])
        for future in finished:
            job = pending.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001 -- KilledWorker, lost connection: record and go on
                result = _lost(job, f"the cluster lost this image ({type(exc).__name__}: {exc}); re-run the batch")
            future.release()
            next_job = next(queue, None)
            if next_job is not None:
                finished.add(submit(next_job))
            yield job, result
    finally:
        client.close()


def _lost(job: BatchJob, message: str) -> dict:
    return {"input": job.input_name, "files": {}, "seconds": None, "error": " ".join(message.split()),
            "error_type": "WorkerLostError", "worker": None}


def run_batch(folder, out_dir, options: BuildOptions = BuildOptions(), workers: Optional[int] = None,
              scheduler: Optional[str] = None, plan: Optional[BatchPlan] = None,
              on_result: Optional[Callable[[dict], None]] = None) -> dict:
    """Build every portrait in ``folder`` into ``out_dir``; return the manifest (also written).

    workers: local processes (default: one per core); ignored when ``scheduler`` is given.
    scheduler: address of a Dask distributed scheduler, e.g. "tcp://10.0.0.5:8786".
    plan: from :func:`plan_batch` (computed here if not given).
    on_result: called with each manifest entry as its image finishes (reused ones first).
    """
    folder, out_dir = Path(folder), Path(out_dir)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create output folder {str(out_dir)!r}: {exc.strerror or exc}") from None
    for stale in out_dir.glob(TEMP_PREFIX + "*"):
        stale.unlink(missing_ok=True)
    plan = plan_batch(folder, out_dir, options) if plan is None else plan
    records = {record["input"]: record for record in plan.reused}
    report = on_result or (lambda record: None)
    for record in plan.reused:
        report(record)
    _write_manifest(out_dir, folder, options, records, plan.skipped)
    if scheduler:
        results = _dask_results(plan.jobs, scheduler)
    else:
        results = _local_results(plan.jobs, min(workers or default_workers(), max(1, len(plan.jobs))))
    for job, result in results:
        records[job.input_name] = _record(job, result, out_dir)
        _write_manifest(out_dir, folder, options, records, plan.skipped)
        report(records[job.input_name])
    return read_manifest(out_dir)
