"""AN4: every model family of recipes/an4 trained from scratch on this CPU, scored on AN4 test.

accuracy    Train each recipe as a user would (``onsei train recipes/an4/F.yaml``) within the
            recipe's own wall-clock budget (max_minutes 55: at most 60 minutes with the last
            epoch and the weight averaging), then decode AN4 test (130 utterances, 10 speakers
            unseen in training) greedily and score WER/CER. One training run per family: an hour
            each on 2 cores. Single-process training speed is the median over its epochs.
throughput  Train each recipe for a few epochs twice, side by side: one process (torch's
            default threads), then ``torchrun --nproc_per_node 2 -m onsei train`` (gloo, one
            thread per process); speed is seconds of (speed-perturbed) training audio per
            wall-clock second, median over the epochs after the first.
ddp         The recipe for a fixed number of epochs (no time budget), in one process and under
            ``torchrun --nproc_per_node 2``, one after the other: the same quality? ``--add``
            adds runs (of ``--modes``, with ``--seed``) to the saved ones: the spread over
            seeds.

Figures of each family are kept in benchmarks/figures/an4_training/{accuracy,ddp,throughput}/F.json,
so the hours of training can be split over several sittings; the RESULTS.md section is rebuilt
from every family measured so far (the "Date" column says when each was).

Usage:
    .venv/bin/python benchmarks/an4_training.py accuracy [--families blstm_ctc las ...] [--again]
    .venv/bin/python benchmarks/an4_training.py throughput [--families ...] [--epochs 3]
    .venv/bin/python benchmarks/an4_training.py ddp --families conformer_ctc [--epochs 30]
        [--modes single torchrun2] [--add] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common

FAMILIES = (
    "conformer_ctc",
    "blstm_ctc",
    "las",
    "transformer",
    "joint_ctc_attention",
    "rnnt",
    "conformer_ctc_streaming",
)
LABELS = {
    "conformer_ctc": "Conformer-CTC",
    "blstm_ctc": "BiLSTM-CTC",
    "las": "Listen-Attend-Spell",
    "transformer": "Transformer (attention)",
    "joint_ctc_attention": "Joint CTC-attention (Conformer)",
    "rnnt": "RNN-Transducer (Conformer)",
    "conformer_ctc_streaming": "Conformer-CTC, streaming (0.64 s chunks)",
}
RECIPES = common.REPO_DIR / "recipes" / "an4"
DATA = common.REPO_DIR / "data" / "an4"
WORK = common.WORK_DIR / "an4_training"
FIGURES = common.FIGURES_DIR / "an4_training"
"""Each family's measured figures, one JSON file per part and family (committed: an hour of
training each, and RESULTS.md is rebuilt from them)."""
TORCHRUN = str(Path(common.PYTHON).with_name("torchrun"))


def prepare_data() -> None:
    """The manifests the recipes read (data/an4/*.jsonl), written as the README says."""
    if all((DATA / f"{split}.jsonl").is_file() for split in ("train", "dev", "test")):
        return
    source = common.DATA_DIR / "an4"
    if not source.is_dir():
        sys.exit(f"an4_training: {source} is missing (see ../shared/data/README.md)")
    subprocess.run([common.ONSEI_CLI, "prepare", "an4", str(source), str(DATA)], check=True)


def train(recipe: Path, exp: Path, log: Path, distributed: bool = False) -> float:
    """Run ``onsei train`` (or its torchrun form) in the repository; wall-clock seconds."""
    if exp.exists():
        shutil.rmtree(exp)
    exp.parent.mkdir(parents=True, exist_ok=True)
    if distributed:
        command = [TORCHRUN, "--standalone", "--nproc_per_node", "2", "-m", "onsei"]
    else:
        command = [common.ONSEI_CLI]
    command += ["train", str(recipe), "--exp", str(exp)]
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as output:
        result = subprocess.run(
            command, cwd=common.REPO_DIR, stdout=output, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        sys.exit(f"an4_training: {' '.join(command)} failed; see {log}")
    return time.perf_counter() - started


def read_log(exp: Path) -> list[dict]:
    with open(exp / "log.jsonl", encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


def epoch_speeds(records: list[dict]) -> list[float]:
    """Seconds of training audio per second, one figure per epoch."""
    return [r["audio_per_s"] for r in records if "audio_per_s" in r]


def parameter_count(exp: Path) -> int:
    from onsei.asr.recognizer import load_trained_model

    model, _ = load_trained_model(exp)
    return sum(p.numel() for p in model.parameters())


def measure_accuracy(
    family: str, distributed: bool = False, recipe: Path | None = None, name: str | None = None
) -> dict:
    """Train ``family``'s recipe (or ``recipe``; under torchrun with 2 processes if
    ``distributed``) and decode AN4 test greedily."""
    from onsei.asr.evaluate import evaluate
    from onsei.scoring import write_report

    name = name or (f"{family}_ddp" if distributed else family)
    exp = WORK / "exp" / name
    log = WORK / "logs" / f"{name}.train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"== {name}: training (log: {log})", flush=True)
    commit = common.git_commit()  # the code that trains (the repository may move on meanwhile)
    wall = train(recipe or RECIPES / f"{family}.yaml", exp, log, distributed)
    records = read_log(exp)
    dev = [r for r in records if "wer" in r]
    best = min(dev, key=lambda r: (r["wer"], -r["epoch"]))
    report = evaluate(exp, DATA / "test.jsonl")
    write_report(report, exp / "decode_test")
    result = {
        "family": family,
        "date": common.today(),
        "commit": commit,
        "train_minutes": round(wall / 60, 1),
        "epochs": dev[-1]["epoch"],
        "updates": dev[-1]["step"],
        "best_dev_wer": best["wer"],
        "best_dev_epoch": best["epoch"],
        "test_wer": report.words.rate,
        "test_cer": report.chars.rate,
        "test_words": report.words.reference_units,
        "decode_rtf": report.real_time_factor,
        "audio_per_s": statistics.median(epoch_speeds(records)),
        "parameters": parameter_count(exp),
    }
    print(
        f"{family}: test WER {100 * result['test_wer']:.1f}% CER {100 * result['test_cer']:.1f}% "
        f"after {result['train_minutes']} min",
        flush=True,
    )
    return result


def fixed_epochs_recipe(family: str, epochs: int, folder: Path, seed: int | None = None) -> Path:
    """``family``'s recipe with ``epochs`` epochs and no time budget (and ``train.seed``
    ``seed`` if given), written into ``folder``."""
    recipe_text = (RECIPES / f"{family}.yaml").read_text(encoding="utf-8")
    lines = []
    for line in recipe_text.splitlines():
        if line.startswith(("  max_minutes:", "  seed:")):
            continue
        lines.append(f"  epochs: {epochs}" if line.startswith("  epochs:") else line)
        if line == "train:" and seed is not None:
            lines.append(f"  seed: {seed}")
    suffix = f"_seed{seed}" if seed is not None else ""
    recipe = folder / f"{family}_{epochs}_epochs{suffix}.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return recipe


DDP_MODES = ("single", "torchrun2")


def measure_ddp(
    family: str, epochs: int, modes: list[str], earlier: dict | None, seed: int | None = None
) -> dict:
    """The same recipe, ``epochs`` epochs without a time budget, in one process and under
    torchrun with 2: the same updates, so the same quality is expected (and the speeds).
    With an ``earlier`` result of the same epochs, the new runs join its runs (for the
    spread over seeds: ``seed``); otherwise they replace it."""
    recipe = fixed_epochs_recipe(family, epochs, WORK / "ddp", seed)
    if earlier is not None and earlier["epochs"] != epochs:
        earlier = None
    result = {"family": family, "date": common.today(), "epochs": epochs}
    for mode in DDP_MODES:
        runs = earlier[f"{mode}_runs"] if earlier is not None else []
        if mode in modes:
            name = f"{family}_{epochs}ep_{mode}" + (f"_{len(runs) + 1}" if runs else "")
            run = measure_accuracy(family, mode != "single", recipe, name)
            if seed is not None:
                run["note"] = f"train.seed {seed}"
            runs = [*runs, run]
        result[f"{mode}_runs"] = runs
    return result


def measure_throughput(family: str, epochs: int) -> dict:
    recipe = fixed_epochs_recipe(family, epochs, WORK / "throughput")
    result: dict = {"family": family, "date": common.today(), "commit": common.git_commit()}
    for mode, distributed in (("single", False), ("torchrun2", True)):
        exp = WORK / "throughput" / f"exp_{family}_{mode}"
        print(f"== {family}: {epochs} epochs, {mode}", flush=True)
        train(recipe, exp, WORK / "throughput" / f"{family}_{mode}.log", distributed)
        speeds = epoch_speeds(read_log(exp))
        checkpoints = sorted(p.name for p in (exp / "checkpoints").glob("epoch*.pt"))
        if len(speeds) != epochs or len(checkpoints) != epochs:
            sys.exit(f"an4_training: {exp}: expected {epochs} epochs and checkpoints")
        result[mode] = statistics.median(speeds[1:] or speeds)
        shutil.rmtree(exp)
    return result


def load_results(part: str) -> dict[str, dict]:
    results = {}
    for family in FAMILIES:
        path = FIGURES / part / f"{family}.json"
        if path.is_file():
            results[family] = json.loads(path.read_text(encoding="utf-8"))
    return results


def save_result(part: str, result: dict) -> None:
    path = FIGURES / part / f"{result['family']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


def section() -> str:
    accuracy = load_results("accuracy")
    throughput = load_results("throughput")
    ddp = load_results("ddp")
    lines = [
        "## AN4: recognizers trained from scratch on this CPU (issue 3)\n",
        common.header(common.this_command()),
        "- Data: CMU AN4 via `onsei prepare an4` (train 857 utterances / 38 min, dev 91, test "
        "130 utterances from 10 speakers unseen in training); characters; 80 log-mel, "
        "speed perturbation 0.9/1.0/1.1, SpecAugment.",
        "- Each family: one run of `onsei train recipes/an4/<family>.yaml` with the recipe's "
        "55-minute budget (stops after the epoch in which it runs out), final model = average of "
        "the best 5 epochs by dev WER; test decoded with greedy search (`onsei eval`). "
        "Targets: best family at or below 10% WER, every family below 20%. Anchor: ESPnet's AN4 "
        "Transformer, 7.4% WER / 3.6% CER with joint CTC/attention beam search (beam 10) and an "
        "LM, 200 GPU epochs.",
        "- One training run per family (an hour each), not a median. Training in one process "
        "is deterministic here (a rerun of the ddp mode's 30 epochs gave every dev loss "
        "again), but a rerun of a 55-minute budget may stop at another epoch, and another "
        "`train.seed` gives other figures.",
        "- Each row was measured by `.venv/bin/python benchmarks/an4_training.py accuracy "
        "--families <family>`; the command above only rebuilt this section from the saved "
        "figures.\n",
    ]
    if accuracy:
        rows = []
        for family, r in accuracy.items():
            rows.append(
                [
                    LABELS[family],
                    f"`{family}.yaml`",
                    f"{r['parameters'] / 1e6:.1f} M",
                    r["epochs"],
                    r["train_minutes"],
                    common.fmt_pct(r["best_dev_wer"]),
                    f"**{common.fmt_pct(r['test_wer'])}**",
                    common.fmt_pct(r["test_cer"]),
                    f"{r['audio_per_s']:.0f}",
                    f"{r['decode_rtf']:.3f}",
                    f"{r['date']} ({r['commit']})",
                ]
            )
        headers = [
            "Family",
            "Recipe",
            "Params",
            "Epochs",
            "Train min",
            "Dev WER",
            "Test WER",
            "Test CER",
            "Train audio s/s",
            "Decode RTF",
            "Trained (commit)",
        ]
        lines.append(common.markdown_table(headers, rows))
    for family, r in accuracy.items():
        if r.get("note"):
            lines.append(f"- {LABELS[family]}: {r['note']}")
    lines.append("")
    missing = [LABELS[f] for f in FAMILIES if f not in accuracy]
    if missing:
        lines.append(f"Not measured yet: {', '.join(missing)}.\n")
    if throughput:
        lines.append(
            "### Training throughput: one process vs torchrun with 2 processes\n\n"
            "Seconds of training audio per wall-clock second, median over the epochs after the "
            "first of a short run of each recipe (`throughput` mode). On this 2-core machine "
            "the one process already uses both cores (2 torch threads), so DDP's gain is the "
            "gain of data parallelism over intra-op threading, less gradient all-reduce. "
            "Under torchrun each process computes half of every batch (`max_batch_seconds` is "
            "the batch of one update), so both columns make the same updates"
            + (
                "; rows without a commit were measured before that, when each process trained "
                "on whole batches of the recipe's size"
                if any("commit" not in r for r in throughput.values())
                else ""
            )
            + ". The machine's speed changes from day to day: compare the columns of a row, "
            "not rows of different dates.\n"
        )
        rows = [
            [
                LABELS[f],
                f"{r['single']:.0f}",
                f"{r['torchrun2']:.0f}",
                # figures rebuilt from an older RESULTS.md keep its unrounded ratio
                f"{r.get('ratio', r['torchrun2'] / r['single']):.2f}x",
                f"{r['date']} ({r['commit']})" if r.get("commit") else r["date"],
            ]
            for f, r in throughput.items()
        ]
        headers = ["Family", "1 process", "torchrun, 2 processes", "Ratio", "Date (commit)"]
        lines.append(common.markdown_table(headers, rows))
    if ddp:
        lines.append(
            "\n### Quality under torchrun: the same recipe in one process and in two\n\n"
            "`ddp` mode: the recipe with a fixed number of epochs and no time budget, trained "
            "in one process and under `torchrun --nproc_per_node 2` (each process computes "
            "half of every batch, so the updates are those of one process), on the same "
            "machine, all decoded greedily on AN4 test; a cell lists every run (`--add` "
            "adds runs, `--seed` sets `train.seed`: the spread over seeds).\n"
        )
        rows = []
        for f, r in ddp.items():
            one, two = r["single_runs"], r["torchrun2_runs"]
            rows.append(
                [
                    LABELS[f],
                    r["epochs"],
                    _runs_cell(one, two, "test_wer", bold=True),
                    _runs_cell(one, two, "test_cer"),
                    _runs_cell(one, two, "best_dev_wer"),
                    _runs_cell(one, two, "train_minutes", str),
                    _runs_cell(one, two, "audio_per_s", lambda x: f"{x:.0f}"),
                    f"{r['date']} ({', '.join(sorted({x['commit'] for x in one + two}))})",
                ]
            )
        headers = [
            "Family",
            "Epochs",
            "Test WER, 1 / 2 processes",
            "Test CER",
            "Best dev WER",
            "Minutes",
            "Train audio s/s",
            "Trained (commit)",
        ]
        lines.append(common.markdown_table(headers, rows))
        for f, r in ddp.items():
            for mode, label in (("single", "one process"), ("torchrun2", "torchrun")):
                for number, run in enumerate(r[f"{mode}_runs"], 1):
                    if run.get("note"):
                        lines.append(f"- {LABELS[f]}, {label}, run {number}: {run['note']}")
    return "\n".join(lines)


def _runs_cell(
    one: list[dict], two: list[dict], key: str, form=common.fmt_pct, bold: bool = False
) -> str:
    """``key`` of every one-process run, then of every torchrun run: ``a, b / c``."""
    mark = "**" if bold else ""
    return " / ".join(", ".join(f"{mark}{form(x[key])}{mark}" for x in side) for side in (one, two))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("accuracy", "ddp", "throughput", "report"))
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--again", action="store_true", help="re-measure families already done")
    parser.add_argument(
        "--epochs", type=int, default=None, help="epochs per run (throughput: 3, ddp: 30)"
    )
    parser.add_argument(
        "--modes", nargs="+", choices=DDP_MODES, default=list(DDP_MODES), help="ddp: which runs"
    )
    parser.add_argument(
        "--add", action="store_true", help="ddp: add the runs to those measured before"
    )
    parser.add_argument("--seed", type=int, default=None, help="ddp: the recipe's train.seed")
    args = parser.parse_args()
    prepare_data()
    if args.part != "report":
        done = load_results(args.part)
        for family in args.families:
            if family in done and not (args.again or args.add):
                print(f"== {family}: measured on {done[family]['date']} (--again to redo)")
                continue
            if args.part == "ddp":
                earlier = done.get(family) if args.add else None
                result = measure_ddp(family, args.epochs or 30, args.modes, earlier, args.seed)
            elif args.part == "accuracy":
                result = measure_accuracy(family)
            else:
                result = measure_throughput(family, args.epochs or 3)
            save_result(args.part, result)
            common.write_section("an4_training", section())
    common.write_section("an4_training", section())


if __name__ == "__main__":
    main()
