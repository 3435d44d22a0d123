"""End-to-end wall time of the onsei CLI vs a plain faster-whisper script on a 10-minute recording.

The recording is real speech from ../shared/data joined with 0.3 s gaps: the 25 clips, the 130
AN4 test utterances, the English Leopard clip, then AN4 training utterances until it reaches
10 minutes; written as a 16 kHz 16-bit WAV to benchmarks/work/long.wav.

Each run is a fresh subprocess, timed from start to exit:
  (a) onsei transcribe long.wav --model M --verbose False -f json -o DIR --overwrite
      --vad_filter False --language en
  (b) python benchmarks/fw_transcribe.py MODEL_DIR long.wav OUT.json --language en --beam_size 5
      --vad_filter False   (faster-whisper only; the model directory is resolved beforehand)
a and b alternate; one untimed warm-up of each on a 30 s excerpt comes first.

Usage: .venv/bin/python benchmarks/overhead.py [--models tiny.en base] [--runs 5 3]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import common
import numpy as np
from common import DATA_DIR, ONSEI_CLI, PYTHON, SAMPLE_RATE, WORK_DIR

TARGET_SECONDS = 600.0
GAP_SECONDS = 0.3
FW_SCRIPT = str(common.BENCH_DIR / "fw_transcribe.py")


SIDES = ("onsei", "faster-whisper")
SEED = 1234


@dataclass
class Result:
    model: str
    runs: int
    times: dict[str, list[float]]
    outputs: dict[str, list[list[tuple[float, float, str]]]]
    """(start, end, text) of every segment, per side and run."""
    seeded_identical: bool
    """In one process, with the same CTranslate2 seed: identical segments on both sides?"""

    def pairs_identical(self) -> int:
        return sum(a == b for a, b in zip(*self.outputs.values(), strict=True))

    def distinct(self, side: str) -> int:
        return len({tuple(run) for run in self.outputs[side]})


def build_recording(path: Path) -> tuple[float, int]:
    """Write the long recording; return its duration in seconds and the number of pieces."""
    sources = common.read_manifest(DATA_DIR / "clips" / "manifest.jsonl")
    sources += common.read_manifest(DATA_DIR / "an4" / "test.jsonl")
    sources += [
        u
        for u in common.read_manifest(DATA_DIR / "multilingual" / "manifest.jsonl")
        if u.language == "en"
    ]
    sources += common.read_manifest(DATA_DIR / "an4" / "train.jsonl")
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    pieces: list[np.ndarray] = []
    total = 0
    for utt in sources:
        if total >= TARGET_SECONDS * SAMPLE_RATE:
            break
        audio = common.load_16k(utt.audio)
        pieces += [audio, gap]
        total += len(audio) + len(gap)
    common.write_wav(path, np.concatenate(pieces))
    return total / SAMPLE_RATE, len(pieces) // 2


def commands(model: str, model_dir: Path, audio: Path, out: Path) -> dict[str, list[str]]:
    return {
        "onsei": [
            ONSEI_CLI,
            "transcribe",
            str(audio),
            "--model",
            model,
            "--verbose",
            "False",
            "-f",
            "json",
            "-o",
            str(out / "onsei"),
            "--overwrite",
            "--vad_filter",
            "False",
            "--language",
            "en",
        ],
        "faster-whisper": [
            PYTHON,
            FW_SCRIPT,
            str(model_dir),
            str(audio),
            str(out / "fw" / f"{audio.stem}.json"),
            "--language",
            "en",
            "--beam_size",
            "5",
            "--vad_filter",
            "False",
        ],
    }


def main() -> None:
    from onsei.whisper.registry import resolve_whisper_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--runs", nargs="+", type=int, default=[5, 3], help="runs per model")
    args = parser.parse_args()
    # runs per model: the i-th number for the i-th model, the last number for the rest
    runs = {m: args.runs[min(i, len(args.runs) - 1)] for i, m in enumerate(args.models)}

    long_wav = WORK_DIR / "long.wav"
    duration, pieces = build_recording(long_wav)
    short_wav = common.write_wav(
        WORK_DIR / "warmup.wav", common.load_16k(long_wav)[: 30 * SAMPLE_RATE]
    )
    print(f"{long_wav}: {duration:.1f} s from {pieces} utterances", flush=True)

    results = []
    for model in args.models:
        model_dir = resolve_whisper_model(model)
        out = WORK_DIR / "overhead" / model
        (out / "fw").mkdir(parents=True, exist_ok=True)
        for args_ in commands(model, model_dir, short_wav, out).values():
            common.time_command(args_)  # warm-up: page cache, first-import bytecode
        times: dict[str, list[float]] = {side: [] for side in SIDES}
        outputs: dict[str, list[list[tuple[float, float, str]]]] = {side: [] for side in SIDES}
        outputs_json = {
            "onsei": out / "onsei" / "long.json",
            "faster-whisper": out / "fw" / "long.json",
        }
        for i in range(runs[model]):
            for side, args_ in commands(model, model_dir, long_wav, out).items():
                outputs_json[side].unlink(missing_ok=True)
                seconds = common.time_command(args_)
                times[side].append(seconds)
                outputs[side].append(read_segments(outputs_json[side]))
                print(f"{model} run {i + 1} {side}: {seconds:.2f} s", flush=True)
        seeded = seeded_identical(model, long_wav)
        result = Result(model, runs[model], times, outputs, seeded)
        results.append(result)
        print(
            f"{model}: identical a/b pairs {result.pairs_identical()}/{runs[model]}, distinct "
            f"outputs onsei {result.distinct('onsei')} fw {result.distinct('faster-whisper')}, "
            f"identical with the same seed in one process: {seeded}",
            flush=True,
        )

    common.write_section("overhead", report(results, duration, pieces))
    print(f"wrote {common.RESULTS}")


def read_segments(path: Path) -> list[tuple[float, float, str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [(s["start"], s["end"], s["text"]) for s in data["segments"]]


def seeded_identical(model: str, audio: Path) -> bool:
    """Both sides in this process, same options, each model loaded right after seeding."""
    import faster_whisper

    import onsei
    from onsei.whisper.registry import resolve_whisper_model

    options = {"language": "en", "beam_size": 5, "vad_filter": False}
    common.seed_ctranslate2(SEED)
    ours = onsei.load_model(model, device="cpu", compute_type="int8", threads=0)
    a = [(s.start, s.end, s.text) for s in ours.transcribe(audio, **options).segments]
    del ours
    common.seed_ctranslate2(SEED)
    peer = faster_whisper.WhisperModel(
        str(resolve_whisper_model(model)), device="cpu", compute_type="int8"
    )
    segments, _ = peer.transcribe(str(audio), **options)
    b = [(s.start, s.end, s.text) for s in segments]
    return a == b


def report(results: list[Result], duration: float, pieces: int) -> str:
    rows = []
    for r in results:
        onsei_median = common.median(r.times["onsei"])
        fw_median = common.median(r.times["faster-whisper"])
        rows.append(
            (
                r.model,
                r.runs,
                f"{onsei_median:.2f}",
                f"{fw_median:.2f}",
                f"{100 * (onsei_median / fw_median - 1):+.1f} %",
                f"{onsei_median / duration:.3f}",
                f"{fw_median / duration:.3f}",
                f"{r.pairs_identical()}/{r.runs}",
                f"{r.distinct('onsei')} / {r.distinct('faster-whisper')}",
                "yes" if r.seeded_identical else "**no**",
                " ".join(f"{t:.1f}" for t in r.times["onsei"]),
                " ".join(f"{t:.1f}" for t in r.times["faster-whisper"]),
            )
        )
    table = common.markdown_table(
        [
            "model (int8)",
            "runs each",
            "onsei median s",
            "faster-whisper median s",
            "overhead",
            "RTF onsei",
            "RTF faster-whisper",
            "a = b (per pair)",
            "distinct outputs a / b",
            "a = b, same seed",
            "onsei runs s",
            "faster-whisper runs s",
        ],
        rows,
    )
    return (
        "## Overhead: onsei CLI vs faster-whisper alone, end to end\n\n"
        + common.header(common.this_command())
        + f"- Audio: `benchmarks/work/long.wav`, {duration:.1f} s, 16 kHz mono 16-bit WAV, "
        f"{pieces} real utterances from ../shared/data (clips, AN4 test, the English Leopard "
        "clip, then AN4 train) joined with 0.3 s of silence.\n"
        "- (a) `onsei transcribe long.wav --model M --verbose False -f json -o DIR --overwrite "
        "--vad_filter False --language en` (other options at their defaults: beam 5, best_of 5, "
        "temperature fallback, condition_on_previous_text True).\n"
        "- (b) `python benchmarks/fw_transcribe.py MODEL_DIR long.wav OUT.json --language en "
        "--beam_size 5 --vad_filter False`: imports only faster_whisper, loads the same "
        "directory with int8, consumes the segments, writes JSON.\n"
        "- Wall clock of each subprocess from start to exit (Python start-up, imports, model "
        "load, audio decoding, decoding, writing). a and b alternate; one untimed warm-up of "
        "each on a 30 s excerpt first. Overhead = median(a) / median(b) - 1 (target <= 5 %). "
        "RTF = median wall time / audio duration.\n"
        "- Outputs compared as (start, end, text) of every segment. `a = b (per pair)`: runs "
        "where onsei's output equals faster-whisper's of the same round; `distinct outputs`: "
        "different outputs among each side's runs. Windows that fail the thresholds are "
        "re-decoded by sampling at temperature > 0, with CTranslate2's random generator, which "
        "neither command seeds; so outputs, and with them decoding time, can vary from run to "
        "run on either side. `a = b, same seed`: after the timed runs, one in-process check: "
        f"`ctranslate2.set_random_seed({SEED})`, load and run onsei's API; the same seed, load "
        "and run faster-whisper; same options, same file: identical segments? (CTranslate2 "
        "has one sampler per worker thread, seeded at its first use, so each model is loaded "
        "after seeding.)\n\n" + table
    )


if __name__ == "__main__":
    main()
