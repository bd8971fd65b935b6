"""Speech with known phone timings: espeak-ng's own phoneme events.

espeak-ng's library reports, through its synthesis callback, the output sample at which it
starts each phoneme (``espeakEVENT_PHONEME``, enabled by ``espeakINITIALIZE_PHONEME_EVENTS``).
That is the synthesiser's own segmentation of the audio it makes, so it is exact, with one
convention to fix: espeak emits a stop's event at its release and synthesises the closure
before it as digital silence (exact zeros).  Phonetic labelling (TIMIT, and the aligner's
models) counts the closure as part of the stop, so a stop's truth start is moved back to the
first of the zero samples right before its event.

Used by the timing tests and bench/bench_speech.py.  Needs libespeak-ng.so.1 (Debian
``libespeak-ng1``, a dependency of ``espeak-ng``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
from dataclasses import dataclass

import numpy as np

_STOPS = {"p", "b", "t", "d", "k", "g", "tS", "dZ", "t#", "d#"}
_EVENT_END_OF_LIST, _EVENT_PHONEME = 0, 7
_AUDIO_OUTPUT_SYNCHRONOUS, _INITIALIZE_PHONEME_EVENTS = 2, 0x0001
_POS_CHARACTER, _CHARS_UTF8 = 1, 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT in speak_lib.h
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_LIB: dict = {}


def available() -> bool:
    try:
        _library()
        return True
    except OSError:
        return False


def _library():
    if "lib" not in _LIB:
        name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        lib = ctypes.CDLL(name)
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS)
        if rate <= 0:
            raise OSError("espeak_Initialize failed")
        _LIB.update(lib=lib, rate=rate)
    return _LIB["lib"]


@dataclass
class Utterance:
    """samples: (N,) int16 at ``rate``; phones: [(espeak mnemonic, start s)] in order; end: s."""

    samples: np.ndarray
    rate: int
    phones: list
    end: float


def synthesize(text: str, voice: str = "en-us", words_per_minute: int = 165) -> Utterance:
    lib = _library()
    chunks, events = [], []

    def on_audio(wav, count, event_list):
        if count > 0:
            chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        index = 0
        while event_list[index].type != _EVENT_END_OF_LIST:
            event = event_list[index]
            if event.type == _EVENT_PHONEME:
                events.append((event.id.string.decode("ascii", "replace"), event.sample))
            index += 1
        return 0

    callback = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(callback)
    lib.espeak_SetVoiceByName(voice.encode())
    lib.espeak_SetParameter(1, words_per_minute, 0)  # espeakRATE
    data = text.encode("utf-8")
    lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
    lib.espeak_Synchronize()
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    rate = _LIB["rate"]
    phones = []
    for name, sample in events:
        if name.startswith("_"):  # pauses
            continue
        start = sample
        if name in _STOPS:
            while start > 0 and samples[start - 1] == 0 and sample - start < 0.2 * rate:
                start -= 1
        phones.append((name, start / rate))
    return Utterance(samples=samples, rate=rate, phones=phones, end=len(samples) / rate)
