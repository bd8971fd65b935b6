"""Speech input: every common WAV layout reads to the same 16 kHz mono signal; transcripts are
normalised; bad input gets a typed error or an honest fallback that the report states."""
import io
import struct
import wave

import numpy as np
import pytest
from scipy.io import wavfile

import _speech_truth as truth
from pyfacerig import speak
from pyfacerig.animate.speech import align as align_module
from pyfacerig.animate.speech import espeak as espeak_module
from pyfacerig.animate.speech import phones as phones_module
from pyfacerig.animate.speech.align import align
from pyfacerig.animate.speech.audio import SAMPLE_RATE, read_audio
from pyfacerig.animate.speech.espeak import synthesize_wav
from pyfacerig.animate.speech.text import normalise_transcript, number_words
from pyfacerig.errors import AudioReadError, InvalidInputError, SpeechSynthesisError, TranscriptError

needs_espeak = pytest.mark.skipif(not truth.available(), reason="libespeak-ng.so.1 (Debian espeak-ng) is not installed")
TEXT = "Bob bought a big map of Moab."


@pytest.fixture(scope="module")
def utterance():
    return truth.synthesize(TEXT)


def wav_bytes(samples, rate):
    buffer = io.BytesIO()
    wavfile.write(buffer, rate, samples)
    return buffer.getvalue()


def pcm24_wav(samples_int16, rate):
    """A 24-bit PCM WAV written with the stdlib (scipy cannot write 24-bit)."""
    wide = samples_int16.astype(np.int32) << 8
    raw = np.stack([(wide >> 0) & 255, (wide >> 8) & 255, (wide >> 16) & 255], axis=1).astype(np.uint8).tobytes()
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(3)
        out.setframerate(rate)
        out.writeframes(raw)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- formats
@needs_espeak
def test_every_sample_format_reads_to_the_same_signal(utterance, tmp_path):
    x = utterance.samples
    reference = read_audio(x, utterance.rate).samples
    floats = x.astype(np.float32) / 32768.0
    variants = {
        "int16": wav_bytes(x, utterance.rate),
        "int32": wav_bytes(x.astype(np.int32) << 16, utterance.rate),
        "uint8": wav_bytes(((x.astype(np.int32) >> 8) + 128).astype(np.uint8), utterance.rate),
        "float32": wav_bytes(floats, utterance.rate),
        "float64": wav_bytes(floats.astype(np.float64), utterance.rate),
        "stereo": wav_bytes(np.stack([x, x], axis=1), utterance.rate),
        "24-bit": pcm24_wav(x, utterance.rate),
    }
    for name, data in variants.items():
        path = tmp_path / f"{name}.wav"
        path.write_bytes(data)
        audio = read_audio(path)
        assert audio.rate == SAMPLE_RATE and audio.samples.dtype == np.float32
        tolerance = 0.01 if name == "uint8" else 1e-3          # 8-bit keeps 8 bits
        assert np.abs(audio.samples - reference).max() <= tolerance, name


@needs_espeak
def test_other_sample_rates_give_the_same_phones(utterance):
    from scipy.signal import resample_poly
    base = align(read_audio(utterance.samples, utterance.rate), normalise_transcript(TEXT))
    for rate, up, down in ((44100, 2, 1), (48000, 320, 147), (16000, 320, 441)):
        resampled = resample_poly(utterance.samples.astype(np.float64), up, down)
        other = align(read_audio(np.round(resampled).astype(np.int16), rate), normalise_transcript(TEXT))
        assert [p.phone for p in other.phones if p.phone != "sil"] == [p.phone for p in base.phones if p.phone != "sil"]
        shifts = [abs(a.start - b.start) for a, b in zip(base.phones, other.phones)]
        assert np.median(shifts) <= 0.011, rate


def test_unreadable_audio_raises_audio_read_error(tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(AudioReadError, match="no such audio file"):
        read_audio(missing)
    (tmp_path / "song.mp3").write_bytes(b"ID3\x03\x00" + bytes(200))
    with pytest.raises(AudioReadError, match="not a WAV file"):
        read_audio(tmp_path / "song.mp3")
    good = wav_bytes(np.zeros(16000, np.int16), 16000)
    (tmp_path / "cut.wav").write_bytes(good[:30])
    with pytest.raises(AudioReadError):
        read_audio(tmp_path / "cut.wav")
    with pytest.raises(AudioReadError, match="sample_rate"):
        read_audio(np.zeros(16000, np.int16))
    with pytest.raises(AudioReadError, match="NaN"):
        read_audio(np.full(16000, np.nan, np.float32), 16000)
    with pytest.raises(AudioReadError, match="ms of audio"):
        read_audio(np.zeros(100, np.int16), 16000)
    with pytest.raises(AudioReadError, match="sample rate"):
        read_audio(np.zeros(16000, np.int16), 4000)
    with pytest.raises(AudioReadError, match="unsupported sample format"):
        read_audio(np.zeros(16000, np.complex64), 16000)
    with pytest.raises(AudioReadError, match="channels"):
        read_audio(np.zeros((2, 16000), np.int16), 16000)
    with pytest.raises(AudioReadError):
        read_audio(12345)


def test_a_wav_with_an_unsupported_sample_width_is_refused(tmp_path):
    # A RIFF header claiming 40-bit samples: neither reader accepts it.
    data = bytes(50)
    header = (b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 80000, 5, 40)
              + b"data" + struct.pack("<I", len(data)) + data)
    with pytest.raises(AudioReadError):
        read_audio(header)


# ----------------------------------------------------------------------------- fallbacks
def test_silence_only_gives_a_neutral_take_and_says_so():
    take = speak(np.zeros(32000, np.int16), None, text="hello there", sample_rate=16000)
    assert take.report["method"] == "silent"
    assert any("no speech" in note for note in take.report["notes"])
    assert np.all(take.weights == 0) and take.frame_count == 121


def test_faint_hiss_only_is_silence_too():
    hiss = np.random.default_rng(0).normal(0, 20, 48000).astype(np.int16)   # about -64 dBFS
    assert speak(hiss, None, sample_rate=48000).report["method"] == "silent"


@needs_espeak
def test_a_transcript_that_does_not_match_falls_back_to_recognition_and_says_so(utterance):
    for wrong in ("Please move the blue boat to the pool by noon.", "hello"):
        take = speak(utterance.samples, None, text=wrong, sample_rate=utterance.rate)
        assert take.report["method"] == "recognised", wrong
        assert any("match" in note for note in take.report["notes"]), take.report["notes"]
        assert take.report["alignment_score_per_frame"] is None
    right = speak(utterance.samples, None, text=TEXT, sample_rate=utterance.rate)
    assert right.report["method"] == "forced" and -45.0 < right.report["alignment_score_per_frame"] < 0


@needs_espeak
def test_words_missing_from_the_dictionary_get_a_pronunciation_and_a_note(monkeypatch):
    text = "Zorblax met Quibbleton."
    utt = truth.synthesize(text)
    take = speak(utt.samples, None, text=text, sample_rate=utt.rate)
    assert take.report["method"] == "forced"
    notes = " ".join(take.report["notes"])
    assert "'zorblax' is not in the dictionary" in notes and "espeak-ng" in notes
    # Without espeak-ng the spelling rules give one.
    monkeypatch.setattr(phones_module.shutil, "which", lambda name: None)
    align_module._DECODERS.clear()      # a fresh dictionary, without the words added above
    take = speak(utt.samples, None, text="Flumbrix met Quibbleton.", sample_rate=utt.rate)
    assert "'flumbrix' is not in the dictionary" in " ".join(take.report["notes"])
    assert "spelling rules" in " ".join(take.report["notes"])


def test_transcripts_are_normalised_to_dictionary_words():
    assert normalise_transcript("Hello, World!  It's 42 -- and 3.5% of 1,200.") == [
        "hello", "world", "it's", "forty", "two", "and", "three", "point", "five", "percent", "of",
        "one", "thousand", "two", "hundred"]
    assert normalise_transcript("The 3rd of May, 1984; café & co.") == [
        "the", "third", "of", "may", "nineteen", "eighty", "four", "cafe", "and", "co"]
    assert number_words(1_000_017) == ["one", "million", "seventeen"]


def test_an_empty_or_non_text_transcript_is_a_typed_error():
    for bad in ("", "  ...!?  ", 42):
        with pytest.raises(TranscriptError):
            normalise_transcript(bad)
    with pytest.raises(TranscriptError):
        speak(np.zeros(16000, np.int16), None, text="?!", sample_rate=16000)


def test_bad_fps_and_avatars_are_typed_errors(tmp_path):
    with pytest.raises(InvalidInputError, match="fps"):
        speak(np.zeros(16000, np.int16), None, sample_rate=16000, fps=0)
    with pytest.raises(InvalidInputError, match="no such avatar"):
        speak(np.zeros(16000, np.int16), tmp_path / "none.glb", sample_rate=16000)
    (tmp_path / "bad.glb").write_bytes(b"glTF" + bytes(40))
    with pytest.raises(InvalidInputError, match="bad.glb"):
        speak(np.zeros(16000, np.int16), tmp_path / "bad.glb", sample_rate=16000)
    with pytest.raises(InvalidInputError):
        speak(np.zeros(16000, np.int16), object(), sample_rate=16000)


@needs_espeak
def test_the_same_input_gives_an_identical_take(utterance):
    first = speak(utterance.samples, None, text=TEXT, sample_rate=utterance.rate)
    speak(truth.synthesize("She sells sea shells.").samples, None, text="She sells sea shells.", sample_rate=utterance.rate)
    second = speak(utterance.samples, None, text=TEXT, sample_rate=utterance.rate)
    assert first.weights.tobytes() == second.weights.tobytes()
    assert first.report["phones"] == second.report["phones"]


# ----------------------------------------------------------------------------- espeak-ng
def test_missing_espeak_ng_is_a_clear_typed_error(monkeypatch, tmp_path):
    monkeypatch.setattr(espeak_module.shutil, "which", lambda name: None)
    with pytest.raises(SpeechSynthesisError, match="apt-get install espeak-ng"):
        synthesize_wav("hello", tmp_path / "line.wav")
    assert list(tmp_path.iterdir()) == []


@needs_espeak
def test_synthesized_lines_starting_with_a_dash_are_spoken_not_parsed(tmp_path):
    path = synthesize_wav("-v is not an option here", tmp_path / "line.wav")
    audio = read_audio(path)
    assert audio.duration > 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["line.wav"]


@needs_espeak
@pytest.mark.skipif(__import__("shutil").which("sox") is None, reason="sox (Debian sox) is not installed")
def test_wavs_written_by_sox_read_like_ours(utterance, tmp_path):
    """sox writes WAVE_FORMAT_EXTENSIBLE headers for 24-bit and multi-channel audio, and real
    float WAVs: an independent writer for the layouts studios hand over."""
    import subprocess
    source = tmp_path / "source.wav"
    source.write_bytes(wav_bytes(utterance.samples, utterance.rate))
    reference = read_audio(source).samples
    for name, options in {"ext24_stereo_44k": ["-b", "24", "-c", "2", "-r", "44100"],
                          "float32_48k": ["-e", "floating-point", "-b", "32", "-r", "48000"],
                          "u8_11k": ["-e", "unsigned-integer", "-b", "8", "-r", "11025"]}.items():
        out = tmp_path / f"{name}.wav"
        subprocess.run(["sox", str(source), *options, str(out)], check=True, capture_output=True)
        audio = read_audio(out)
        assert audio.source_channels == (2 if "stereo" in name else 1)
        n = min(len(audio.samples), len(reference))
        if name.startswith("u8"):
            # 11 kHz keeps nothing above 5.5 kHz: compare loudness, not samples
            assert abs(audio.duration - len(reference) / SAMPLE_RATE) < 0.01
            continue
        correlation = np.corrcoef(audio.samples[:n], reference[:n])[0, 1]
        assert correlation > 0.99, name
