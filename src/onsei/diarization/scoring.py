"""Diarization error rate with pyannote.metrics: missed speech, false alarm and speaker
confusion, over the reference speech time, optionally within a UEM and with a collar."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from onsei.transcript import Turn
from onsei.writers.rttm import RTTMError, text_lines


@dataclass
class DERReport:
    total: float
    """Reference speech (seconds, counted once per speaker)."""
    missed: float
    false_alarm: float
    confusion: float
    files: dict[str, float] = field(default_factory=dict)
    """DER of each file."""

    @property
    def der(self) -> float:
        return (self.missed + self.false_alarm + self.confusion) / max(self.total, 1e-9)

    def lines(self) -> list[str]:
        def share(seconds: float) -> str:
            return f"{100 * seconds / max(self.total, 1e-9):.1f}%"

        return [
            f"DER {100 * self.der:.1f}%",
            f"missed speech {share(self.missed)}, false alarm {share(self.false_alarm)}, "
            f"speaker confusion {share(self.confusion)} of {self.total:.1f} s of reference speech",
            *(f"{uri}: DER {100 * value:.1f}%" for uri, value in sorted(self.files.items())),
        ]


def _annotation(turns: list[Turn], uri: str):
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    for index, turn in enumerate(turns):
        annotation[Segment(turn.start, turn.end), index] = turn.speaker
    return annotation.support()  # a speaker's overlapping turns count once, as in md-eval


def read_uem(path: str | os.PathLike) -> dict[str, list[tuple[float, float]]]:
    """``uri channel start end`` lines -> the scored regions of each file (lines starting
    with ``;`` are comments).

    Raises:
        RTTMError: naming the line of a malformed or empty region, or a missing file.
    """
    regions: dict[str, list[tuple[float, float]]] = {}
    for number, line in enumerate(text_lines(path), 1):
        fields = line.split()
        if not fields or fields[0].startswith(";"):
            continue
        try:
            start, end = float(fields[2]), float(fields[3])
        except (IndexError, ValueError):
            raise RTTMError(f"{path}:{number}: expected 'uri channel start end'") from None
        if not (math.isfinite(start) and math.isfinite(end)) or not 0 <= start < end:
            raise RTTMError(f"{path}:{number}: a region must have 0 <= start < end")
        regions.setdefault(fields[0], []).append((start, end))
    return regions


def score_diarization(
    references: dict[str, list[Turn]],
    hypotheses: dict[str, list[Turn]],
    *,
    collar: float = 0.0,
    skip_overlap: bool = False,
    uem: dict[str, list[tuple[float, float]]] | None = None,
) -> DERReport:
    """DER of every reference file (a file without hypothesis turns: all missed).

    ``collar``: seconds around each reference boundary left out of scoring, in all (the
    pyannote.metrics convention: 0.25 is 0.125 s either side; md-eval's "0.25" is 0.5 here).
    """
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar, skip_overlap=skip_overlap)
    files = {}
    for uri, turns in references.items():
        regions = (uem or {}).get(uri)
        scored = Timeline([Segment(a, b) for a, b in regions], uri=uri) if regions else None
        reference = _annotation(turns, uri)
        hypothesis = _annotation(hypotheses.get(uri, []), uri)
        files[uri] = metric(reference, hypothesis, uem=scored)
    totals = metric.accumulated_  # the components summed over the files
    return DERReport(
        total=totals["total"],
        missed=totals["missed detection"],
        false_alarm=totals["false alarm"],
        confusion=totals["confusion"],
        files=files,
    )
