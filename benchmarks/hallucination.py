"""Does Whisper invent words on non-speech? 30 s of silence, white noise and brown noise.

Signals (16 kHz, seed 0): digital silence (all zeros); white noise (Gaussian, std 0.1); brown
noise (cumulative sum of white noise, linear trend removed, scaled to peak 0.3). For tiny.en and
base, with vad_filter True, False and not given (each API's default), the words of onsei's Python
API and of faster-whisper called directly with the same options (everything else at defaults:
language detected for base). Also the onsei CLI with all its defaults, on the signals written as
16-bit WAV.

Usage: .venv/bin/python benchmarks/hallucination.py
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import common
import numpy as np
from common import ONSEI_CLI, SAMPLE_RATE, WORK_DIR

SEED = 0
SECONDS = 30
MODELS = ("tiny.en", "base")
VAD_SETTINGS: tuple[bool | None, ...] = (True, False, None)


@dataclass
class Case:
    signal: str
    model: str
    vad: bool | None
    onsei: str
    fw: str


def words(text: str) -> int:
    """Tokens with a letter or digit in them (a transcript of " . ." has no words)."""
    return sum(bool(re.search(r"\w", token)) for token in text.split())


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    n = SECONDS * SAMPLE_RATE
    white = rng.normal(0.0, 0.1, n)
    brown = np.cumsum(rng.normal(0.0, 1.0, n))
    t = np.arange(n)
    brown -= np.polyval(np.polyfit(t, brown, 1), t)
    brown *= 0.3 / np.max(np.abs(brown))
    return {
        "silence": np.zeros(n, dtype=np.float32),
        "white noise": white.astype(np.float32),
        "brown noise": brown.astype(np.float32),
    }


def run_case(model: str, audio: np.ndarray, vad: bool | None) -> tuple[str, str]:
    """Both sides, each model loaded right after seeding (CTranslate2 seeds a sampler per worker
    thread at its first use), the same float32 waveform, the same options."""
    import faster_whisper

    import onsei
    from onsei.whisper.registry import resolve_whisper_model

    options = {} if vad is None else {"vad_filter": vad}
    common.seed_ctranslate2(SEED)
    ours = onsei.load_model(model, device="cpu", compute_type="int8", threads=0)
    a = ours.transcribe(audio, **options).text
    del ours
    common.seed_ctranslate2(SEED)
    peer = faster_whisper.WhisperModel(
        str(resolve_whisper_model(model)), device="cpu", compute_type="int8"
    )
    segments, _ = peer.transcribe(audio, **options)
    return a, "".join(s.text for s in segments).strip()


def cli_words(model: str, wav: Path) -> str:
    """Words the onsei CLI writes with all its defaults, or its error line."""
    out = WORK_DIR / "hallucination" / model
    result = subprocess.run(
        [ONSEI_CLI, "transcribe", str(wav), "--model", model, "--verbose", "False", "-f", "txt"]
        + ["-o", str(out), "--overwrite"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        message = result.stderr.strip().replace(str(common.REPO_DIR) + "/", "")
        return f"exit {result.returncode}: `{message}`"
    text = (out / f"{wav.stem}.txt").read_text(encoding="utf-8").strip()
    return f"{words(text)} words: {text!r}"


def main() -> None:
    from onsei.whisper.options import DecodingOptions

    audio = signals()
    cases: list[Case] = []
    cli_rows: list[tuple[str, str, str]] = []
    for model in MODELS:
        for name, x in audio.items():
            for vad in VAD_SETTINGS:
                a, b = run_case(model, x, vad)
                cases.append(Case(name, model, vad, a, b))
                print(f"{model:8} {name:12} vad={vad!s:5} onsei {a!r}  fw {b!r}", flush=True)
            wav = common.write_wav(WORK_DIR / f"{name.replace(' ', '_')}.wav", x)
            cli = cli_words(model, wav)
            cli_rows.append((name, model, cli))
            print(f"{model:8} {name:12} CLI defaults: {cli}", flush=True)
    default = DecodingOptions().vad_filter
    common.write_section("hallucination", report(cases, cli_rows, default))
    print(f"wrote {common.RESULTS}")


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def report(cases: list[Case], cli_rows: list[tuple[str, str, str]], onsei_default: bool) -> str:
    def vad_label(vad: bool | None) -> str:
        if vad is None:
            return f"not given (onsei: {onsei_default}, fw: False)"
        return str(vad)

    def same(c: Case) -> str:
        if c.onsei == c.fw:
            return "yes"
        return "differs (defaults differ)" if c.vad is None else "**no**"

    table = common.markdown_table(
        ["signal", "model", "vad_filter", "words onsei", "words fw", "same text", "text"],
        [
            (
                c.signal,
                c.model,
                vad_label(c.vad),
                words(c.onsei),
                words(c.fw),
                same(c),
                _short(c.onsei)
                if c.onsei == c.fw
                else f"onsei {_short(c.onsei)}, fw {_short(c.fw)}",
            )
            for c in cases
        ],
    )
    cli = common.markdown_table(
        ["signal", "model", "onsei CLI, all defaults (vad_filter True)"], cli_rows
    )
    on = [c for c in cases if c.vad is True or (c.vad is None and onsei_default)]
    zero = sum(words(c.onsei) == 0 for c in on)
    return (
        "## Hallucination on non-speech: words produced for 30 s without speech\n\n"
        + common.header(common.this_command())
        + f"- Signals: {SECONDS} s at 16 kHz, numpy seed {SEED}: digital silence (zeros); white "
        "noise (Gaussian, std 0.1); brown noise (cumulative sum of white noise, linear trend "
        "removed, peak 0.3).\n"
        "- Python API: `onsei.load_model(M, device='cpu', compute_type='int8').transcribe(x, "
        "vad_filter=V)` vs `faster_whisper.WhisperModel(dir, compute_type='int8').transcribe(x, "
        "vad_filter=V)`, all other options at defaults (base detects the language); the same "
        f"float32 waveform to both; each model loaded right after `ctranslate2.set_random_seed"
        f"({SEED})`, so the temperature-fallback sampling starts from the same state. `not "
        f"given` = no vad_filter argument: each API's own default (onsei {onsei_default}, "
        "faster-whisper False).\n"
        "- Words = tokens with a letter or digit (a transcript of ` . .` has none).\n"
        "- CLI: `onsei transcribe SIGNAL.wav --model M --verbose False -f txt -o DIR --overwrite` "
        "(all defaults, vad_filter True) on the signal written as a 16-bit WAV.\n"
        f"- With VAD on (explicitly or by onsei's default), onsei's API produced zero words in "
        f"{zero} of {len(on)} cases (target: all).\n\n" + table + "\n" + cli
    )


if __name__ == "__main__":
    main()
