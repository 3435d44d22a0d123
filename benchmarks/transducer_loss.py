"""RNN-T loss: onsei's plain-PyTorch loss vs warprnnt-numba's CPU loss, side by side.

Exactness: onsei's loss against a brute-force sum over every alignment (float64, tiny cases).
Speed and memory: forward + backward for B=8, T=200, U=50, V=500 (float32 logits), each
implementation in its own subprocess (so peak memory is its own): one untimed warm-up (numba
compiles its kernels then), then the median of several timed runs; peak memory is the growth
of the process's maximum resident set size above what the inputs already take.

warprnnt-numba is installed only for this benchmark, without its dependencies:
    .venv/bin/pip install --no-deps warprnnt-numba numba llvmlite

Usage: .venv/bin/python benchmarks/transducer_loss.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import common
import torch

SHAPE = {"B": 8, "T": 200, "U": 50, "V": 500}
IMPLEMENTATIONS = ("onsei", "warprnnt-numba")


def inputs() -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    b, t, u, v = SHAPE["B"], SHAPE["T"], SHAPE["U"], SHAPE["V"]
    logits = torch.randn(b, t, u + 1, v, requires_grad=True)
    labels = torch.randint(1, v, (b, u), dtype=torch.int32)
    return (
        logits,
        labels,
        torch.full((b,), t, dtype=torch.int32),
        torch.full((b,), u, dtype=torch.int32),
    )


def loss_function(name: str):
    if name == "onsei":
        from onsei.losses.transducer import transducer_loss

        return lambda x, y, xl, yl: transducer_loss(x, y, xl, yl, blank=0, reduction="sum")
    from warprnnt_numba import RNNTLossNumba

    numba_loss = RNNTLossNumba(blank=0, reduction="sum")
    return lambda x, y, xl, yl: numba_loss(x, y, xl, yl)


def worker(name: str, runs: int) -> None:
    """Measure one implementation in this process; print a JSON line."""
    logits, labels, lengths, label_lengths = inputs()
    function = loss_function(name)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, value = [], None
    for run in range(runs + 1):
        logits.grad = None
        started = time.perf_counter()
        loss = function(logits, labels, lengths, label_lengths)
        loss.backward()
        elapsed = time.perf_counter() - started
        if run > 0:  # the first run is the warm-up
            times.append(elapsed)
        value = float(loss)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "name": name,
                "times": times,
                "loss": value,
                "grad_sum": float(logits.grad.abs().sum()),
                "peak_mib": (peak - baseline) / 1024,
            }
        )
    )


def exactness() -> float:
    """Largest |onsei - brute force| over tiny float64 cases."""
    sys.path.insert(0, str(common.REPO_DIR / "tests"))
    from test_transducer_loss import brute_force_nll

    from onsei.losses.transducer import transducer_loss

    worst = 0.0
    for frames, labels, vocab in [(1, 2, 3), (3, 2, 4), (4, 3, 5), (5, 1, 2), (6, 3, 4)]:
        torch.manual_seed(frames * 7 + labels)
        logits = torch.randn(1, frames, labels + 1, vocab, dtype=torch.float64)
        targets = torch.randint(1, vocab, (1, labels))
        ours = transducer_loss(logits, targets, torch.tensor([frames]), torch.tensor([labels]))
        worst = max(
            worst, abs(ours.item() - brute_force_nll(logits[0], targets[0].tolist()).item())
        )
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--worker", choices=IMPLEMENTATIONS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.runs)
        return
    results = {}
    for name in IMPLEMENTATIONS:
        output = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--runs", str(args.runs)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
        print(name, results[name], flush=True)
    worst = exactness()
    rows = [
        (
            name,
            f"{common.median(r['times']) * 1000:.0f}",
            f"{min(r['times']) * 1000:.0f}",
            f"{r['peak_mib']:.0f}",
            f"{r['loss']:.2f}",
        )
        for name, r in results.items()
    ]
    table = common.markdown_table(
        [
            "implementation",
            f"median ms (of {args.runs})",
            "min ms",
            "peak memory MiB above inputs",
            "loss (sum)",
        ],
        rows,
    )
    relative = abs(results["onsei"]["loss"] - results["warprnnt-numba"]["loss"]) / abs(
        results["warprnnt-numba"]["loss"]
    )
    body = (
        "## RNN-T loss: onsei (plain PyTorch) vs warprnnt-numba (CPU)\n\n"
        + common.header(common.this_command())
        + f"- Shape: B={SHAPE['B']}, T={SHAPE['T']}, U={SHAPE['U']}, V={SHAPE['V']}, float32 "
        "logits (163 MiB), every utterance full length; forward + backward, reduction sum; "
        "each implementation in its own process, one untimed warm-up first; torch default "
        "threads.\n"
        f"- Exactness: largest |onsei - brute-force sum over all alignments| on five tiny "
        f"float64 cases: {worst:.1e} (target 1e-6).\n"
        f"- The two losses agree to a relative {relative:.1e} on the benchmark inputs.\n\n" + table
    )
    common.write_section("transducer_loss", body)
    print(f"wrote {common.RESULTS}")


if __name__ == "__main__":
    main()
