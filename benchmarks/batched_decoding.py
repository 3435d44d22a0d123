"""Batched Whisper decoding: onsei's ``batch_size`` against faster-whisper's
``BatchedInferencePipeline``, side by side in one run, on long_form.py's 10-minute recording.

Variants (tiny.en, beam 5, batch 8, 2 threads, int8, each run in a fresh process, model load
not timed):

- onsei ``batch_size=8`` with its defaults: without timestamps (one segment per speech
  chunk, as faster-whisper's pipeline by default), speech chunks of its VAD options
  (faster-whisper's ``VadOptions``: ``min_silence_duration_ms`` 2000);
- onsei ``batch_size=8, without_timestamps=False``: segment timestamps within chunks;
- onsei ``batch_size=8`` with the VAD options faster-whisper's pipeline takes when given
  none (``min_silence_duration_ms`` 160);
- onsei ``batch_size=8`` in one lane (``onsei.whisper.engine.BATCH_LANES = 1``): one batch at
  a time on both threads, as faster-whisper's pipeline runs, instead of two batches at a time
  on one thread each;
- onsei's two lanes doing the pipeline's work only (no chunk decoded again, no word
  timestamps to cut sentences; not a user setting): what the lanes alone gain at the
  pipeline's WER;
- faster-whisper's ``BatchedInferencePipeline.transcribe`` with its defaults.

WER with onsei's ``spelled`` normaliser against the recording's transcript (decoding is at
temperature 0, so the text is the same in every run); time is the median of ``--runs``.

Usage: .venv/bin/python benchmarks/batched_decoding.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import common
import long_form

MODEL = "tiny.en"
BATCH = 8
ONE_LANE = "onsei, one lane"
PIPELINE_WORK = "onsei's lanes, the pipeline's work"
VARIANTS: dict[str, dict] = {
    "onsei": {},
    "onsei with timestamps": {"without_timestamps": False},
    "onsei, the pipeline's VAD options": {"vad_parameters": {"min_silence_duration_ms": 160}},
    ONE_LANE: {},
    PIPELINE_WORK: {},
    "faster-whisper": {},
}
FIGURES = common.FIGURES_DIR / "batched_decoding.json"


def transcribe(variant: str) -> tuple[float, str, int]:
    """Load the model, then (timed) transcribe the recording: (seconds, text, segments)."""
    if variant == ONE_LANE:
        import onsei.whisper.engine

        onsei.whisper.engine.BATCH_LANES = 1
    if variant == PIPELINE_WORK:
        return _lanes_alone()
    if variant.startswith("onsei"):
        seconds, transcript = long_form.onsei_transcript(
            MODEL, batch_size=BATCH, **VARIANTS[variant]
        )
        return seconds, transcript.text, len(transcript.segments)
    seconds, segments = long_form.faster_whisper_segments(MODEL, batched=True)
    return seconds, "".join(s.text for s in segments), len(segments)


def _lanes_alone() -> tuple[float, str, int]:
    """onsei's pipeline in its two lanes, no chunk ever failing, without word timestamps."""
    import onsei
    import onsei.whisper.batched
    from onsei.whisper.batched import FallbackBatchedPipeline

    recognizer = onsei.load_model(MODEL, device="cpu", threads=long_form.THREADS)
    onsei.whisper.batched.chunk_fails = lambda *args: False
    started = time.perf_counter()
    engine, lanes = recognizer._batch_engine
    segments, _ = FallbackBatchedPipeline(engine, [0.0], lanes).transcribe(
        str(long_form.RECORDING), beam_size=long_form.BEAM, batch_size=BATCH
    )
    segments = list(segments)
    return time.perf_counter() - started, "".join(s.text for s in segments), len(segments)


def run_variant(variant: str) -> dict:
    """One timed run of ``variant`` in a fresh process."""
    env = dict(os.environ, OMP_NUM_THREADS=str(long_form.THREADS))
    return common.run_json_worker([common.PYTHON, __file__, "--worker", variant], env)


def measure(runs: int) -> dict:
    long_form.build_recording()
    outcomes: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for run in range(runs):  # interleaved, so that load on the machine hits them alike
        for variant in VARIANTS:
            outcome = run_variant(variant)
            print(f"run {run + 1}: {variant}: {outcome['seconds']:.1f} s", flush=True)
            outcomes[variant].append(outcome)
    return {
        "date": common.today(),
        "commit": common.git_commit(),
        "variants": {
            variant: {
                "seconds": common.median(o["seconds"] for o in results),
                "runs": [round(o["seconds"], 2) for o in results],
                "wer": long_form.wer(results[0]["text"]),
                "segments": results[0]["segments"],
                "peak_rss_mb": max(o["peak_mb"] for o in results),
            }
            for variant, results in outcomes.items()
        },
    }


def section(figures: dict) -> str:
    pipeline = figures["variants"]["faster-whisper"]["seconds"]
    rows = [
        [
            variant,
            f"**{f['seconds']:.1f}**",
            " / ".join(f"{s:.1f}" for s in f["runs"]),
            f"{pipeline / f['seconds']:.2f}x",
            common.fmt_pct(f["wer"]),
            f["segments"],
            f["peak_rss_mb"],
        ]
        for variant, f in figures["variants"].items()
    ]
    return (
        "## Batched Whisper decoding: onsei vs faster-whisper's BatchedInferencePipeline "
        "(issue 5)\n\n"
        + common.header(common.this_command())
        + f"- Input: long_form's 10-minute recording; {MODEL}, beam {long_form.BEAM}, batch "
        f"{BATCH}, {long_form.THREADS} threads, int8, one process per run, model load not "
        "timed; median of the runs. WER with the `spelled` normaliser. Target: onsei at "
        "least 1.1x faster than faster-whisper's pipeline at equal WER.\n\n"
        + common.markdown_table(
            ["Variant", "Seconds", "Runs", "vs faster-whisper", "WER", "Segments", "Peak RSS MB"],
            rows,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", default=None, choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        seconds, text, segments = transcribe(args.worker)
        peak_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(
            json.dumps({"seconds": seconds, "text": text, "segments": segments, "peak_mb": peak_mb})
        )
        return
    figures = measure(args.runs)
    FIGURES.write_text(json.dumps(figures, indent=1) + "\n")
    common.write_section("batched_decoding", section(figures))


if __name__ == "__main__":
    main()
