"""Phones to the 15 Oculus/Meta visemes, and viseme curves with coarticulation.

Mapping (Meta's viseme reference: PP p b m, FF f v, TH th dh, DD t d, kk k g, CH ch jh sh,
SS s z, nn n l, RR r, aa, E, ih, oh, ou).  Choices where the reference is silent:
- NG goes to kk (velar closure, like k/g); HH takes the shape of the phone after it (the
  mouth is already set for the vowel while the breath comes through);
- W goes to ou (rounded) and Y to ih (spread); ER to RR;
- diphthongs are split over their duration: AW aa->ou, AY aa->ih, EY E->ih, OW oh->ou, OY oh->ih;
- AH and AE go to aa (Meta lists "cup" and "cat" under aa).

Coarticulation (the mouth moves toward the next sound before it starts, and keeps some of
the last one) follows the dominance idea of Cohen and Massaro: each phone has an activation
that ramps in before the phone (look-ahead), holds through it and ramps out after it, and a
dominance that says how strongly it claims the mouth.  Where activations overlap, each
viseme gets its share of the total dominance.  Bilabials and labiodentals dominate (the lips
must close or touch the teeth whatever the vowel around them); tongue consonants (t d n l k
g) barely claim the lips, so the lips keep the neighbouring vowel's shape, as in real speech.
"""
from __future__ import annotations

import numpy as np

VISEME_NAMES: tuple[str, ...] = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR",
                                 "aa", "E", "ih", "oh", "ou")

#: ARPAbet phone -> viseme, or a sequence of (viseme, share of the phone's duration).
PHONE_VISEMES: dict = {
    "P": "PP", "B": "PP", "M": "PP", "F": "FF", "V": "FF", "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD", "K": "kk", "G": "kk", "NG": "kk", "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH",
    "S": "SS", "Z": "SS", "N": "nn", "L": "nn", "R": "RR", "ER": "RR", "W": "ou", "Y": "ih",
    "AA": "aa", "AE": "aa", "AH": "aa", "AO": "oh", "EH": "E", "IH": "ih", "IY": "ih", "UH": "ou", "UW": "ou",
    "AW": (("aa", 0.55), ("ou", 0.45)), "AY": (("aa", 0.55), ("ih", 0.45)), "EY": (("E", 0.6), ("ih", 0.4)),
    "OW": (("oh", 0.6), ("ou", 0.4)), "OY": (("oh", 0.55), ("ih", 0.45)),
    "sil": "sil",
}

#: Phones whose lips must close completely (checked on the mesh).
BILABIALS = frozenset({"P", "B", "M"})
#: Open vowels (low vowels and diphthongs starting low): the jaw must open.
OPEN_VOWELS = frozenset({"AA", "AE", "AO", "AW", "AY"})
#: Rounded back vowels: the lips must round.
ROUNDED_VOWELS = frozenset({"UW", "OW"})

# Per viseme: (dominance, look-ahead seconds, release seconds).
_TIMING = {
    "sil": (0.4, 0.08, 0.08),
    "PP": (2.0, 0.05, 0.03), "FF": (2.5, 0.06, 0.04), "TH": (1.2, 0.05, 0.04), "CH": (1.5, 0.06, 0.05),
    "SS": (1.0, 0.05, 0.04), "RR": (1.0, 0.06, 0.05), "DD": (0.35, 0.04, 0.04), "kk": (0.35, 0.04, 0.04),
    "nn": (0.35, 0.04, 0.04),
    "aa": (1.0, 0.06, 0.06), "E": (1.0, 0.06, 0.06), "ih": (1.0, 0.06, 0.06), "oh": (1.2, 0.07, 0.06),
    "ou": (1.6, 0.08, 0.06),
}
#: Shares of a phone spent ramping in and out inside it (the rest is the held target).
_INNER_RAMP = 0.2
#: Gaussian smoothing of the viseme curves (seconds), below what the eye sees as lag.
_SMOOTH_S = 0.012


def phone_to_visemes(phone: str, next_phone: str | None = None) -> tuple:
    """((viseme, share), ...) for one ARPAbet phone; unknown phones read as silence."""
    if phone == "HH":
        # HH is breath through a mouth already shaped for the next sound.
        target = PHONE_VISEMES.get(next_phone or "sil", "sil") if next_phone not in (None, "HH") else "sil"
        mapped = target if isinstance(target, str) else target[0][0]  # a diphthong's onset shape
    else:
        mapped = PHONE_VISEMES.get(phone, "sil")
    if isinstance(mapped, str):
        return ((mapped, 1.0),)
    return tuple(mapped)


def viseme_segments(phones) -> list:
    """[(viseme, start s, end s, phone)] from PhoneSegment-like items (phone, start, end);
    consecutive sounds with the same viseme are one segment."""
    segments = []
    for index, seg in enumerate(phones):
        following = phones[index + 1].phone if index + 1 < len(phones) else None
        cursor = seg.start
        parts = phone_to_visemes(seg.phone, following)
        if seg.phone == "HH" and parts[0][0] == "sil":
            continue
        for viseme, share in parts:
            end = cursor + share * (seg.end - seg.start)
            if segments and segments[-1][0] == viseme and abs(segments[-1][2] - cursor) < 1e-9:
                # One held shape, not two that ramp out and back in ("hoping": HH takes OW's "oh").
                segments[-1] = (viseme, segments[-1][1], end, segments[-1][3])
            else:
                segments.append((viseme, cursor, end, seg.phone))
            cursor = end
    return segments


def _ramp(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """Smoothstep from 0 at ``start`` to 1 at ``end`` (a step if they coincide)."""
    if end <= start:
        return (t >= start).astype(np.float64)
    x = np.clip((t - start) / (end - start), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def activation(times: np.ndarray, start: float, end: float, lead: float, lag: float) -> np.ndarray:
    """(T,) trapezoid: 0 before ``start - lead``, 1 over the phone's middle, 0 after ``end + lag``."""
    inner = _INNER_RAMP * (end - start)
    return _ramp(times, start - lead, start + inner) * (1.0 - _ramp(times, end - inner, end + lag))


def viseme_curves(phones, frame_count: int, fps: float) -> np.ndarray:
    """(15, T) float32 viseme weights in [0, 1] at frames k / fps; each frame sums to 1
    (what is not claimed by a sound is "sil", the mouth at rest).

    phones: PhoneSegment-like items (phone, start, end) tiling the clip.
    """
    times = np.arange(frame_count, dtype=np.float64) / fps
    claimed = np.zeros((len(VISEME_NAMES), frame_count))
    segments = viseme_segments(phones)
    for index, (viseme, start, end, _) in enumerate(segments):
        dominance, lead, lag = _TIMING[viseme]
        # A sound reaches at most halfway into its neighbours: a short vowel between two
        # strong consonants still gets its own moment (the "a" of "map").
        if index > 0 and segments[index - 1][0] != "sil":
            lead = min(lead, 0.5 * (segments[index - 1][2] - segments[index - 1][1]))
        if index + 1 < len(segments) and segments[index + 1][0] != "sil":
            lag = min(lag, 0.5 * (segments[index + 1][2] - segments[index + 1][1]))
        claimed[VISEME_NAMES.index(viseme)] += dominance * activation(times, start, end, lead, lag)
    total = claimed.sum(axis=0)
    # Each frame's shape is the dominance-weighted share of the sounds active there; silence is
    # one of them (the mouth at rest), so pauses pull toward rest but the weak tongue
    # consonants between two words do not.
    curves = np.where(total > 0, claimed / np.where(total > 0, total, 1.0), 0.0)
    curves[0] = np.where(total > 0, curves[0], 1.0)
    sigma = _SMOOTH_S * fps
    if sigma > 0.3:
        from scipy.ndimage import gaussian_filter1d
        curves = gaussian_filter1d(curves, sigma, axis=1, mode="nearest")
    curves[0] = np.clip(1.0 - curves[1:].sum(axis=0), 0.0, 1.0)
    return np.clip(curves, 0.0, 1.0).astype(np.float32)


def closure_curve(phones, frame_count: int, fps: float, lead: float = 0.04, lag: float = 0.02) -> np.ndarray:
    """(T,) float64 in [0, 1]: how fully the lips must be shut (1 through every p/b/m, ramping in
    up to ``lead`` seconds before it -- the look-ahead -- and out up to ``lag`` after it).

    The ramps take at most half of the neighbouring phone, so a short vowel between two
    closures ("map", "Bob") still opens.
    """
    times = np.arange(frame_count, dtype=np.float64) / fps
    closure = np.zeros(frame_count)
    for index, seg in enumerate(phones):
        if seg.phone not in BILABIALS:
            continue
        before = phones[index - 1] if index > 0 else None
        after = phones[index + 1] if index + 1 < len(phones) else None
        ramp_in = lead if before is None or before.phone in BILABIALS else min(lead, 0.5 * (before.end - before.start))
        ramp_out = lag if after is None or after.phone in BILABIALS else min(lag, 0.5 * (after.end - after.start))
        held = _ramp(times, seg.start - ramp_in, seg.start) * (1.0 - _ramp(times, seg.end, seg.end + ramp_out))
        middle = int(round((seg.start + seg.end) / 2 * fps))
        if 0 <= middle < frame_count:
            held[middle] = 1.0  # the closure frame is shut even for a phone shorter than a frame
        closure = np.maximum(closure, held)
    return closure
