"""Start-up cost: a whole `onsei transcribe` of a 5-second clip, and what `import onsei.cli` loads.

The clip is the first 5 s of ../shared/data/clips/jfk/jfk.flac, resampled to a 16 kHz WAV in
benchmarks/work/. Timed as fresh subprocesses (wall clock, start to exit), alternating with the
plain faster-whisper script (benchmarks/fw_transcribe.py) on the same clip and options for
comparison, and with `onsei --help` (start-up without any model).

Usage: .venv/bin/python benchmarks/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import subprocess

import common
from common import DATA_DIR, ONSEI_CLI, PYTHON, SAMPLE_RATE, WORK_DIR

MODEL = "tiny.en"
HEAVY = (
    "numpy",
    "ctranslate2",
    "faster_whisper",
    "av",
    "soundfile",
    "tqdm",
    "torch",
    "onnxruntime",
    "tokenizers",
    "huggingface_hub",
    "jiwer",
)


def import_times() -> tuple[list[tuple[str, int, int]], int]:
    """``python -X importtime -c "import onsei.cli"``: (module, self us, cumulative us) rows."""
    result = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", "import onsei.cli"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        rows.append((name.rstrip(), int(self_us), int(cumulative_us)))
    total = sum(r[1] for r in rows)
    return rows, total


def main() -> None:
    from onsei.whisper.registry import resolve_whisper_model

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    source = DATA_DIR / "clips" / "jfk" / "jfk.flac"
    clip = common.write_wav(WORK_DIR / "clip5.wav", common.load_16k(source)[: 5 * SAMPLE_RATE])
    out = WORK_DIR / "startup"
    (out / "fw").mkdir(parents=True, exist_ok=True)
    model_dir = resolve_whisper_model(MODEL)
    sides = {
        "onsei transcribe": [
            ONSEI_CLI,
            "transcribe",
            str(clip),
            "--model",
            MODEL,
            "--verbose",
            "False",
            "-f",
            "txt",
            "-o",
            str(out / "onsei"),
            "--overwrite",
        ],
        "faster-whisper script": [
            PYTHON,
            str(common.BENCH_DIR / "fw_transcribe.py"),
            str(model_dir),
            str(clip),
            str(out / "fw" / "clip5.json"),
            "--language",
            "en",
            "--beam_size",
            "5",
            "--vad_filter",
            "True",
        ],
        "onsei --help": [ONSEI_CLI, "--help"],
    }
    for command in sides.values():
        common.time_command(command)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(args.runs):
        for name, command in sides.items():
            seconds = common.time_command(command)
            times[name].append(seconds)
            print(f"run {i + 1} {name}: {seconds:.3f} s", flush=True)
    text = (out / "onsei" / "clip5.txt").read_text(encoding="utf-8").strip()

    rows, total_us = import_times()
    heavy = sorted({r[0].strip().split(".")[0] for r in rows} & set(HEAVY))
    top = sorted(rows, key=lambda r: -r[2])[:12]
    for name, _self_us, cumulative_us in top:
        print(f"{cumulative_us / 1000:8.1f} ms cumulative  {name}")
    print("heavy libraries imported:", heavy or "none")
    common.write_section("startup", report(args.runs, times, text, top, total_us, heavy))
    print(f"wrote {common.RESULTS}")


def report(
    runs: int,
    times: dict[str, list[float]],
    text: str,
    top: list[tuple[str, int, int]],
    total_us: int,
    heavy: list[str],
) -> str:
    table = common.markdown_table(
        ["command", f"median of {runs} s", "min s", "max s"],
        [
            (name, f"{common.median(t):.2f}", f"{min(t):.2f}", f"{max(t):.2f}")
            for name, t in times.items()
        ],
    )
    imports = common.markdown_table(
        ["module (indent = import depth)", "self ms", "cumulative ms"],
        [(f"`{name}`", f"{s / 1000:.1f}", f"{c / 1000:.1f}") for name, s, c in top],
    )
    heavy_text = ", ".join(heavy) if heavy else "none"
    return (
        "## Start-up: a 5-second clip end to end, and `import onsei.cli`\n\n"
        + common.header(common.this_command())
        + "- Clip: first 5 s of `../shared/data/clips/jfk/jfk.flac`, resampled to 16 kHz, "
        f"written to `benchmarks/work/clip5.wav`; onsei's transcript: {text!r}.\n"
        "- `onsei transcribe clip5.wav --model tiny.en --verbose False -f txt -o DIR --overwrite` "
        "(defaults otherwise: vad_filter True, language detection skipped for tiny.en). For "
        "comparison, the plain faster-whisper script with the same model directory, int8, "
        "language en, beam 5, vad_filter True; and `onsei --help`.\n"
        f"- Wall clock of fresh subprocesses, start to exit, median of {runs} runs each "
        "(alternating, after one untimed warm-up of each). Target: onsei transcribe < 3 s.\n\n"
        + table
        + '\n`python -X importtime -c "import onsei.cli"`: '
        f"{total_us / 1000:.1f} ms in total (sum of self times, one run); largest cumulative "
        f"costs:\n\n"
        + imports
        + f"\nHeavy libraries among those imports ({', '.join(HEAVY)}): **{heavy_text}**.\n"
    )


if __name__ == "__main__":
    main()
