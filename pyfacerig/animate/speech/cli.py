"""``pyfacerig speak`` and ``pyfacerig say``: argument parsing and reporting only.

Hooked into :mod:`pyfacerig.cli` with two lines (:func:`add_commands`, :func:`run`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ...errors import ExportError, PyFaceRigError

COMMANDS = ("speak", "say")
EXIT_OK, EXIT_FAILED = 0, 1


def add_commands(commands) -> None:
    """Add the ``speak`` and ``say`` sub-parsers to an argparse sub-parser group."""
    speak = commands.add_parser("speak", help="lip-sync an avatar to recorded speech (WAV)")
    speak.add_argument("audio", help="speech recording (.wav: PCM 8/16/24/32-bit or float, any rate, mono/stereo)")
    speak.add_argument("--text", default=None, help="transcript of the recording (better timing); "
                                                    "without it the phones are recognised from the audio")
    say = commands.add_parser("say", help="speak a line with espeak-ng and lip-sync an avatar to it")
    say.add_argument("line", help="the line to speak")
    say.add_argument("--voice", default="en-us", help="espeak-ng voice (default en-us)")
    for sub in (speak, say):
        sub.add_argument("--avatar", required=True, help="avatar .glb written by `pyfacerig build`")
        sub.add_argument("-o", "--out", required=True, help="animated avatar (.glb or .fbx); the viseme "
                                                            "curves go to the .json next to it")
        sub.add_argument("--csv", default=None, help="also write a Live Link Face CSV")
        sub.add_argument("--fps", type=float, default=60.0, help="frames per second of the clip (default 60)")
        # pyfacerig.cli reads this for every command; speech runs no MediaPipe, so it is hidden.
        sub.add_argument("--native-logs", action="store_true", help=argparse.SUPPRESS)


def run(args, console, errors) -> int:
    """Run ``speak`` or ``say``; every PyFaceRigError becomes one line on stderr and exit 1."""
    from .espeak import synthesize_wav
    from .pipeline import avatar_lips, speak, write_speech

    out = Path(args.out)
    label = args.audio if args.command == "speak" else "say"
    new_wav = None
    try:
        if args.command == "say":
            audio = out.with_suffix(".wav")
            if not out.parent.is_dir():
                raise ExportError(f"{str(out)!r}: folder {str(out.parent)!r} does not exist")
            avatar_lips(args.avatar)   # a bad avatar fails before anything is written
            new_wav = None if audio.exists() else audio
            synthesize_wav(args.line, audio, voice=args.voice)
            text = args.line
        else:
            audio, text = args.audio, args.text
        take = speak(audio, args.avatar, text=text, fps=args.fps)
        paths = write_speech(take, args.avatar, out, csv_path=args.csv)
    except PyFaceRigError as exc:
        if new_wav is not None:
            new_wav.unlink(missing_ok=True)   # all outputs or none
        errors.print(f"pyfacerig: error: {label}: {exc}", markup=False, highlight=False)
        return EXIT_FAILED
    if args.command == "say":
        console.print(f"wrote {audio}", markup=False, highlight=False)
    for note in take.report["notes"]:
        errors.print(f"pyfacerig: note: {note}", markup=False, highlight=False)
    for key in ("asset", "sidecar", "csv"):
        if paths[key] is not None:
            console.print(f"wrote {paths[key]}", markup=False, highlight=False)
    spoken = sum(1 for p in take.report["phones"] if p[0] != "sil")
    console.print(f"lip-synced {take.report['audio']['duration_s']:.2f} s: {spoken} phones "
                  f"({take.report['method']}), {take.frame_count} frames at {take.fps:g} fps",
                  markup=False, highlight=False)
    return EXIT_OK
