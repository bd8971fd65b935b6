"""Phones with timings, from pocketsphinx (BSD; US-English model shipped in its wheel).

With a transcript: forced alignment.  ``Decoder.set_align_text`` builds a grammar of the
words (with optional silences between them), a first pass finds the word segmentation,
``set_alignment()`` expands it into phones, and a second pass times every phone on the
10 ms frame grid.  Without a transcript: phone recognition (``allphone`` search with the
shipped phone language model), which is less accurate but needs nothing but the audio.

Robustness, because aligners fail on the edges of real recordings:
- only the part of the clip that holds sound (plus a margin) is decoded, so long leading or
  trailing silence neither slows the search nor pulls words into it;
- if the grammar's final state is not reached (the search pruned the right path), the pass
  is retried with wider beams;
- if it still fails, or the alignment it gives is implausible (phones squeezed to the
  minimum duration, words stretched over seconds: what a transcript that does not match
  the audio produces), the phones are recognised instead and the report says why.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .audio import SAMPLE_RATE, Audio, frame_rms_db, speech_extent
from .phones import espeak_pronunciation, spelling_pronunciation

#: Decoder frame period (pocketsphinx: 100 frames/s).
FRAME_S = 0.01
#: Sound kept on each side of the detected speech before decoding.
MARGIN_S = 0.25
#: Quiet added before and after the decoded region.
PAD_S = 0.25
#: A decoder frame is a 25.6 ms window starting at the frame index times 10 ms; a change
#: that the decoder places at frame f happened near the middle of the window overlap,
#: (25.6 - 10) / 2 = 7.8 ms after f * 10 ms.
FRAME_CENTRE_OFFSET_S = 0.0078
#: Largest share of loud speech frames a matching transcript may leave as silence (measured:
#: at most 0.15 on 12 matching espeak-ng sentences; 0.64 and 0.89 for unrelated transcripts).
MAX_UNEXPLAINED = 0.35
#: Lowest mean acoustic score per speech frame of an alignment we believe (pocketsphinx log
#: units, relative to each frame's best state).  Measured on espeak-ng speech: matching
#: transcripts -20..-39 (12 sentences x slow, fast, female, British, 5-10 dB noise),
#: unrelated transcripts -53..-70.
MIN_SCORE_PER_FRAME = -45.0
#: Names the decoders use for non-speech.
SILENCES = frozenset({"SIL", "<sil>", "<s>", "</s>", "+NSN+", "+SPN+", "+NOISE+", "[NOISE]", "+BREATH+"})

#: Search settings.  The library's default beams (1e-48) and lattice best path, measured on
#: 12 espeak-ng sentences, miss the grammar's final state on 1-3 of them depending on the
#: padding; without the lattice pass and with these beams all 12 align at every padding.
_ALIGN_OPTIONS = {"bestpath": False, "beam": 1e-60, "wbeam": 1e-40, "pbeam": 1e-60, "topn": 2}
#: The second try when even those prune the grammar's end.
_WIDE_OPTIONS = {"bestpath": False, "beam": 1e-90, "wbeam": 1e-70, "pbeam": 1e-90}


@dataclass(frozen=True)
class PhoneSegment:
    """One phone: ARPAbet name ("sil" for silence), start and end in seconds from the clip's
    start, and the word it belongs to (None for silence or recognised phones)."""

    phone: str
    start: float
    end: float
    word: str | None = None


@dataclass
class Alignment:
    """Phones of a clip and how they were found.

    phones: PhoneSegment list covering [0, duration] in order (silences included).
    words: (word, start, end) list (empty when recognised).
    method: "forced" (transcript aligned) or "recognised" (phone recognition).
    notes: plain-language facts for the report: fallbacks taken, guessed pronunciations.
    score_per_frame: the forced alignment's mean acoustic score per speech frame (closer to 0
        fits better; see :data:`MIN_SCORE_PER_FRAME`), None when recognised.
    """

    phones: list
    words: list
    method: str
    notes: list = field(default_factory=list)
    score_per_frame: float | None = None


_DECODERS: dict = {}


def _pocketsphinx():
    try:
        import pocketsphinx
    except ImportError:
        from ...errors import MissingDependencyError
        raise MissingDependencyError("lip sync needs pocketsphinx: pip install 'pyfacerig[speech]' "
                                     "(or pip install pocketsphinx==5.1.1)") from None
    return pocketsphinx


def _model_dir() -> str:
    pocketsphinx = _pocketsphinx()
    return os.path.join(pocketsphinx.get_model_path(), "en-us")


def _decoder(kind: str):
    """Cached decoders: loading the acoustic model costs ~0.2 s, so it is done once per process.

    kind: "align" (grammar search, default beams), "align_wide" (wider beams) or "phones"
    (allphone search).  The n-gram word model is never loaded (``lm=None``): alignment does
    not use it and it costs a second to load.
    """
    if kind not in _DECODERS:
        Decoder = _pocketsphinx().Decoder
        options = dict(samprate=SAMPLE_RATE, lm=None, loglevel="FATAL")
        if kind == "align":
            options.update(_ALIGN_OPTIONS)
        elif kind == "align_wide":
            options.update(_WIDE_OPTIONS)
        elif kind == "phones":
            # topn=2 and 1e-30 beams: ~15% faster than the defaults, same phones on our test speech.
            options.update(allphone=os.path.join(_model_dir(), "en-us-phone.lm.bin"), lw=2.0,
                           beam=1e-30, pbeam=1e-30, topn=2)
        decoder = Decoder(**options)
        # The model's feat.params turns on spectral noise removal, whose noise estimate carries
        # over from one utterance to the next: the same clip then aligns differently (or not
        # at all) depending on what the process decoded before.  Off, every clip is decoded
        # from the same state.
        decoder.config["remove_noise"] = False
        decoder.reinit_feat()
        _DECODERS[kind] = decoder
    return _DECODERS[kind]


def _cmn_init(decoder) -> str:
    if "cmn_init" not in _DECODERS:
        _DECODERS["cmn_init"] = str(decoder.config["cmninit"])
    return _DECODERS["cmn_init"]


def _run_pass(decoder, pcm: bytes) -> bool:
    # full_utt=True: the whole utterance at once, so cepstral mean normalisation is computed
    # over this utterance alone (the model's "-cmn batch") and does not depend on what the
    # cached decoder heard before -- the same audio always gives the same phones.
    decoder.set_cmn(_cmn_init(decoder))
    decoder.start_utt()
    try:
        decoder.process_raw(pcm, full_utt=True)
    finally:
        try:
            decoder.end_utt()
        except RuntimeError:  # the search found no path at all
            return False
    return True


def _padded_pcm(samples: np.ndarray) -> bytes:
    """int16 bytes of ``samples`` between two :data:`PAD_S` stretches of near-silence, with a
    faint dither over everything.

    The decoder misses the grammar's start when speech begins on its first frame; quiet
    padding gives it room.  Digital silence (exact zeros: synthetic speech's stop closures,
    gated recordings) has no usable log spectrum, so a fixed-seed noise at -70 dBFS is added
    over the whole clip, far below any recorded room noise.
    """
    pad = int(PAD_S * SAMPLE_RATE)
    padded = np.concatenate([np.zeros(pad, np.float32), samples, np.zeros(pad, np.float32)])
    padded = padded + np.random.default_rng(1234).normal(0.0, 3e-4, len(padded)).astype(np.float32)
    return Audio(padded, SAMPLE_RATE, 1).pcm16()


def ensure_pronunciations(decoder, words) -> list[str]:
    """Add every word missing from the decoder's dictionary; return notes on the guesses."""
    notes = []
    for word in dict.fromkeys(words):
        if decoder.lookup_word(word) is not None:
            continue
        phones = espeak_pronunciation(word)
        source = "espeak-ng"
        if not phones:
            phones, source = spelling_pronunciation(word), "spelling rules"
        if not phones:
            raise ValueError(f"no pronunciation for {word!r}")
        decoder.add_word(word, " ".join(phones), True)
        notes.append(f"'{word}' is not in the dictionary; pronounced {' '.join(phones)} ({source})")
    return notes


def _forced(decoder, pcm: bytes, words) -> tuple[list, list] | None:
    """(phones, words) as (name, first_frame, frame_count, word) tuples, or None on failure."""
    decoder.set_align_text(" ".join(words))
    if not _run_pass(decoder, pcm):
        return None
    try:
        decoder.set_alignment()
    except RuntimeError:
        return None
    if not _run_pass(decoder, pcm):
        return None
    alignment = decoder.get_alignment()
    if alignment is None:
        return None
    phones, word_spans, score, frames = [], [], 0.0, 0
    for word in alignment:
        name = word.name
        is_silence = name in SILENCES
        if not is_silence:
            word_spans.append((name.split("(")[0], word.start, word.duration))
        for phone in word:
            phones.append(("sil" if is_silence or phone.name in SILENCES else phone.name,
                           phone.start, phone.duration, None if is_silence else name.split("(")[0]))
            if not is_silence and phone.name not in SILENCES:
                score, frames = score + phone.score, frames + phone.duration
    if len(word_spans) != len(words):  # the search stopped before the transcript's end
        return None
    return phones, word_spans, score / max(frames, 1)


def _recognised(pcm: bytes) -> list:
    decoder = _decoder("phones")
    _run_pass(decoder, pcm)
    phones = []
    for seg in decoder.seg():
        name = "sil" if seg.word in SILENCES else seg.word
        phones.append((name, seg.start_frame, seg.end_frame - seg.start_frame + 1, None))
    return phones


def unexplained_speech(samples: np.ndarray, phones, offset: float) -> float:
    """Share of the clearly voiced 10 ms frames (within 20 dB of the loudest) that the alignment
    calls silence.  A transcript that covers only part of what is said leaves the rest to the
    grammar's optional silences; a matching one leaves almost nothing there."""
    levels = frame_rms_db(samples)
    loud = levels > max(-45.0, float(np.percentile(levels, 99)) - 20.0)
    silent = np.zeros(len(levels), bool)
    for name, start, count, _ in phones:
        if name == "sil":
            first = int(round((offset + start * FRAME_S) / FRAME_S))
            silent[max(0, first):max(0, first + count)] = True
    return float(np.mean(silent[loud])) if loud.any() else 0.0


def implausible(phones, word_spans, score_per_frame: float = 0.0) -> str | None:
    """Why a forced alignment looks like a transcript that does not match, or None.

    Matching speech gives phones of 40-150 ms; a wrong transcript squeezes many phones to the
    decoder's 3-frame minimum in one place and stretches others over the unrelated sound.
    The decoder's acoustic scores are relative to the best-matching model state of each frame,
    so their mean per speech frame says how well the transcript's phones fit the sound.
    """
    if score_per_frame < MIN_SCORE_PER_FRAME:
        return f"its phones fit the sound poorly (score {score_per_frame:.0f} per frame)"
    spoken = [(name, count) for name, _, count, _ in phones if name != "sil"]
    if not spoken:
        return "no phone was aligned"
    counts = np.array([count for _, count in spoken])
    squeezed = float(np.mean(counts <= 3))
    if len(spoken) >= 4 and squeezed > 0.45:
        return f"{squeezed:.0%} of the phones got the minimum 30 ms"
    longest = max(count for _, _, count in word_spans) * FRAME_S if word_spans else 0.0
    if longest > 2.5:
        return f"one word was stretched over {longest:.1f} s"
    return None


def align(audio: Audio, words=None) -> Alignment:
    """Phones of ``audio`` with timings; forced alignment when ``words`` (normalised transcript
    words, see :func:`pyfacerig.animate.speech.text.normalise_transcript`) are given.

    Returns an :class:`Alignment` whose phones cover [0, audio.duration].  Silent audio gives one
    "sil" phone and a note.
    """
    duration = audio.duration
    extent = speech_extent(audio.samples)
    if extent is None:
        return Alignment([PhoneSegment("sil", 0.0, duration)], [], "silent",
                         ["the audio holds no speech (all frames below -45 dBFS); the face stays neutral"])
    margin = int(MARGIN_S * SAMPLE_RATE)
    first, last = max(0, extent[0] - margin), min(len(audio.samples), extent[1] + margin)
    offset = first / SAMPLE_RATE - PAD_S
    pcm = _padded_pcm(audio.samples[first:last])
    notes: list = []

    result, method, score = None, "recognised", None
    if words:
        decoder = _decoder("align")
        notes += ensure_pronunciations(decoder, words)
        result = _forced(decoder, pcm, words)
        if result is None:
            wide = _decoder("align_wide")
            ensure_pronunciations(wide, words)
            result = _forced(wide, pcm, words)
            if result is not None:
                notes.append("aligned with widened search beams")
        if result is None:
            notes.append("the transcript could not be aligned to the audio (does it match?); "
                         "phones were recognised from the audio instead")
        else:
            reason = implausible(*result)
            score = round(float(result[2]), 2)
            result = result[:2]
            unexplained = unexplained_speech(audio.samples, result[0], offset)
            if reason is None and unexplained > MAX_UNEXPLAINED:
                reason = f"{unexplained:.0%} of the loud speech fell outside the transcript's words"
            if reason is not None:
                notes.append(f"the transcript does not seem to match the audio ({reason}); "
                             f"phones were recognised from the audio instead")
                result, score = None, None
            else:
                method = "forced"
    phones_raw, word_spans = result if result is not None else (_recognised(pcm), [])
    if not words:
        notes.append("no transcript: phones were recognised from the audio (less accurate than alignment)")

    to_time = lambda frame: offset + frame * FRAME_S + FRAME_CENTRE_OFFSET_S  # noqa: E731
    segments = []
    for name, start, count, word in phones_raw:
        segments.append(PhoneSegment(name, to_time(start), to_time(start + count), word))
    segments = _widen_squeezed_vowels(_cover(segments, duration))
    spans = [(word, round(to_time(start), 4), round(to_time(start + count), 4))
             for word, start, count in word_spans]
    return Alignment(segments, spans, method, notes, score if method == "forced" else None)


#: Shortest vowel a mouth articulates; shorter ones next to a pause are aligner slop.
MIN_VOWEL_S = 0.06


def _widen_squeezed_vowels(segments) -> list:
    """Give a vowel squeezed below :data:`MIN_VOWEL_S` against a silence the time it needs from
    that silence.  The decoder sometimes puts a short pause after a word-final vowel and leaves
    the vowel its 30 ms minimum ("My | mother"); no mouth says a diphthong in 30 ms."""
    from .phones import VOWELS
    out = list(segments)
    for index, seg in enumerate(out):
        missing = MIN_VOWEL_S - (seg.end - seg.start)
        if seg.phone not in VOWELS or missing <= 0:
            continue
        after = out[index + 1] if index + 1 < len(out) else None
        before = out[index - 1] if index > 0 else None
        if after is not None and after.phone == "sil" and after.end - after.start > missing + 0.01:
            out[index] = PhoneSegment(seg.phone, seg.start, seg.end + missing, seg.word)
            out[index + 1] = PhoneSegment("sil", seg.end + missing, after.end)
        elif before is not None and before.phone == "sil" and before.end - before.start > missing + 0.01:
            out[index - 1] = PhoneSegment("sil", before.start, seg.start - missing)
            out[index] = PhoneSegment(seg.phone, seg.start - missing, seg.end, seg.word)
    return out


def _cover(segments, duration: float) -> list:
    """Clip segments to [0, duration], merge touching silences and fill gaps with silence, so
    the phones tile the whole clip."""
    tiled: list = []
    cursor = 0.0
    for seg in segments:
        start, end = max(cursor, min(seg.start, duration)), min(seg.end, duration)
        if start > cursor + 1e-9:
            tiled.append(PhoneSegment("sil", cursor, start))
        if end > start + 1e-9:
            tiled.append(PhoneSegment(seg.phone, start, end, seg.word))
            cursor = end
    if cursor < duration - 1e-9:
        tiled.append(PhoneSegment("sil", cursor, duration))
    merged: list = []
    for seg in tiled:
        if merged and seg.phone == "sil" and merged[-1].phone == "sil":
            merged[-1] = PhoneSegment("sil", merged[-1].start, seg.end)
        else:
            merged.append(seg)
    return merged
