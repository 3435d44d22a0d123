"""The training metric log: JSON lines, and TensorBoard scalars when tensorboard is installed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onsei.asr.metric_log import MetricLog


def test_records_are_json_lines_with_a_timestamp(tmp_path: Path):
    log = MetricLog(tmp_path / "log.jsonl")
    log.write({"epoch": 1, "step": 25, "loss": 3.5})
    log.write({"epoch": 1, "step": 25, "wer": 0.5}, "dev")
    log.close()
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [25, 25] and records[1]["wer"] == 0.5
    assert all(r["time"] > 1e9 for r in records)


def test_numbers_also_go_to_tensorboard_when_it_is_installed(tmp_path: Path):
    pytest.importorskip("tensorboard", reason="tensorboard is optional and not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = MetricLog(tmp_path / "log.jsonl", tmp_path / "tensorboard")
    log.write({"epoch": 1, "step": 25, "loss": 3.5, "skipped": ["a"]})
    log.write({"epoch": 1, "step": 25, "wer": 0.5}, "dev")
    log.close()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["dev/wer", "train/loss"]
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(25, 3.5)]
