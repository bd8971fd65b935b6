"""Text to speech with espeak-ng (Debian package ``espeak-ng``; optional, used by ``pyfacerig say``)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ...errors import ExportError, SpeechSynthesisError, TranscriptError

#: Longest line ``say`` speaks: dialogue lines, not audiobooks.
MAX_TEXT_CHARS = 5000


def espeak_executable() -> str:
    """Path of espeak-ng; SpeechSynthesisError saying how to install it if it is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SpeechSynthesisError("espeak-ng is not installed, so text cannot be spoken; install it "
                                   "(Debian/Ubuntu: `apt-get install espeak-ng`) or record the line and use "
                                   "`pyfacerig speak AUDIO.wav --text ...`")
    return exe


def synthesize_wav(text: str, wav_path, voice: str = "en-us", words_per_minute: int = 165) -> Path:
    """Speak ``text`` into a 16-bit mono WAV at ``wav_path`` (written atomically).  Returns the path."""
    if not isinstance(text, str) or not text.strip():
        raise TranscriptError("the line to speak is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise TranscriptError(f"the line to speak has {len(text)} characters; at most {MAX_TEXT_CHARS}")
    if not isinstance(voice, str) or not voice or voice.startswith("-"):
        raise TranscriptError(f"voice must be an espeak-ng voice name such as 'en-us', got {voice!r}")
    exe = espeak_executable()
    wav_path = Path(wav_path)
    if not wav_path.parent.is_dir():
        raise ExportError(f"{str(wav_path)!r}: folder {str(wav_path.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{wav_path.name}.", suffix=".wav", dir=wav_path.parent)
    os.close(fd)
    try:
        # The text goes through stdin, so a line starting with "-" is never read as an option.
        result = subprocess.run([exe, "-v", voice, "-s", str(int(words_per_minute)), "-w", tmp, "--stdin"],
                                input=text.encode("utf-8"), capture_output=True, timeout=120)
        if result.returncode != 0 or os.path.getsize(tmp) <= 44:
            message = result.stderr.decode("utf-8", "replace").strip() or f"exit status {result.returncode}"
            raise SpeechSynthesisError(f"espeak-ng failed to speak the line: {message}")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, wav_path)
    except subprocess.TimeoutExpired:
        raise SpeechSynthesisError("espeak-ng did not finish within 120 s") from None
    except OSError as exc:
        raise ExportError(f"cannot write {str(wav_path)!r}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return wav_path
