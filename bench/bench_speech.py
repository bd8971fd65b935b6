"""Benchmark: lip sync throughput (seconds of speech per second of compute) on this CPU.

The speech is 12 espeak-ng sentences (about 28 s in all; needs Debian espeak-ng).  Timed, each
as the median over ``--repeats`` runs of the whole set, in the same run:

- ours, with transcript: ``pyfacerig.speak(samples, avatar, text)`` -- reading, resampling,
  forced alignment (two decoder passes), visemes, ARKit weights with the lip gap solved on
  the avatar's mesh;
- ours, without transcript: the same with phone recognition;
- baseline: pocketsphinx's own decoding of the same audio, one forced-alignment pass plus the
  phone pass (``set_align_text`` / ``set_alignment``), on the same 16 kHz PCM -- the floor any
  pocketsphinx-based lip sync pays.

Prints the real-time factors (audio seconds / compute seconds) and ours / baseline.  The
avatar is the bundled astronaut, built once first (not timed).  Writing the clip (glTF /
FBX) is timed separately: it is the video branch's write_take, which reads the whole glb.

    python bench/bench_speech.py [--repeats 5]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import _speech_truth as truth  # noqa: E402
from pyfacerig import build, speak  # noqa: E402
from pyfacerig.animate.speech import align as align_module  # noqa: E402
from pyfacerig.animate.speech import write_speech  # noqa: E402
from pyfacerig.animate.speech.audio import read_audio  # noqa: E402
from pyfacerig.animate.speech.text import normalise_transcript  # noqa: E402

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.", "Bob bought a big map of Moab.",
    "Please move the blue boat to the pool by noon.", "My mother made apple pie in March.",
    "Who knew you would go home so soon?", "Father calls the dog from the top of the hill.",
    "She sells sea shells by the sea shore.", "We were hoping to visit Tom and Pam on Monday.",
    "Good morning, everyone, and welcome aboard.", "I would like a cup of coffee, please.",
    "Maybe we should meet at the museum tomorrow.", "The boy pulled the rope up to the roof.",
]


def median_time(run, repeats):
    """(median wall seconds, median CPU seconds of this process) over ``repeats`` runs.  The CPU
    time is what the work costs on this CPU when other jobs share the cores."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not truth.available():
        sys.exit("bench_speech: needs libespeak-ng.so.1 (apt-get install espeak-ng)")

    folder = Path(tempfile.mkdtemp(prefix="bench_speech_"))
    example = Path(__file__).resolve().parents[1] / "pyfacerig" / "examples" / "astronaut.png"
    build(example, out=folder / "astronaut.glb")
    avatar = str(folder / "astronaut.glb")
    clips = [(text, truth.synthesize(text)) for text in SENTENCES]
    audio_seconds = sum(len(u.samples) / u.rate for _, u in clips)

    # Baseline input: the same audio at 16 kHz as the decoder reads it.
    pcms = [(normalise_transcript(text), align_module._padded_pcm(read_audio(u.samples, u.rate).samples))
            for text, u in clips]
    decoder = align_module._decoder("align")

    def baseline():
        for words, pcm in pcms:
            decoder.set_align_text(" ".join(words))
            align_module._run_pass(decoder, pcm)
            decoder.set_alignment()
            align_module._run_pass(decoder, pcm)
            decoder.get_alignment()

    def ours_with_text():
        for text, u in clips:
            speak(u.samples, avatar, text=text, sample_rate=u.rate)

    def ours_without_text():
        for _, u in clips:
            speak(u.samples, avatar, sample_rate=u.rate)

    ours_with_text(), ours_without_text(), baseline()        # load decoders and caches
    t_base = median_time(baseline, args.repeats)
    t_text = median_time(ours_with_text, args.repeats)
    t_free = median_time(ours_without_text, args.repeats)
    text, u = clips[0]
    take = speak(u.samples, avatar, text=text, sample_rate=u.rate)
    t_write = median_time(lambda: write_speech(take, avatar, folder / "line.glb", csv_path=folder / "line.csv"),
                          max(1, args.repeats // 2))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"speech: {len(clips)} espeak-ng sentences, {audio_seconds:.1f} s of audio; medians of {args.repeats} runs; "
          f"{os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"  {'':42s} {'wall s':>8s} {'x real time':>12s} {'CPU s':>8s} {'x real time':>12s}")
    for label, (wall, cpu) in (("baseline: pocketsphinx align (2 passes)", t_base),
                               ("ours: speak() with transcript", t_text),
                               ("ours: speak() without transcript", t_free)):
        print(f"  {label:42s} {wall:8.3f} {audio_seconds / wall:12.1f} {cpu:8.3f} {audio_seconds / cpu:12.1f}")
    print(f"  ours / baseline (with transcript): wall {t_text[0] / t_base[0]:.2f}, CPU {t_text[1] / t_base[1]:.2f}")
    print(f"  writing one {len(u.samples) / u.rate:.1f} s clip (.glb + .json + .csv): wall {t_write[0]:.3f} s, "
          f"CPU {t_write[1]:.3f} s (the video branch's write_take reads the whole glb)")


if __name__ == "__main__":
    main()
