"""Whisper fine-tuned on AN4 on this CPU: WER before and after, and the fine-tuned model decoded
by onsei (CTranslate2 int8) and by transformers side by side.

For each model (tiny.en, base), as a user would run it:

1. zero-shot: ``onsei eval --model M --data data/an4/test.jsonl`` (beam 5, VAD, English), the
   same on ``../shared/data/clips`` (general English, to see forgetting);
2. ``onsei finetune --model M --train data/an4/train.jsonl --eval data/an4/dev.jsonl
   --freeze_encoder --interpolation auto ...`` within a wall-clock budget (the best epoch by
   dev WER is kept, then mixed with the zero-shot weights as WiSE-FT does, the weight chosen
   on dev);
3. the fine-tuned experiment: ``onsei eval --model EXP`` on AN4 test and on the clips, and
   the same for the best epoch's weights before the interpolation;
4. peer: transformers' ``generate()`` (float32, beam 5, no timestamps) on the same fine-tuned
   weights (EXP/hf), AN4 test: WER and decode time against onsei's engine.

AN4 test is scored two ways from the same transcripts: ``plain`` (case and punctuation) and
``spelled`` (Whisper's English normaliser after spelled letters are joined: "J P E G FOUR" =
"JPEG 4"); clips with ``whisper`` (Whisper's normaliser, digits one word each). Dev chooses the
epoch; test is decoded once. One fine-tuning run per model (an hour), not a median.

Usage: .venv/bin/python benchmarks/whisper_finetune.py [--models tiny.en base] [--again]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import an4_training
import common

from onsei.data.manifest import read_manifest
from onsei.scoring import score

WORK = common.WORK_DIR / "whisper_finetune"
FIGURES = common.FIGURES_DIR / "whisper_finetune"
CLIPS = common.DATA_DIR / "clips" / "manifest.jsonl"
SETTINGS = {
    # decoder only (encoder outputs cached once); the budget leaves room for the last
    # evaluation, the export and the scoring within the hour
    "tiny.en": {"epochs": 10, "learning_rate": 3e-5, "batch_size": 16, "max_minutes": 50},
    "base": {"epochs": 6, "learning_rate": 3e-5, "batch_size": 16, "max_minutes": 45},
}
INTERPOLATION = "auto"
"""``onsei finetune --interpolation``: WiSE-FT's weight chosen on AN4 dev (the smallest within
half a point of the fine-tuned dev WER); the clips are not looked at."""


def onsei_eval(model: str, manifest: Path, normalizer: str, output: Path) -> dict:
    """``onsei eval`` as a user runs it; the raw transcripts are re-scored in-process."""
    command = [common.ONSEI_CLI, "eval", "--model", model, "--data", str(manifest)]
    command += ["--normalizer", normalizer, "--output", str(output), "--language", "en"]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    hypotheses = {}
    for line in (output / "hyp_raw.txt").read_text(encoding="utf-8").splitlines():
        utterance_id, _, text = line.partition(" ")
        hypotheses[utterance_id] = text
    return {"hypotheses": hypotheses, "wall_s": wall}


def wers(manifest: Path, hypotheses: dict[str, str], normalizers: tuple[str, ...]) -> dict:
    utterances = read_manifest(manifest)
    return {n: score(utterances, hypotheses, normalizer=n).words.rate for n in normalizers}


def evaluate(model: str, tag: str) -> dict:
    test = an4_training.DATA / "test.jsonl"
    an4 = onsei_eval(model, test, "plain", WORK / f"{tag}_an4_test")
    clips = onsei_eval(model, CLIPS, "whisper", WORK / f"{tag}_clips")
    return {
        "an4_test": wers(test, an4["hypotheses"], ("plain", "spelled")),
        "an4_decode_s": an4["wall_s"],
        "clips": wers(CLIPS, clips["hypotheses"], ("whisper",)),
        "examples": {k: an4["hypotheses"][k] for k in list(an4["hypotheses"])[:4]},
    }


def transformers_peer(hf_dir: Path, manifest: Path, beams: int = 5) -> dict:
    """The fine-tuned weights decoded by transformers' generate() (float32, batch 16)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from onsei.audio import load_audio

    processor = WhisperProcessor.from_pretrained(hf_dir)
    model = WhisperForConditionalGeneration.from_pretrained(hf_dir).eval()
    generation = json.loads((hf_dir / "generation_config.json").read_text(encoding="utf-8"))
    language = {"language": "en", "task": "transcribe"} if generation.get("is_multilingual") else {}
    utterances = read_manifest(manifest)
    hypotheses = {}
    started = time.perf_counter()
    for start in range(0, len(utterances), 16):
        batch = utterances[start : start + 16]
        audio = [load_audio(u.audio) for u in batch]
        features = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt")
        with torch.no_grad():
            tokens = model.generate(
                features.input_features, num_beams=beams, max_new_tokens=128, **language
            )
        texts = processor.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        hypotheses.update({u.id: t for u, t in zip(batch, texts, strict=True)})
    seconds = time.perf_counter() - started
    return {"an4_test": wers(manifest, hypotheses, ("plain", "spelled")), "decode_s": seconds}


def finetune(model: str, reuse: bool) -> dict:
    """Fine-tune ``model`` on AN4 train (or, with ``reuse``, take a finished run's results)."""
    exp = WORK / f"exp_{model}"
    settings = SETTINGS[model]
    command = [common.ONSEI_CLI, "finetune", "--model", model, "--exp", str(exp)]
    command += ["--train", str(an4_training.DATA / "train.jsonl")]
    command += ["--eval", str(an4_training.DATA / "dev.jsonl"), "--freeze_encoder"]
    command += ["--language", "en"] if model == "base" else []
    for key, value in {**settings, "interpolation": INTERPOLATION}.items():
        command += [f"--{key}", str(value)]
    log = WORK / f"finetune_{model}.log"
    if reuse and (exp / "results.json").is_file():
        print(f"== {model}: reusing the fine-tuning in {exp}", flush=True)
    else:
        if exp.exists():
            shutil.rmtree(exp)
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"== {model}: fine-tuning (log: {log})", flush=True)
        with open(log, "w", encoding="utf-8") as output:
            result = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT)
        if result.returncode != 0:
            sys.exit(f"whisper_finetune: {' '.join(command)} failed; see {log}")
    results = json.loads((exp / "results.json").read_text(encoding="utf-8"))
    return {
        "command": " ".join(["onsei", *command[1:]]).replace(str(common.REPO_DIR) + "/", ""),
        "train_minutes": results["train_minutes"],
        "epochs": results["epochs"],
        "dev_wer_zero_shot_hf": results["zero_shot_wer"],
        "dev_wer_best_hf": results["best_wer"],
        "interpolation": results["interpolation"],
        "interpolation_dev_wers_hf": results["interpolation_wers"],
        "best_checkpoint": results["best_checkpoint"],
        "exp": str(exp),
    }


def not_interpolated(exp: Path, checkpoint: Path) -> Path:
    """The best epoch's weights as they were fine-tuned (before the interpolation), exported
    to CTranslate2 float16 as ``onsei finetune`` exports: the model's config and weights
    from ``checkpoint``, the processor files from ``exp/hf``."""
    from onsei.whisper.convert import export_ct2

    hf = WORK / f"{exp.name}_not_interpolated_hf"
    shutil.rmtree(hf, ignore_errors=True)
    shutil.copytree(exp / "hf", hf)
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(checkpoint / name, hf / name)
    return export_ct2(hf, WORK / f"{exp.name}_not_interpolated_ct2", "float16")


def measure(model: str, reuse: bool) -> dict:
    print(f"== {model}: zero-shot", flush=True)
    zero_shot = evaluate(model, f"{model}_zero_shot")
    tuning = finetune(model, reuse)
    print(f"== {model}: fine-tuned", flush=True)
    tuned = evaluate(tuning["exp"], f"{model}_finetuned")
    alone = None
    if tuning["interpolation"] != 1.0:
        print(f"== {model}: fine-tuned, not interpolated", flush=True)
        weights = not_interpolated(Path(tuning["exp"]), Path(tuning["best_checkpoint"]))
        alone = evaluate(str(weights), f"{model}_finetuned_not_interpolated")
    print(f"== {model}: transformers generate() on the fine-tuned weights", flush=True)
    peer = transformers_peer(Path(tuning["exp"]) / "hf", an4_training.DATA / "test.jsonl")
    return {
        "model": model,
        "date": common.today(),
        "commit": common.git_commit(),
        "zero_shot": zero_shot,
        "finetune": tuning,
        "finetuned": tuned,
        "finetuned_not_interpolated": alone,
        "transformers": peer,
    }


def section() -> str:
    results = {p.stem: json.loads(p.read_text()) for p in sorted(FIGURES.glob("*.json"))}
    lines = [
        "## Whisper fine-tuned on AN4 on this CPU: zero-shot vs fine-tuned (issue 5)\n",
        common.header(common.this_command()),
        "- Data: AN4 via `onsei prepare an4` (train 857 utterances / 38 min; dev 91 chooses the "
        "epoch; test 130 utterances from 10 unseen speakers, decoded once); "
        "`../shared/data/clips` (25 clips of general English) to measure forgetting.",
        "- Decoding: `onsei eval` (CTranslate2 int8, beam 5, VAD on, language en), zero-shot "
        "and fine-tuned alike. AN4 scored `plain` (case and punctuation) and `spelled` (Whisper's "
        "English normaliser after spelled letters are joined, so `J P E G FOUR` = `JPEG 4`; "
        "this also changes the word count); clips scored `whisper`.",
        "- Fine-tuning: `onsei finetune` (transformers Seq2SeqTrainer, decoder only with the "
        "encoder's outputs cached once, linear decay after warm-up, best dev epoch kept, "
        "exported to CTranslate2 float16); one run per model. Then WiSE-FT (`--interpolation "
        "auto`): the saved weights are (1 - a) zero-shot + a fine-tuned, with a the smallest of "
        "0.5 ... 0.9 whose AN4 dev WER is within half a point of the fine-tuned model's; the "
        "fine-tuned weights before it are scored too. Targets: fine-tuned tiny.en at or "
        "below 2.0% plain WER on AN4 test; clips no more than 1 point worse than zero-shot.\n",
    ]
    rows = []
    for model, r in results.items():
        weights = [("zero-shot", r["zero_shot"])]
        if r.get("finetuned_not_interpolated"):
            weights.append(("fine-tuned", r["finetuned_not_interpolated"]))
            a = r["finetune"]["interpolation"]
            weights.append((f"fine-tuned, interpolated (a = {a:g})", r["finetuned"]))
        else:
            weights.append(("fine-tuned", r["finetuned"]))
        for name, figures in weights:
            rows.append(
                [
                    model,
                    name,
                    f"**{common.fmt_pct(figures['an4_test']['plain'])}**",
                    common.fmt_pct(figures["an4_test"]["spelled"]),
                    common.fmt_pct(figures["clips"]["whisper"]),
                    f"{figures['an4_decode_s']:.0f}",
                    "-"
                    if name == "zero-shot"
                    else f"{r['finetune']['epochs']:g} / {r['finetune']['train_minutes']}",
                    r["date"],
                ]
            )
    headers = [
        "Model",
        "Weights",
        "AN4 test WER, plain",
        "AN4 test WER, spelled",
        "Clips WER",
        "AN4 test decode s (CLI)",
        "Epochs / train min",
        "Date",
    ]
    lines.append(common.markdown_table(headers, rows))
    for model, r in results.items():
        dev = r["finetune"].get("interpolation_dev_wers_hf")
        if dev and len(dev) > 1:
            tried = ", ".join(
                f"a = {float(a):g}: {common.fmt_pct(w)}"
                for a, w in sorted(dev.items(), key=lambda item: float(item[0]))
            )
            lines.append(f"\n{model}, AN4 dev WER (transformers generate, plain) by a: {tried}.")
    lines.append(
        "\nThe saved (interpolated) weights decoded by transformers' `generate()` (float32, "
        "beam 5, batch 16, no timestamps) against onsei's engine (CTranslate2 int8, beam 5; "
        "its time includes the command's start-up and model load):\n"
    )
    rows = []
    for model, r in results.items():
        peer, ours = r["transformers"], r["finetuned"]
        rows.append(
            [
                model,
                common.fmt_pct(ours["an4_test"]["plain"]),
                common.fmt_pct(peer["an4_test"]["plain"]),
                f"{ours['an4_decode_s']:.0f}",
                f"{peer['decode_s']:.0f}",
                f"{peer['decode_s'] / ours['an4_decode_s']:.1f}x",
            ]
        )
    headers = ["Model", "WER onsei", "WER transformers", "onsei s", "transformers s", "Speed-up"]
    lines.append(common.markdown_table(headers, rows))
    lines.append("\nCommands and examples (AN4 test, first utterances):\n")
    for model, r in results.items():
        lines.append(f"- {model}: `{r['finetune']['command']}` ({r['commit']})")
        for key, text in r["finetuned"]["examples"].items():
            lines.append(
                f"  - {key}: zero-shot `{r['zero_shot']['examples'][key]}`, tuned `{text}`"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=tuple(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--again", action="store_true", help="re-measure models already done")
    parser.add_argument(
        "--reuse_training",
        action="store_true",
        help="evaluate a fine-tuning that finished before instead of training again",
    )
    args = parser.parse_args()
    an4_training.prepare_data()
    FIGURES.mkdir(parents=True, exist_ok=True)
    for model in args.models:
        path = FIGURES / f"{model}.json"
        if path.is_file() and not args.again:
            print(f"== {model}: measured already (--again to redo)")
            continue
        path.write_text(
            json.dumps(measure(model, args.reuse_training), indent=1) + "\n", encoding="utf-8"
        )
        common.write_section("whisper_finetune", section())
    common.write_section("whisper_finetune", section())


if __name__ == "__main__":
    main()
