"""Command line: ``pyfacerig build``, ``pyfacerig batch`` and ``pyfacerig animate``.

Only parses arguments, calls :func:`pyfacerig.build.build` and reports progress.  Every
:class:`pyfacerig.errors.PyFaceRigError` becomes a one-line message on stderr and a non-zero
exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from .errors import LandmarkQualityError, PyFaceRigError

#: Real public-domain portraits shipped in the package (see pyfacerig/examples/README.md).
EXAMPLES = {
    "astronaut": Path(__file__).parent / "examples" / "astronaut.png",
    "grace_hopper": Path(__file__).parent / "examples" / "grace_hopper.jpg",
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}

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
    batch.add_argument("-o", "--out", required=True, help="output folder")
    add_build_options(batch)
    animate = _add_animate_parser(commands)
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
                  console=console, transient=True) as progress:
        task = progress.add_task(label, total=len(STAGES))
        seen = []

        def report(stage: str):
            if seen:
                progress.advance(task)
            seen.append(stage)
            progress.update(task, description=f"{label}: {stage.replace('_', ' ')}")

        avatar = build(image, out=out, formats=_formats(args, out), preset=args.preset, style=args.style,
                       face=_face_option(args.face), refine_eyes=_REFINE[args.refine_eyes], force=args.force,
                       progress=report)
        progress.update(task, completed=len(STAGES))
    return avatar


def _run_build(args, console, errors) -> int:
    image = EXAMPLES[args.example] if args.example else args.image
    label = args.example or Path(args.image).name
    try:
        avatar = _build_one(image, Path(args.out), args, console, label)
    except PyFaceRigError as exc:
        errors.print(f"pyfacerig: error: {label}: {exc}", markup=False, highlight=False)
        return EXIT_FAILED
    total = sum(avatar.timings.values())
    for path in avatar.paths:
        console.print(f"wrote {path}", markup=False, highlight=False)
    console.print(f"built {label} in {total:.2f} s", markup=False, highlight=False)
    return EXIT_OK


def _run_batch(args, console, errors) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        errors.print(f"pyfacerig: error: {folder} is not a folder", markup=False, highlight=False)
        return EXIT_FAILED
    images = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        errors.print(f"pyfacerig: error: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}",
                     markup=False, highlight=False)
        return EXIT_FAILED
    out_dir = Path(args.out)
    suffix = (args.format or ["glb"])[0]
    failures = []
    for index, image in enumerate(images, 1):
        label = f"[{index}/{len(images)}] {image.name}"
        try:
            _build_one(image, out_dir / f"{image.stem}.{suffix}", args, console, label)
            console.print(f"ok     {image.name}", markup=False, highlight=False)
        except LandmarkQualityError as exc:
            failures.append((image.name, f"refused, {type(exc).__name__}: {exc}"))
            console.print(f"REFUSED {image.name} (landmarks do not fit the image: {exc.region} "
                          f"{exc.score:.2f})", markup=False, highlight=False)
        except PyFaceRigError as exc:
            failures.append((image.name, f"{type(exc).__name__}: {exc}"))
            console.print(f"FAILED {image.name}", markup=False, highlight=False)
        except Exception as exc:  # noqa: BLE001 -- one broken image must not stop the batch
            failures.append((image.name, f"unexpected {type(exc).__name__}: {exc}"))
            console.print(f"FAILED {image.name}", markup=False, highlight=False)
    console.print(f"{len(images) - len(failures)} of {len(images)} built", markup=False, highlight=False)
    for name, message in failures:
        errors.print(f"pyfacerig: failed: {name}: {message}", markup=False, highlight=False)
    return EXIT_FAILED if failures else EXIT_OK


def main(argv=None) -> int:
    """Console entry point (``pyfacerig``)."""
    from rich.console import Console

    args = _parser().parse_args(argv)
    hidden = contextlib.nullcontext(sys.stderr) if args.native_logs else _native_stderr_hidden()
    with hidden as stderr:
        console = Console(stderr=False)
        errors = Console(file=stderr)
        try:
            if args.command == "build":
                return _run_build(args, console, errors)
            if args.command == "animate":
                return _run_animate(args, console, errors)
            if args.command in ("speak", "say"):
                from .animate.speech import cli as speech_cli
                return speech_cli.run(args, console, errors)
            return _run_batch(args, console, errors)
        except KeyboardInterrupt:
            errors.print("pyfacerig: interrupted", markup=False, highlight=False)
            return 130


if __name__ == "__main__":
    sys.exit(main())
