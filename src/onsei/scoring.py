"""Scoring a model's transcripts of a manifest: normalised WER/CER, the scoring table, speed,
and the report files (scores.md, hyp.txt, ref.txt, alignments.txt)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from onsei.data.manifest import Utterance
from onsei.files import atomic_write_text
from onsei.metrics import TABLE_HEADER, ErrorCounts, error_counts
from onsei.text.normalizers import get_normalizer


@dataclass
class EvalReport:
    words: ErrorCounts
    chars: ErrorCounts
    audio_seconds: float
    decode_seconds: float
    normalizer: str = "plain"
    results: list[tuple[str, str, str]] = field(default_factory=list)
    """(utterance id, reference, hypothesis) in manifest order, both normalised (as scored)."""
    raw_hypotheses: dict[str, str] = field(default_factory=dict)
    """The model's own text of each utterance, before normalisation."""

    @property
    def real_time_factor(self) -> float:
        return self.decode_seconds / max(self.audio_seconds, 1e-9)

    def table(self) -> str:
        return "\n".join([TABLE_HEADER, self.words.table_row("word"), self.chars.table_row("char")])

    def summary(self) -> str:
        return (
            f"WER {100 * self.words.rate:.2f}%  CER {100 * self.chars.rate:.2f}% "
            f"({self.normalizer} normalizer)  decoded {self.audio_seconds:.0f} s of audio in "
            f"{self.decode_seconds:.1f} s (RTF {self.real_time_factor:.3f})"
        )


def score(
    utterances: Sequence[Utterance],
    hypotheses: Mapping[str, str],
    *,
    normalizer: str = "plain",
    decode_seconds: float = 0.0,
    lowercase_references: bool = False,
) -> EvalReport:
    """Score ``hypotheses`` (by utterance id) against the manifest's references, each side
    normalised by ``normalizer`` (see ``onsei.text.normalizers``)."""
    normalize = get_normalizer(normalizer)
    results = []
    for u in utterances:
        reference = u.text.lower() if lowercase_references else u.text
        results.append((u.id, normalize(reference), normalize(hypotheses[u.id])))
    references = [r for _, r, _ in results]
    predicted = [h for _, _, h in results]
    return EvalReport(
        words=error_counts(references, predicted, "word"),
        chars=error_counts(references, predicted, "char"),
        audio_seconds=sum(u.duration for u in utterances),
        decode_seconds=decode_seconds,
        normalizer=normalizer,
        results=results,
        raw_hypotheses={u.id: hypotheses[u.id] for u in utterances},
    )


def write_report(report: EvalReport, directory: str | os.PathLike) -> Path:
    """Write scores.md, hyp.txt (normalised), hyp_raw.txt, ref.txt and alignments.txt
    (per utterance) into ``directory``."""
    import jiwer

    directory = Path(directory)
    atomic_write_text(directory / "scores.md", report.table() + "\n" + report.summary() + "\n")
    atomic_write_text(directory / "hyp.txt", "".join(f"{i} {h}\n" for i, _, h in report.results))
    raw = "".join(f"{i} {' '.join(h.split())}\n" for i, h in report.raw_hypotheses.items())
    atomic_write_text(directory / "hyp_raw.txt", raw)
    atomic_write_text(directory / "ref.txt", "".join(f"{i} {r}\n" for i, r, _ in report.results))
    blocks = []
    for utterance_id, reference, hypothesis in report.results:
        if reference.split():
            output = jiwer.process_words(reference, hypothesis)
            alignment = jiwer.visualize_alignment(output, show_measures=False, skip_correct=False)
            alignment = alignment.split("\n\n", 1)[-1].rstrip()  # drop "=== SENTENCE 1 ==="
        else:
            alignment = f"REF: \nHYP: {hypothesis}"
        blocks.append(f"{utterance_id}\n{alignment}\n")
    atomic_write_text(directory / "alignments.txt", "\n".join(blocks))
    return directory
