"""Training metrics: one JSON object per line in ``log.jsonl``, mirrored to TensorBoard
(``EXP/tensorboard``) when the ``tensorboard`` package is installed."""

from __future__ import annotations

import json
import time
from numbers import Real
from pathlib import Path
from typing import Any


class MetricLog:
    def __init__(self, path: Path, tensorboard_dir: Path | None = None):
        self.path = path
        self.writer = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                pass
            else:
                self.writer = SummaryWriter(str(tensorboard_dir))

    def write(self, record: dict[str, Any], prefix: str = "train") -> None:
        """Append ``record`` (with a timestamp); its numbers go to TensorBoard at its
        ``step``, under ``prefix/name``."""
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps({"time": round(time.time(), 1), **record}) + "\n")
        if self.writer is None:
            return
        step = int(record.get("step", 0))
        for name, value in record.items():
            if name not in ("step", "epoch") and isinstance(value, Real):
                self.writer.add_scalar(f"{prefix}/{name}", float(value), step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
