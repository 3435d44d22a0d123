"""Word error rate of onsei and of faster-whisper called directly, with the same options.

Data: ../shared/data/clips/manifest.jsonl (25 English clips) and ../shared/data/an4/test.jsonl
(130 AN4 test utterances). Models: tiny.en and base, int8 on CPU. Two option sets:

- "VAD off": beam_size 5, language "en", vad_filter False, for both;
- "VAD on": the same with vad_filter True (onsei's default) for both.

Every other option is left at each side's default, so the run also checks that onsei's defaults
equal faster-whisper's. Each side decodes the file itself (onsei with its own decoder,
faster-whisper with ``decode_audio``). Both models are loaded right after seeding CTranslate2 and
get the same calls in the same order, so the sampling of the temperature fallback stays in step
on both sides as long as their outputs agree.

Usage: .venv/bin/python benchmarks/accuracy.py [--models tiny.en base] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, field
from typing import Any

import common
from common import DATA_DIR, Utterance

DATASETS = {
    "clips": DATA_DIR / "clips" / "manifest.jsonl",
    "an4-test": DATA_DIR / "an4" / "test.jsonl",
}
CONFIGS: dict[str, dict[str, Any]] = {
    "VAD off": {"beam_size": 5, "language": "en", "vad_filter": False},
    "VAD on": {"beam_size": 5, "language": "en", "vad_filter": True},
}
SEED = 1234


@dataclass
class Run:
    model: str
    config: str
    dataset: str
    ids: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    onsei: list[str] = field(default_factory=list)
    fw: list[str] = field(default_factory=list)
    onsei_seconds: float = 0.0
    fw_seconds: float = 0.0

    def identical(self) -> int:
        return sum(a == b for a, b in zip(self.onsei, self.fw, strict=True))

    def wer(self, hyps: list[str]) -> float:
        return common.corpus_wer(
            [common.normalise(r) for r in self.refs], [common.normalise(h) for h in hyps]
        )


class Engines:
    """One onsei model and one faster-whisper model of the same directory."""

    def __init__(self, name: str):
        """Load both after seeding, so both samplers start from ``SEED``."""
        import faster_whisper

        import onsei
        from onsei.whisper.registry import resolve_whisper_model

        common.seed_ctranslate2(SEED)
        self.onsei = onsei.load_model(name, device="cpu", compute_type="int8", threads=0)
        model_dir = resolve_whisper_model(name)
        self.fw = faster_whisper.WhisperModel(str(model_dir), device="cpu", compute_type="int8")

    def onsei_text(self, audio: Any, options: dict[str, Any]) -> str:
        return self.onsei.transcribe(audio, **options).text

    def fw_text(self, audio: Any, options: dict[str, Any]) -> str:
        segments, _ = self.fw.transcribe(audio, **options)
        return "".join(segment.text for segment in segments).strip()


def run_one(engines: Engines, model: str, config: str, dataset: str, utts: list[Utterance]) -> Run:
    options = CONFIGS[config]
    run = Run(model, config, dataset)
    for utt in utts:
        start = time.perf_counter()
        a = engines.onsei_text(utt.audio, options)
        middle = time.perf_counter()
        b = engines.fw_text(str(utt.audio), options)
        run.onsei_seconds += middle - start
        run.fw_seconds += time.perf_counter() - middle
        run.ids.append(utt.id)
        run.refs.append(utt.text)
        run.onsei.append(a)
        run.fw.append(b)
    return run


def diagnose(run: Run, utts: dict[str, Utterance]) -> list[dict[str, Any]]:
    """For each differing utterance: do both agree when given the same decoded waveform?

    Each check loads both models afresh, so both samplers start from the same seed again.
    """
    from faster_whisper import decode_audio

    from onsei.audio import load_audio

    options = CONFIGS[run.config]
    found = []
    for uid, a, b in zip(run.ids, run.onsei, run.fw, strict=True):
        if a == b:
            continue
        path = utts[uid].audio
        onsei_wave = load_audio(path)
        fw_wave = decode_audio(str(path))
        same = {}
        for name, wave in (("onsei", onsei_wave), ("fw", fw_wave)):
            engines = Engines(run.model)
            same[name] = engines.onsei_text(wave, options) == engines.fw_text(wave, options)
        found.append(
            {
                "model": run.model,
                "config": run.config,
                "id": uid,
                "audio": str(path),
                "options": options,
                "onsei": a,
                "faster_whisper": b,
                "same_when_given_onsei_waveform": same["onsei"],
                "same_when_given_fw_waveform": same["fw"],
                "waveform_max_abs_diff": _max_diff(onsei_wave, fw_wave),
            }
        )
    return found


def _max_diff(x: Any, y: Any) -> str:
    import numpy as np

    if x.shape != y.shape:
        return f"lengths differ: {x.shape[0]} vs {y.shape[0]} samples"
    return f"{float(np.max(np.abs(x - y))):.2e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    parser.add_argument("--limit", type=int, default=None, help="first N utterances per set")
    args = parser.parse_args()

    data = {name: common.read_manifest(path)[: args.limit] for name, path in DATASETS.items()}
    by_id = {u.id: u for utts in data.values() for u in utts}
    runs: list[Run] = []
    differences: list[dict[str, Any]] = []
    for model in args.models:
        engines = Engines(model)
        for config in CONFIGS:
            for dataset, utts in data.items():
                run = run_one(engines, model, config, dataset, utts)
                runs.append(run)
                print(
                    f"{model:8} {config:8} {dataset:9} n={len(utts):3} "
                    f"WER onsei {common.fmt_pct(run.wer(run.onsei)):>8} "
                    f"fw {common.fmt_pct(run.wer(run.fw)):>8} "
                    f"identical {run.identical()}/{len(utts)}",
                    flush=True,
                )
                differences += diagnose(run, by_id)
        del engines

    common.WORK_DIR.mkdir(parents=True, exist_ok=True)
    dump = common.WORK_DIR / "accuracy_transcripts.json"
    dump.write_text(
        json.dumps([run.__dict__ for run in runs], ensure_ascii=False, indent=1), encoding="utf-8"
    )
    for diff in differences:
        print("DIFFERENT:", json.dumps(diff, ensure_ascii=False))
    common.write_section("accuracy", report(runs, differences, data, args.limit))
    print(f"wrote {common.RESULTS} (transcripts in {dump})")


def report(
    runs: list[Run],
    differences: list[dict[str, Any]],
    data: dict[str, list[Utterance]],
    limit: int | None,
) -> str:
    rows = [
        (
            r.model,
            r.config,
            r.dataset,
            len(r.ids),
            common.fmt_pct(r.wer(r.onsei)),
            common.fmt_pct(r.wer(r.fw)),
            f"{r.identical()}/{len(r.ids)}",
            f"{r.onsei_seconds:.0f} / {r.fw_seconds:.0f}",
        )
        for r in runs
    ]
    table = common.markdown_table(
        [
            "model",
            "options",
            "data",
            "utts",
            "WER onsei",
            "WER faster-whisper",
            "identical text",
            "decode s onsei / fw",
        ],
        rows,
    )
    examples = _normalisation_examples(runs)
    if differences:
        diff_text = "Utterances whose onsei and faster-whisper texts differ:\n\n" + "".join(
            f"- {d['model']}, {d['config']}, `{d['id']}`: onsei {d['onsei']!r}, "
            f"faster-whisper {d['faster_whisper']!r}; same when both get onsei's waveform: "
            f"{d['same_when_given_onsei_waveform']}, when both get faster-whisper's: "
            f"{d['same_when_given_fw_waveform']}; waveforms: max |diff| "
            f"{d['waveform_max_abs_diff']}\n"
            for d in differences
        )
    else:
        diff_text = "onsei and faster-whisper gave identical raw text for every utterance.\n"
    from onsei.whisper.options import DecodingOptions

    api_vad_default = DecodingOptions().vad_filter
    sizes = ", ".join(f"{name} {len(utts)}" for name, utts in data.items())
    return (
        "## Accuracy (WER): onsei vs faster-whisper, same options\n\n"
        + common.header(common.this_command())
        + f"- Data: `../shared/data/clips/manifest.jsonl`, `../shared/data/an4/test.jsonl` "
        f"(utterances: {sizes}{'; limited run' if limit else ''}).\n"
        "- Models: bundled tiny.en and base, CTranslate2 int8 on CPU, one model instance per "
        "side.\n"
        "- Options: `VAD off` = beam_size 5, language en, vad_filter False; `VAD on` = the same "
        f"with vad_filter True (onsei's default: CLI True, Python API {api_vad_default}; "
        "faster-whisper's default: False). All other "
        "options at each side's defaults (best_of 5, temperature fallback 0..1.0 by 0.2, "
        "condition_on_previous_text True). Each side decodes the file itself. "
        f"`ctranslate2.set_random_seed({SEED})` before loading the two models of a model size; "
        "CTranslate2 has one sampler per worker thread, seeded at its first use, so both "
        "sides' temperature-fallback sampling starts from the same state and stays in step "
        "while their outputs agree.\n"
        "- Normalisation: onsei's `whisper` normaliser (`onsei.text.normalizers`: Whisper's "
        "`EnglishTextNormalizer` as ported by transformers, without British spellings) on both "
        "reference and hypothesis, **plus** digits spelled out one word per digit, before and "
        "after the normaliser (ordinals such as `1st` excepted before it). The normaliser alone "
        "groups digits unpredictably (`SEVEN ONE FIVE FOUR` -> `7154`, `7 1 5 4` -> "
        "`7 one 5 4`, `331-0188` -> `331 188`), so both sides end as one word per digit. "
        "Corpus WER with jiwer 4.\n"
        "- `decode s`: total seconds spent in each side's calls in this one pass (informational, "
        "not a timing benchmark; see the overhead section).\n\n"
        + table
        + examples
        + "\n"
        + diff_text
        + "\nAN4 is spelled letters and digits: Whisper often writes a spelled word as a word "
        "(`W O O D` -> `Wood`), which counts as errors here; the references are kept as given.\n"
    )


def _normalisation_examples(runs: list[Run]) -> str:
    an4 = [r for r in runs if r.dataset == "an4-test"]
    run = next((r for r in an4 if r.model == "base" and r.config == "VAD off"), None)
    run = run or (an4[0] if an4 else None)
    if run is None:
        return ""
    rows = []
    for ref, hyp in list(zip(run.refs, run.onsei, strict=True))[:6]:
        rows.append((ref, common.normalise(ref), hyp, common.normalise(hyp)))
    title = f"\nNormalisation examples (AN4, {run.model}, {run.config}):\n\n"
    return title + common.markdown_table(
        ["reference", "normalised", "onsei hypothesis", "normalised"], rows
    )


if __name__ == "__main__":
    main()
