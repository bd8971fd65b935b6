"""Phone timing against speech whose phone boundaries are known exactly.

The truth is espeak-ng's own phoneme events (tests/_speech_truth.py): the synthesiser reports
the output sample where it starts each phoneme.  Our phones (ARPAbet) are matched to espeak's
(mapped to ARPAbet) by an edit-distance alignment of the two label sequences; every matched
phone's start, except the utterance's first, is a boundary we compare.
"""
import numpy as np
import pytest

import _speech_truth as truth
from pyfacerig.animate.speech.align import align
from pyfacerig.animate.speech.audio import read_audio
from pyfacerig.animate.speech.phones import espeak_phoneme_to_arpabet
from pyfacerig.animate.speech.text import normalise_transcript

pytestmark = pytest.mark.skipif(not truth.available(), reason="libespeak-ng.so.1 (Debian espeak-ng) is not installed")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Bob bought a big map of Moab.",
    "Please move the blue boat to the pool by noon.",
    "My mother made apple pie in March.",
    "Who knew you would go home so soon?",
    "Father calls the dog from the top of the hill.",
    "She sells sea shells by the sea shore.",
    "We were hoping to visit Tom and Pam on Monday.",
    "Good morning, everyone, and welcome aboard.",
    "I would like a cup of coffee, please.",
    "Maybe we should meet at the museum tomorrow.",
    "The boy pulled the rope up to the roof.",
]


def matched_boundaries(truth_phones, our_phones):
    """[(truth start, our start)] of phones with the same ARPAbet label, paired by edit distance."""
    a = [(espeak_phoneme_to_arpabet(name) or ["?"])[0] for name, _ in truth_phones]
    b = [p.phone for p in our_phones]
    cost = np.zeros((len(a) + 1, len(b) + 1))
    cost[:, 0], cost[0, :] = np.arange(len(a) + 1), np.arange(len(b) + 1)
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1,
                             cost[i - 1, j - 1] + (0 if a[i - 1] == b[j - 1] else 1.5))
    pairs, i, j = [], len(a), len(b)
    while i > 0 and j > 0:
        if cost[i, j] == cost[i - 1, j - 1] + (0 if a[i - 1] == b[j - 1] else 1.5):
            if a[i - 1] == b[j - 1]:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return [(truth_phones[i][1], our_phones[j].start) for i, j in reversed(pairs) if i > 0], len(a)


@pytest.fixture(scope="module")
def utterances():
    return [(text, truth.synthesize(text)) for text in SENTENCES]


def test_forced_alignment_places_phone_boundaries_within_40_ms_median(utterances):
    errors, matched, total = [], 0, 0
    for text, utt in utterances:
        result = align(read_audio(utt.samples, utt.rate), normalise_transcript(text))
        assert result.method == "forced", (text, result.notes)
        spoken = [p for p in result.phones if p.phone != "sil"]
        pairs, count = matched_boundaries(utt.phones, spoken)
        matched, total = matched + len(pairs) + 1, total + count
        errors += [abs(ours - true) for true, ours in pairs]
    errors = np.array(errors)
    print(f"\n{len(errors)} boundaries: median {np.median(errors) * 1000:.1f} ms, "
          f"90th percentile {np.percentile(errors, 90) * 1000:.1f} ms, matched {matched}/{total} phones")
    assert matched / total >= 0.9
    assert np.median(errors) <= 0.040
    assert np.percentile(errors, 90) <= 0.080


def test_long_silence_before_and_after_shifts_the_phones_by_exactly_its_length(utterances):
    text, utt = utterances[1]
    plain = align(read_audio(utt.samples, utt.rate), normalise_transcript(text))
    lead = np.zeros(int(1.5 * utt.rate), np.int16)
    padded = np.concatenate([lead, utt.samples, np.zeros(utt.rate, np.int16)])
    shifted = align(read_audio(padded, utt.rate), normalise_transcript(text))
    ours = [p for p in plain.phones if p.phone != "sil"]
    theirs = [p for p in shifted.phones if p.phone != "sil"]
    assert [p.phone for p in ours] == [p.phone for p in theirs]
    offsets = np.array([b.start - a.start for a, b in zip(ours, theirs)])
    assert np.median(np.abs(offsets - 1.5)) <= 0.011
    assert shifted.phones[0].phone == "sil" and shifted.phones[0].end >= 1.4
    assert shifted.phones[-1].end == pytest.approx(len(padded) / utt.rate, abs=1e-3)


def test_the_same_clip_aligns_identically_whatever_was_decoded_before(utterances):
    text, utt = utterances[2]
    audio = read_audio(utt.samples, utt.rate)
    first = align(audio, normalise_transcript(text))
    for other_text, other in utterances[3:6]:
        align(read_audio(other.samples, other.rate), normalise_transcript(other_text))
    align(read_audio(utterances[0][1].samples, utterances[0][1].rate), None)
    again = align(audio, normalise_transcript(text))
    assert again.phones == first.phones and again.words == first.words


def test_without_a_transcript_phones_are_recognised_and_the_report_says_so(utterances):
    text, utt = utterances[0]
    result = align(read_audio(utt.samples, utt.rate), None)
    assert result.method == "recognised"
    assert any("no transcript" in note for note in result.notes)
    spoken = [p for p in result.phones if p.phone != "sil"]
    assert len(spoken) >= 15
    # recognised phones cover the speech: the last one ends near the end of the sound
    assert spoken[-1].end == pytest.approx(truth.synthesize(text).end, abs=0.3)


def test_phones_tile_the_clip_without_gaps_or_overlaps(utterances):
    text, utt = utterances[3]
    result = align(read_audio(utt.samples, utt.rate), normalise_transcript(text))
    starts = np.array([p.start for p in result.phones])
    ends = np.array([p.end for p in result.phones])
    assert starts[0] == 0.0 and ends[-1] == pytest.approx(len(utt.samples) / utt.rate, abs=1e-4)
    assert np.allclose(starts[1:], ends[:-1]) and np.all(ends > starts)
    assert [w for w, _, _ in result.words] == normalise_transcript(text)


@pytest.mark.parametrize("voice, words_per_minute, snr_db", [
    ("en-us", 120, None),        # slow
    ("en-us", 230, None),        # fast
    ("en-us+f3", 165, None),     # another voice (female variant)
    ("en", 165, None),           # British English speech through the US model
    ("en-us", 165, 10.0),        # white noise 10 dB below the speech
], ids=["slow", "fast", "female", "british", "noise10dB"])
def test_alignment_holds_for_other_rates_voices_and_noise(voice, words_per_minute, snr_db):
    rng = np.random.default_rng(7)
    errors = []
    for text in SENTENCES[:8]:
        utt = truth.synthesize(text, voice=voice, words_per_minute=words_per_minute)
        samples = utt.samples.astype(np.float64)
        if snr_db is not None:
            power = np.mean(samples[np.abs(samples) > 100] ** 2)
            samples += rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), len(samples))
        audio = read_audio(np.clip(samples, -32768, 32767).astype(np.int16), utt.rate)
        result = align(audio, normalise_transcript(text))
        assert result.method == "forced", (text, result.notes)
        pairs, _ = matched_boundaries(utt.phones, [p for p in result.phones if p.phone != "sil"])
        errors += [abs(ours - true) for true, ours in pairs]
    assert np.median(errors) <= 0.040
