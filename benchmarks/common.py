"""Shared helpers for the benchmarks: data paths, text normalisation, WER, machine facts, timing
and the sectioned ``benchmarks/RESULTS.md``.

Each benchmark rewrites only its own section of RESULTS.md, between
``<!-- section: NAME -->`` and ``<!-- /section -->``; the other sections are kept as they are.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
DATA_DIR = REPO_DIR.parent / "shared" / "data"
WORK_DIR = BENCH_DIR / "work"
"""Scratch files (generated audio, outputs); gitignored."""
FIGURES_DIR = BENCH_DIR / "figures"
"""Figures that took hours to measure (training runs), kept in the repository as JSON so that
RESULTS.md can be rebuilt on any checkout."""
RESULTS = BENCH_DIR / "RESULTS.md"
PYTHON = sys.executable
ONSEI_CLI = str(Path(PYTHON).with_name("onsei"))
SAMPLE_RATE = 16000

_LOAD_AT_START = os.getloadavg()[0]
"""1-minute load average when the benchmark started (other work on the machine skews timings)."""


# --- data -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: Path
    duration: float
    text: str
    language: str | None = None


def read_manifest(path: Path) -> list[Utterance]:
    """Read a JSON Lines manifest; audio paths are relative to the manifest's folder."""
    items = []
    with open(path, encoding="utf-8") as file:
        for line in file:
            if not line.strip():
                continue
            row = json.loads(line)
            items.append(
                Utterance(
                    id=row["id"],
                    audio=path.parent / row["audio"],
                    duration=float(row["duration"]),
                    text=row["text"],
                    language=row.get("language"),
                )
            )
    return items


def load_16k(path: Path) -> np.ndarray:
    """Decode any file to 16 kHz mono float32 (with onsei's decoder, used only to build inputs)."""
    from onsei.audio import load_audio

    return load_audio(path)


def write_wav(path: Path, audio: np.ndarray) -> Path:
    """Write a 16 kHz mono 16-bit PCM WAV."""
    import soundfile

    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
    return path


# --- text -----------------------------------------------------------------------------------


def normalise(text: str) -> str:
    """onsei's ``whisper`` normaliser: Whisper's English normaliser, digits spelled out one
    word per digit (see ``onsei.text.normalizers``)."""
    from onsei.text.normalizers import normalize_whisper

    return normalize_whisper(text)


def corpus_wer(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus word error rate (errors / reference words) of normalised texts, with jiwer."""
    import jiwer

    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True)]
    refs = [r if r else "<empty>" for r, _ in pairs]
    hyps = [h for _, h in pairs]
    return float(jiwer.wer(refs, hyps))


def word_count(text: str) -> int:
    return len(text.split())


# --- machine and versions -------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return float("nan")


def versions() -> dict[str, str]:
    names = ("onsei", "faster-whisper", "ctranslate2")
    return {name: metadata.version(name) for name in names}


def git_commit() -> str:
    """The repository's HEAD commit, and whether src/ has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_DIR), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}{' with uncommitted changes in src/' if dirty else ''}"


def seed_ctranslate2(seed: int) -> None:
    """Seed the sampling of models loaded after this call.

    CTranslate2 samples (Whisper's temperature fallback) with one random generator per worker
    thread, seeded from the global seed when that thread first samples; ``set_random_seed`` does
    not reset generators that exist already. So seed first, then load the models to compare.
    """
    import ctranslate2

    ctranslate2.set_random_seed(seed)


def header(command: str) -> str:
    """Markdown lines saying when, where, with what and how the section was measured."""
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    cores = os.cpu_count()
    v = ", ".join(f"{name} {version}" for name, version in versions().items())
    load = f"{_LOAD_AT_START:.2f} at start, {os.getloadavg()[0]:.2f} at end"
    return (
        f"- Date: {now}\n"
        f"- Machine: {cpu_model()}, {cores} cores, {ram_gib():.1f} GiB RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}; "
        f"1-minute load average {load}\n"
        f"- Versions: {v}; onsei commit {git_commit()}\n"
        f"- Command: `{command}`\n"
    )


def this_command() -> str:
    """The command that ran this script, relative to the repository."""
    script = Path(sys.argv[0]).resolve()
    try:
        script_text = str(script.relative_to(REPO_DIR))
    except ValueError:
        script_text = str(script)
    return " ".join([".venv/bin/python", script_text, *map(shlex.quote, sys.argv[1:])])


# --- timing ---------------------------------------------------------------------------------


def today() -> str:
    """Local date and time to the minute, for the figures of a run."""
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def time_command(args: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall-clock seconds of one subprocess; raises if it fails."""
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(
            f"command failed ({result.returncode}): {shlex.join(args)}\n{result.stderr[-2000:]}"
        )
    return elapsed


def run_json_worker(command: Sequence[str], env: dict[str, str] | None = None) -> dict:
    """Run a benchmark's worker process; the JSON object on the last line of its output.
    Exits with the tail of its stderr if it fails."""
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        name = Path(command[1]).stem
        sys.exit(f"{name}: {shlex.join(command[2:])} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- RESULTS.md -----------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        cells = [str(cell).replace("|", "\\|").replace("\n", " ") for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


SECTION_ORDER = ("accuracy", "language_id", "overhead", "startup", "hallucination")


def write_section(name: str, body: str) -> None:
    """Replace (or add) section ``name`` of RESULTS.md, keeping every other section."""
    sections: dict[str, str] = {}
    if RESULTS.exists():
        text = RESULTS.read_text(encoding="utf-8")
        pattern = r"<!-- section: (\w+) -->\n(.*?)<!-- /section -->"
        for match in re.finditer(pattern, text, flags=re.S):
            sections[match.group(1)] = match.group(2)
    sections[name] = body.rstrip("\n") + "\n"
    ordered = [n for n in SECTION_ORDER if n in sections]
    ordered += sorted(n for n in sections if n not in SECTION_ORDER)
    parts = [
        "# onsei benchmarks: results\n\n"
        "Written by the scripts in this folder (see README.md); each script rewrites only its own\n"
        "section. Numbers are what was measured on the machine named in each section.\n"
    ]
    for n in ordered:
        parts.append(f"\n<!-- section: {n} -->\n{sections[n]}<!-- /section -->\n")
    RESULTS.write_text("".join(parts), encoding="utf-8")


def fmt_pct(value: float) -> str:
    return f"{100 * value:.1f} %"
