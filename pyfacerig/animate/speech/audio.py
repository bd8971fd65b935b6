"""Speech audio in: any common WAV layout, or an array, to 16 kHz mono float32.

The aligner's acoustic model is wideband (16 kHz).  Everything else in the speech pipeline
(loudness, timing) works on the same resampled signal, so there is one clock.
"""
from __future__ import annotations

import io
import os
import wave
from dataclasses import dataclass, field
from math import gcd
from pathlib import Path

import numpy as np

from ...errors import AudioReadError

#: Sample rate everything is resampled to (pocketsphinx's en-us model is 16 kHz).
SAMPLE_RATE = 16000
#: Below this a recording cannot carry the consonants the aligner needs.
MIN_SOURCE_RATE = 8000
#: Shortest usable clip; a single phone lasts about 50 ms.
MIN_DURATION_S = 0.05


@dataclass
class Audio:
    """Mono speech at :data:`SAMPLE_RATE`.

    samples: (N,) float32 in [-1, 1].
    source_rate: sample rate of the input before resampling.
    source_channels: channel count of the input (mixed down to mono).
    notes: what was done to the input that a user may want to know (clipping, rescaling).
    """

    samples: np.ndarray
    source_rate: int
    source_channels: int
    notes: list = field(default_factory=list)

    @property
    def rate(self) -> int:
        return SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    def pcm16(self) -> bytes:
        """Little-endian int16 bytes, what the decoder reads."""
        return (np.clip(np.round(self.samples * 32767.0), -32768, 32767).astype("<i2")).tobytes()


def read_audio(source, sample_rate: int | None = None) -> Audio:
    """Load speech from a WAV path, WAV bytes or an array.

    source: a path (str/PathLike) or bytes of a WAV file (PCM 8/16/24/32-bit, IEEE float
        32/64-bit, any channel count, WAVE_FORMAT_EXTENSIBLE included), or an array
        (N,) or (N, channels) of int16/int32/uint8/float samples with ``sample_rate`` given.
    Returns :class:`Audio` (16 kHz mono float32).
    Raises AudioReadError naming the input when it cannot be read or used.
    """
    if isinstance(source, np.ndarray):
        if sample_rate is None:
            raise AudioReadError("an audio array needs its sample_rate")
        label, rate, data = "audio array", sample_rate, source
    elif isinstance(source, (bytes, bytearray, memoryview)):
        label = "audio bytes"
        rate, data = _read_wav(io.BytesIO(bytes(source)), label)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = str(path)
        if not path.is_file():
            raise AudioReadError(f"{label}: no such audio file")
        with open(path, "rb") as handle:
            rate, data = _read_wav(handle, label)
    else:
        raise AudioReadError(f"audio must be a WAV path, WAV bytes or an array, not {type(source).__name__}")
    return _to_mono_16k(np.asarray(data), int(rate), label)


def _read_wav(handle, label: str):
    """(rate, samples) of a RIFF/WAVE stream; scipy reads float and extensible WAVs, which the
    stdlib ``wave`` module (Python 3.11) refuses, so it goes first and ``wave`` is the fallback."""
    from scipy.io import wavfile

    head = handle.read(12)
    handle.seek(0)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise AudioReadError(f"{label}: not a WAV file (only RIFF/WAVE audio is read; convert other formats "
                             f"with e.g. `sox in.mp3 out.wav`)")
    try:
        rate, data = wavfile.read(handle)
        return rate, data
    except Exception as scipy_exc:  # noqa: BLE001 -- scipy raises ValueError, struct.error, EOFError...
        handle.seek(0)
        try:
            with wave.open(handle) as reader:
                width, channels, rate = reader.getsampwidth(), reader.getnchannels(), reader.getframerate()
                raw = reader.readframes(reader.getnframes())
        except Exception:  # noqa: BLE001
            raise AudioReadError(f"{label}: unreadable WAV ({scipy_exc})") from None
        return rate, _decode_pcm(raw, width, channels, label)


def _decode_pcm(raw: bytes, width: int, channels: int, label: str) -> np.ndarray:
    if width == 1:
        data = np.frombuffer(raw, np.uint8)
    elif width == 2:
        data = np.frombuffer(raw, "<i2")
    elif width == 3:  # 24-bit: widen to int32 with the sample in the top three bytes
        bytes3 = np.frombuffer(raw[: len(raw) // 3 * 3], np.uint8).reshape(-1, 3)
        data = (bytes3[:, 0].astype(np.int32) << 8 | bytes3[:, 1].astype(np.int32) << 16
                | bytes3[:, 2].astype(np.int8).astype(np.int32) << 24)
    elif width == 4:
        data = np.frombuffer(raw, "<i4")
    else:
        raise AudioReadError(f"{label}: unsupported sample width of {width} bytes")
    return data[: len(data) // channels * channels].reshape(-1, channels)


def _to_float(data: np.ndarray, label: str, notes: list) -> np.ndarray:
    """Samples as float64 in [-1, 1], whatever the integer or float layout."""
    kind = data.dtype.kind
    if kind == "u" and data.dtype.itemsize == 1:
        return (data.astype(np.float64) - 128.0) / 128.0
    if kind == "i":
        return data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    if kind == "f":
        out = data.astype(np.float64)
        if not np.all(np.isfinite(out)):
            raise AudioReadError(f"{label}: samples contain NaN or infinity")
        peak = float(np.max(np.abs(out))) if out.size else 0.0
        if peak > 1.0:
            # Float audio beyond full scale is legal in WAV; scale it down rather than clip.
            notes.append(f"float samples peaked at {peak:.3g}; scaled to full scale")
            out = out / peak
        return out
    raise AudioReadError(f"{label}: unsupported sample format {data.dtype}")


def _to_mono_16k(data: np.ndarray, rate: int, label: str) -> Audio:
    notes: list = []
    if data.ndim not in (1, 2) or data.size == 0:
        raise AudioReadError(f"{label}: expected (N,) or (N, channels) samples, got shape {data.shape}")
    if data.ndim == 2 and data.shape[1] > 64 and data.shape[0] <= 64:
        raise AudioReadError(f"{label}: shape {data.shape} looks like (channels, N); pass (N, channels)")
    if not MIN_SOURCE_RATE <= rate <= 384000:
        raise AudioReadError(f"{label}: sample rate {rate} Hz is outside {MIN_SOURCE_RATE}..384000 Hz")
    channels = 1 if data.ndim == 1 else data.shape[1]
    samples = _to_float(data, label, notes)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if len(samples) < MIN_DURATION_S * rate:
        raise AudioReadError(f"{label}: only {len(samples) / rate * 1000:.0f} ms of audio; "
                             f"at least {MIN_DURATION_S * 1000:.0f} ms are needed")
    if rate != SAMPLE_RATE:
        from scipy.signal import resample_poly
        common = gcd(rate, SAMPLE_RATE)
        samples = resample_poly(samples, SAMPLE_RATE // common, rate // common)
    if rate < SAMPLE_RATE:
        notes.append(f"source is {rate} Hz; sounds above {rate // 2} Hz are missing, alignment may be worse")
    return Audio(samples=np.clip(samples, -1.0, 1.0).astype(np.float32), source_rate=rate,
                 source_channels=channels, notes=notes)


def frame_rms_db(samples: np.ndarray, hop: int = 160, window: int = 400) -> np.ndarray:
    """(F,) float64 RMS level in dBFS of each ``hop``-sample frame (10 ms at 16 kHz), over a
    ``window``-sample window centred on the frame."""
    samples = np.asarray(samples, dtype=np.float64)
    count = max(1, int(np.ceil(len(samples) / hop)))
    padded = np.pad(samples, (window // 2, window // 2 + hop))
    power = np.concatenate([[0.0], np.cumsum(padded * padded)])
    starts = np.arange(count) * hop
    mean_power = (power[starts + window] - power[starts]) / window
    return 10.0 * np.log10(mean_power + 1e-12)


def speech_extent(samples: np.ndarray, floor_db: float = -45.0, relative_db: float = 35.0,
                  hop: int = 160) -> tuple[int, int] | None:
    """(first, last + 1) sample range that holds sound, or None if the clip is silent.

    A frame holds sound when it is above ``floor_db`` dBFS and within ``relative_db`` of the
    loudest frames (the 99th percentile, so one click does not set the reference).
    """
    levels = frame_rms_db(samples, hop=hop)
    reference = float(np.percentile(levels, 99))
    loud = levels > max(floor_db, reference - relative_db)
    if not loud.any():
        return None
    frames = np.flatnonzero(loud)
    return int(frames[0] * hop), int(min(len(samples), (frames[-1] + 1) * hop))
