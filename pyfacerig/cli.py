"""Command line: ``pyfacerig build``, ``pyfacerig batch`` and ``pyfacerig animate``.

Only parses arguments, calls :func:`pyfacerig.build.build` and reports progress.  Every
:class:`pyfacerig.errors.PyFaceRigError` becomes a one-line message on stderr and a non-zero
exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from pathlib import Path

from .errors import PyFaceRigError

#: Real public-domain portraits shipped in the package (see pyfacerig/examples/README.md).
EXAMPLES = {
    "astronaut": Path(__file__).parent / "examples" / "astronaut.png",
    "grace_hopper": Path(__file__).parent / "examples" / "grace_hopper.jpg",
}
from .batch import IMAGE_SUFFIXES  # noqa: E402,F401  (kept here for callers of cli.IMAGE_SUFFIXES)
#: Python-API spellings in error hints -> the CLI's own options (the messages are shared).
_API_TO_CLI = [
    (re.compile(r"\bface='?(largest|error)'?"), r"--face \1"),
    (re.compile(r"\bface=<index>"), "--face <index>"),
    (re.compile(r"\bface must be\b"), "--face must be"),
    (re.compile(r"\b(preset|style)=('?)([\w-]+)\2"), r"--\1 \3"),
    (re.compile(r"\bforce=True \(CLI --force\)"), "--force"),
]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_REFINE = {"on": True, "off": False}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyfacerig", description="One portrait in, a rigged 3D face out.")
    commands = parser.add_subparsers(dest="command", required=True)

    def add_build_options(sub):
        sub.add_argument("--format", nargs="+", choices=("glb", "fbx", "frig"), default=None,
                         help="asset format(s); default: from the -o suffix, else glb")
        sub.add_argument("--preset", choices=("unity", "unreal"), default="unity", help="target engine conventions")
        sub.add_argument("--style", choices=("cartoon",), default=None, help="stylize the portrait first")
        sub.add_argument("--refine-eyes", choices=("on", "off"), default="on",
                         help="snap eye contours to the segmented eyes (Pan et al. 3.2.1), default on")
        sub.add_argument("--force", action="store_true",
                         help="build even when the landmarks do not fit the image (scores go in the sidecar)")
        sub.add_argument("--landmarks", choices=("auto", "photo", "cartoon"), default="auto",
                         help="landmark detector: MediaPipe, with the cartoon network when the gate refuses it "
                              "(auto, default); MediaPipe only (photo); the cartoon network only (cartoon)")
        sub.add_argument("--face", default="error",
                         help="with several faces: 'largest', or an index counted left to right (default: refuse)")

    build = commands.add_parser("build", help="build one avatar from one portrait")
    source = build.add_mutually_exclusive_group(required=True)
    source.add_argument("image", nargs="?", help="portrait image file")
    source.add_argument("--example", choices=sorted(EXAMPLES), help="use a bundled real portrait")
    build.add_argument("-o", "--out", required=True, help="output asset path, e.g. out/npc.glb")
    add_build_options(build)

    batch = commands.add_parser("batch", help="build an avatar for every image in a folder")
    batch.add_argument("folder", help="folder of portraits")
    batch.add_argument("-o", "--out", required=True, help="output folder (gets OUT/manifest.json)")
    batch.add_argument("--workers", type=_positive_int, default=None,
                       help="local worker processes (default: one per core)")
    batch.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run on a Dask distributed cluster, e.g. tcp://10.0.0.5:8786 (pip install 'pyfacerig[dask]')")
    add_build_options(batch)
    animate = _add_animate_parser(commands)

    view = commands.add_parser("view", help="look at an asset in the browser (a local web page)")
    view.add_argument("asset", help="a .glb written by pyfacerig (its .json sidecar is shown too)")
    view.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (default: any free one)")
    view.add_argument("--open", action="store_true", help="open the page in the default browser")
    for sub in (build, batch, animate):
        sub.add_argument("--native-logs", action="store_true",
                         help="keep the log lines MediaPipe's C++ code writes to stderr (hidden by default)")
    from .animate.speech import cli as speech_cli  # speak, say
    speech_cli.add_commands(commands)
    return parser


def _add_animate_parser(commands):
    animate = commands.add_parser("animate", help="drive an avatar from a video or a Live Link Face CSV")
    source = animate.add_mutually_exclusive_group(required=True)
    source.add_argument("video", nargs="?", help="video file (webcam or phone recording)")
    source.add_argument("--livelink", metavar="TAKE.csv", help="a Live Link Face CSV take instead of a video")
    animate.add_argument("--avatar", required=True, help="avatar .glb written by 'pyfacerig build'")
    animate.add_argument("-o", "--out", required=True, help="animated avatar: OUT.glb or OUT.fbx")
    animate.add_argument("--csv", help="also write the take as Live Link Face CSV")
    animate.add_argument("--fps", type=float, default=None, help="frame rate (default: the video's / the CSV's)")
    animate.add_argument("--clip-name", default="take", help="name of the animation clip (default: take)")
    animate.add_argument("--preset", choices=("unity", "unreal"), default="unity", help="FBX conventions")
    return animate


def _run_animate(args, console, errors) -> int:
    from .animate import read_livelink_csv, write_livelink_csv, write_take
    from .animate.video import animate

    label = Path(args.livelink or args.video).name
    try:
        if args.livelink:
            take = read_livelink_csv(args.livelink, fps=args.fps)
            if args.csv:
                write_livelink_csv(take, args.csv)
            write_take(args.avatar, take, args.out, clip_name=args.clip_name, preset=args.preset)
        else:
            take = animate(args.video, args.avatar, fps=args.fps, out=args.out, csv=args.csv,
                           clip_name=args.clip_name, preset=args.preset)
    except PyFaceRigError as exc:
        errors.print(f"pyfacerig: error: {label}: {exc}", markup=False, highlight=False)
        return EXIT_FAILED
    for path in (args.out, args.csv):
        if path:
            console.print(f"wrote {path}", markup=False, highlight=False)
    missing = take.report.get("frames_without_face", 0)
    console.print(f"animated {take.frame_count} frames at {take.fps:g} fps from {label}"
                  + (f" ({missing} without a face)" if missing else ""), markup=False, highlight=False)
    return EXIT_OK


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return int(text)


def _terminate_like_interrupt() -> None:
    """Handle SIGTERM (a CI timeout, `kill`) as Ctrl+C: the batch's worker pool is shut down
    instead of being left behind as orphaned processes."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread (main() called from a thread)
        pass


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number 0..65535, got {text!r}")
    return int(text)


def _message(exc) -> str:
    """One line, in the CLI's spelling: the API's hints (face='largest') become options (--face largest)."""
    text = " ".join(str(exc).split())
    for pattern, replacement in _API_TO_CLI:
        text = pattern.sub(replacement, text)
    return text


@contextlib.contextmanager
def _native_stderr_hidden():
    """Send file descriptor 2 to the null device; yield a stream on the real stderr.

    MediaPipe's C++ graphs (TensorFlow Lite, absl logging) write informational lines straight
    to file descriptor 2, below Python, so they cannot be filtered with ``logging``.  The CLI
    keeps its own messages (and Python's, via ``sys.stderr``) on a duplicate of the real
    stderr and points descriptor 2 itself at the null device while it runs.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):       # no usable descriptor 2 (e.g. an embedded interpreter)
        yield sys.stderr
        return
    stream = os.fdopen(saved, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                       errors="backslashreplace")
    previous = sys.stderr
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        sys.stderr = stream
        yield stream
    finally:
        os.close(null)
        stream.flush()
        os.dup2(saved, 2)
        sys.stderr = previous
        stream.close()


def _face_option(value: str):
    return int(value) if value.lstrip("-").isdigit() else value


def _formats(args, out: Path) -> tuple[str, ...]:
    if args.format:
        return tuple(args.format)
    suffix = out.suffix.lower().lstrip(".")
    return (suffix,) if suffix in ("glb", "fbx", "frig") else ("glb",)


def _build_one(image, out: Path, args, console, label: str):
    """Run build() with a rich progress bar over the pipeline stages."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .build import STAGES, build

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(label, total=len(STAGES))
        seen = []

        def report(stage: str):
            if seen:
                progress.advance(task)
            seen.append(stage)
            progress.update(task, description=f"{label}: {stage.replace('_', ' ')}")

        avatar = build(image, out=out, formats=_formats(args, out), preset=args.preset, style=args.style,
                       face=_face_option(args.face), refine_eyes=_REFINE[args.refine_eyes], force=args.force,
                       landmarks=args.landmarks, progress=report)
        progress.update(task, completed=len(STAGES))
    return avatar


def _run_build(args, console, errors) -> int:
    image = EXAMPLES[args.example] if args.example else args.image
    label = args.example or Path(args.image).name
    try:
        avatar = _build_one(image, Path(args.out), args, console, label)
    except PyFaceRigError as exc:
        errors.print(f"pyfacerig: error: {label}: {_message(exc)}", markup=False, highlight=False)
        return EXIT_FAILED
    total = sum(avatar.timings.values())
    for path in avatar.paths:
        console.print(f"wrote {path}", markup=False, highlight=False)
    console.print(f"built {label} in {total:.2f} s", markup=False, highlight=False)
    return EXIT_OK


def _run_batch(args, console, errors) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    from .batch import BuildOptions, plan_batch, run_batch

    def fail(message: str) -> int:
        errors.print(f"pyfacerig: error: {message}", markup=False, highlight=False)
        return EXIT_FAILED

    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        return fail(f"output folder {str(out_dir)!r} is a file")
    face = _face_option(args.face)
    options = BuildOptions(formats=tuple(args.format or ("glb",)), preset=args.preset, style=args.style,
                           face=face, refine_eyes=_REFINE[args.refine_eyes], force=args.force,
                           landmarks=args.landmarks)
    try:
        from .build import _check_creatable
        _check_creatable(out_dir)
        plan = plan_batch(args.folder, out_dir, options)
    except PyFaceRigError as exc:
        return fail(_message(exc))
    if plan.skipped:
        console.print(f"skipped {len(plan.skipped)} (not {'/'.join(s.lstrip('.') for s in IMAGE_SUFFIXES)}): "
                      + ", ".join(plan.skipped), markup=False, highlight=False)
    total = len(plan.jobs) + len(plan.reused)
    if not total:
        return fail(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {args.folder}")
    if plan.reused:
        console.print(f"reusing {len(plan.reused)} avatar(s) already built with these options (manifest.json)",
                      markup=False, highlight=False)
    where = f"Dask scheduler {args.scheduler}" if args.scheduler else \
        f"{min(args.workers or _cores(), max(1, len(plan.jobs)))} local process(es)"
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"building on {where}", total=total)

        def report(record):
            status = "reused" if record.get("reused") else ("FAILED" if record["error"] else "ok")
            if record.get("error_type") == "LandmarkQualityError":
                status = "REFUSED"                 # the landmarks do not fit the image (issue #14)
            if status != "reused":
                seconds = f" {record['seconds']:.1f} s" if record.get("seconds") is not None else ""
                progress.console.print(f"{status:<7}{record['input']}{seconds}" if len(status) < 7 else
                                       f"{status} {record['input']}{seconds}", markup=False, highlight=False)
            progress.advance(task)

        try:
            manifest = run_batch(args.folder, out_dir, options, workers=args.workers, scheduler=args.scheduler,
                                 plan=plan, on_result=report)
        except PyFaceRigError as exc:
            return fail(_message(exc))
    failures = [record for record in manifest["avatars"] if record["error"]]
    console.print(f"{total - len(failures)} of {total} built ({len(plan.reused)} reused); "
                  f"manifest: {out_dir / 'manifest.json'}", markup=False, highlight=False)
    for record in failures:
        verdict = "refused" if record["error_type"] == "LandmarkQualityError" else "failed"
        errors.print(f"pyfacerig: {verdict}: {record['input']}: {record['error_type']}: {_message(record['error'])}",
                     markup=False, highlight=False)
    return EXIT_FAILED if failures else EXIT_OK


def _cores() -> int:
    from .batch import default_workers
    return default_workers()


def _run_view(args, console, errors) -> int:
    from .viewer import serve_asset
    try:
        return serve_asset(args.asset, port=args.port, open_browser=args.open, console=console)
    except PyFaceRigError as exc:
        errors.print(f"pyfacerig: error: {_message(exc)}", markup=False, highlight=False)
        return EXIT_FAILED


def main(argv=None) -> int:
    """Console entry point (``pyfacerig``)."""
    from rich.console import Console

    args = _parser().parse_args(argv)
    _terminate_like_interrupt()
    hidden = contextlib.nullcontext(sys.stderr) if getattr(args, "native_logs", True) else _native_stderr_hidden()
    with hidden as stderr:
        # soft_wrap: never break a message or a path into lines, whatever the terminal's width
        # (and not at 80 columns when the output is a pipe or a file).
        console = Console(stderr=False, soft_wrap=True)
        errors = Console(file=stderr, soft_wrap=True)
        try:
            if args.command in ("speak", "say"):
                from .animate.speech import cli as speech_cli
                return speech_cli.run(args, console, errors)
            run = {"build": _run_build, "batch": _run_batch, "view": _run_view, "animate": _run_animate}[args.command]
            return run(args, console, errors)
        except KeyboardInterrupt:
            errors.print("pyfacerig: interrupted", markup=False, highlight=False)
            return 130


if __name__ == "__main__":
    sys.exit(main())
