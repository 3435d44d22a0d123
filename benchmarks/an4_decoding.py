"""AN4 test WER of every model trained by an4_training.py: greedy vs beam vs beam + LM.

The LMs are estimated by ``onsei lm train`` from the AN4 *training* transcripts only: a word
3-gram (fused by the CTC prefix beam search at word ends) and a character 6-gram (fused per
token by the attention, joint CTC/attention and transducer searches). LM weight, word/length
bonus and CTC weight are chosen on the dev set (a small grid), then the test set is decoded
once with them; attention models get their length bonus or length normalisation tuned on
dev for plain beam search too, and LAS and the Transformer, which train with an auxiliary CTC
loss, are also decoded rescored by that CTC head ("beam + CTC"). Decode speed is given as
real-time factor and utterances per second (batched greedy and attention searches; CTC and
transducer beam searches one utterance at a time).

Usage: .venv/bin/python benchmarks/an4_decoding.py [--families ...] [--beam 10]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
from datetime import datetime

import an4_training
import common

from onsei.asr.evaluate import evaluate
from onsei.asr.search import SearchOptions

WORK = an4_training.WORK / "decoding"
FIGURES = common.FIGURES_DIR / "an4_decoding"
"""Each family's rows, one JSON file per family (committed; RESULTS.md is rebuilt from them)."""
CTC_FAMILIES = ("conformer_ctc", "blstm_ctc")
ATTENTION_FAMILIES = ("las", "transformer", "joint_ctc_attention")


def train_lms() -> dict[str, str]:
    """The word 3-gram and character 6-gram of the AN4 training transcripts."""
    WORK.mkdir(parents=True, exist_ok=True)
    train = str(an4_training.DATA / "train.jsonl")
    paths = {"word": WORK / "an4_word3.arpa", "char": WORK / "an4_char6.arpa"}
    for unit, order in (("word", 3), ("char", 6)):
        command = [common.ONSEI_CLI, "lm", "train", train, "-o", str(paths[unit])]
        subprocess.run([*command, "--order", str(order), "--unit", unit], check=True)
    return {unit: str(path) for unit, path in paths.items()}


AUX_CTC_WEIGHT = 0.3
"""The CTC weight at which LAS and the Transformer are decoded with their auxiliary CTC head
(ESPnet's usual weight)."""


def ctc_weights(family: str) -> tuple[float | None, ...]:
    """CTC weights to try with an LM: the joint model's own and ESPnet's usual ones; for LAS
    and the Transformer, attention only or rescored by their auxiliary CTC head."""
    if family == "joint_ctc_attention":
        return (0.3, 0.5)
    return (None, AUX_CTC_WEIGHT)


def beam_grid(family: str, beam: int, weights: tuple[float | None, ...] = (None,)) -> list[dict]:
    """Beam search without LM (at each CTC weight of ``weights``): attention models need a
    length bonus or length normalisation (tuned on dev), or their beam search prefers ending
    early."""
    if family in ATTENTION_FAMILIES:
        lengths = [{"length_bonus": b} for b in (0.0, 0.5, 1.0, 1.5)]
        lengths += [{"length_penalty": p} for p in (0.5, 1.0)]
        return [
            {"beam_size": beam, **length, "ctc_weight": c}
            for length, c in itertools.product(lengths, weights)
        ]
    if family == "rnnt":
        return [{"beam_size": beam, "transducer_search": "time_sync"}]
    return [{"beam_size": beam}]


def lm_grid(family: str, beam: int, lms: dict[str, str]) -> list[dict]:
    """Candidate search options with an LM, to be chosen among on dev."""
    if family in CTC_FAMILIES:
        return [
            {"beam_size": beam, "lm": lms["word"], "lm_weight": w, "word_bonus": b}
            for w, b in itertools.product((0.3, 0.6, 1.0, 1.5), (0.0, 1.0, 2.0))
        ]
    if family == "rnnt":
        return [
            {"beam_size": beam, "lm": lms["char"], "lm_weight": w, "word_bonus": b}
            for w, b in itertools.product((0.1, 0.2, 0.4), (0.0, 0.5, 1.0))
        ]
    if family in ATTENTION_FAMILIES:
        return [
            {
                "beam_size": beam,
                "lm": lms["char"],
                "lm_weight": w,
                "length_bonus": b,
                "ctc_weight": c,
            }
            for w, b, c in itertools.product((0.1, 0.2, 0.4), (0.5, 1.0, 1.5), ctc_weights(family))
        ]
    return []


def score(exp, manifest, options: dict) -> dict:
    report = evaluate(exp, manifest, search=SearchOptions.from_kwargs(**options))
    return {
        "wer": report.words.rate,
        "cer": report.chars.rate,
        "rtf": report.real_time_factor,
        "utterances_per_s": len(report.results) / report.decode_seconds,
    }


def dev_wer(exp, dev, options: dict) -> float:
    wer = score(exp, dev, options)["wer"]
    print(f"  dev {common.fmt_pct(wer)}: {options}", flush=True)
    return wer


def measure(family: str, beam: int, lms: dict[str, str]) -> dict:
    exp = an4_training.WORK / "exp" / family
    dev, test = an4_training.DATA / "dev.jsonl", an4_training.DATA / "test.jsonl"
    rows = {"greedy": ({}, score(exp, test, {}))}
    joint = family == "joint_ctc_attention"
    searches = [("beam", beam_grid(family, beam, ctc_weights(family) if joint else (None,)))]
    if family in ("las", "transformer"):  # the same, rescored by the auxiliary CTC head
        searches.append(("beam + CTC", beam_grid(family, beam, (AUX_CTC_WEIGHT,))))
    if family == "rnnt":  # the transducer's other beam search, for its speed and WER
        searches.append(("beam (Graves)", [{"beam_size": beam, "transducer_search": "graves"}]))
    searches.append(("beam + LM", lm_grid(family, beam, lms)))
    for name, candidates in searches:
        if not candidates:
            continue
        tuned = candidates[0]
        if len(candidates) > 1:
            tuned = min(candidates, key=lambda options: dev_wer(exp, dev, options))
        rows[name] = (tuned, score(exp, test, tuned))
    trained = an4_training.read_log(exp)[-1]["time"]
    return {
        "family": family,
        "date": common.today(),
        "commit": common.git_commit(),
        "model_trained": datetime.fromtimestamp(trained).astimezone().strftime("%Y-%m-%d %H:%M"),
        "rows": {
            name: {"options": {k: v for k, v in options.items() if k != "lm"}, **figures}
            for name, (options, figures) in rows.items()
        },
    }


def section() -> str:
    lines = [
        "## AN4: decoding the trained models, greedy vs beam vs beam + LM (issue 4)\n",
        common.header(common.this_command()),
        "- Models: those of the an4_training section (one 55-minute CPU run per family).",
        "- LMs from the AN4 training transcripts only (`onsei lm train`, modified Kneser-Ney): "
        "word 3-gram for CTC models, character 6-gram for the others. Weights chosen on "
        "dev, then test decoded once. Anchor: ESPnet's AN4 result, 7.4% WER / 3.6% CER "
        "(Transformer, joint CTC/attention, beam 10, LM, 200 GPU epochs).\n",
    ]
    rows, trained = [], []
    for family in an4_training.FAMILIES:
        path = FIGURES / f"{family}.json"
        if not path.is_file():
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        if "model_trained" in result:
            trained.append(f"{an4_training.LABELS[family]} {result['model_trained']}")
        for name, row in result["rows"].items():
            options = ", ".join(f"{k} {v}" for k, v in row["options"].items() if v is not None)
            rows.append(
                [
                    an4_training.LABELS[family],
                    name,
                    options or "-",
                    f"**{common.fmt_pct(row['wer'])}**",
                    common.fmt_pct(row["cer"]),
                    f"{row['rtf']:.3f}",
                    f"{row['utterances_per_s']:.0f}" if "utterances_per_s" in row else "-",
                    result["date"],
                ]
            )
    if trained:
        lines.append(
            "- When each model's training ended, where recorded (a later run of the same "
            "recipe than the an4_training section's): " + "; ".join(trained) + ".\n"
        )
    headers = ["Family", "Search", "Options", "Test WER", "Test CER", "Decode RTF", "Utt/s", "Date"]
    lines.append(common.markdown_table(headers, rows))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", choices=an4_training.FAMILIES)
    parser.add_argument("--beam", type=int, default=10)
    args = parser.parse_args()
    lms = train_lms()
    families = args.families or [
        f for f in an4_training.FAMILIES if (an4_training.WORK / "exp" / f / "model.pt").is_file()
    ]
    for family in families:
        print(f"== {family}", flush=True)
        result = measure(family, args.beam, lms)
        FIGURES.mkdir(parents=True, exist_ok=True)
        (FIGURES / f"{family}.json").write_text(json.dumps(result, indent=1) + "\n")
        for name, row in result["rows"].items():
            print(f"{family} {name}: WER {100 * row['wer']:.1f}% {row['options']}", flush=True)
        common.write_section("an4_decoding", section())


if __name__ == "__main__":
    main()
