"""Word and character error rates with the usual scoring table (jiwer does the alignment)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ErrorCounts:
    """Alignment counts of hypotheses against references (words or characters)."""

    sentences: int = 0
    reference_units: int = 0
    correct: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    sentence_errors: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Errors per reference unit (WER or CER), as a fraction."""
        return self.errors / max(self.reference_units, 1)

    def table_row(self, name: str) -> str:
        n = max(self.reference_units, 1)
        cells = [
            f"{self.sentences}",
            f"{self.reference_units}",
            f"{100 * self.correct / n:.1f}",
            f"{100 * self.substitutions / n:.1f}",
            f"{100 * self.deletions / n:.1f}",
            f"{100 * self.insertions / n:.1f}",
            f"{100 * self.rate:.1f}",
            f"{100 * self.sentence_errors / max(self.sentences, 1):.1f}",
        ]
        return f"| {name} | " + " | ".join(cells) + " |"


TABLE_HEADER = (
    "| unit | Snt | Wrd | Corr | Sub | Del | Ins | Err | S.Err |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def error_counts(references: list[str], hypotheses: list[str], unit: str = "word") -> ErrorCounts:
    """Align each hypothesis with its reference; ``unit`` is "word" or "char" (spaces kept)."""
    import jiwer

    counts = ErrorCounts()
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        if unit == "char":
            reference, hypothesis = " ".join(reference.split()), " ".join(hypothesis.split())
            result = jiwer.process_characters(reference or " ", hypothesis or " ")
            length = len(reference)
        else:
            if not reference.split():
                counts.sentences += 1
                counts.insertions += len(hypothesis.split())
                counts.sentence_errors += int(bool(hypothesis.split()))
                continue
            result = jiwer.process_words(reference, hypothesis or "")
            length = len(reference.split())
        counts.sentences += 1
        counts.reference_units += length
        counts.correct += result.hits
        counts.substitutions += result.substitutions
        counts.deletions += result.deletions
        counts.insertions += result.insertions
        counts.sentence_errors += int(
            result.substitutions + result.deletions + result.insertions > 0
        )
    return counts
