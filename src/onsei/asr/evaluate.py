"""``onsei eval``: decode a manifest with a trained model, score WER/CER, time the decoding."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from onsei.asr.recognizer import load_trained_model
from onsei.asr.search import Searcher, SearchOptions
from onsei.data.batching import BucketBatchSampler, SpeechDataset, collate
from onsei.data.manifest import read_manifest
from onsei.files import atomic_write_text
from onsei.metrics import TABLE_HEADER, ErrorCounts, error_counts


@dataclass
class EvalReport:
    words: ErrorCounts
    chars: ErrorCounts
    audio_seconds: float
    decode_seconds: float
    results: list[tuple[str, str, str]] = field(default_factory=list)
    """(utterance id, reference, hypothesis) in manifest order."""

    @property
    def real_time_factor(self) -> float:
        return self.decode_seconds / max(self.audio_seconds, 1e-9)

    def table(self) -> str:
        return "\n".join([TABLE_HEADER, self.words.table_row("word"), self.chars.table_row("char")])


def evaluate(
    exp_dir: str | os.PathLike,
    manifest: str | os.PathLike,
    *,
    device: str = "cpu",
    max_batch_seconds: float = 60.0,
    search: SearchOptions | None = None,
) -> EvalReport:
    """Decode every utterance of ``manifest`` (greedy unless ``search`` says otherwise);
    references are compared as given (lower-cased when the model's tokenizer lower-cases)."""
    model, tokenizer = load_trained_model(exp_dir, device)
    searcher = Searcher(model, tokenizer.symbols(), search or SearchOptions())
    utterances = read_manifest(manifest)
    dataset = SpeechDataset(utterances, tokenizer.encode)
    sampler = BucketBatchSampler([u.duration for u in utterances], max_batch_seconds, shuffle=False)
    hypotheses: dict[str, str] = {}
    started = time.perf_counter()
    for indices in sampler:
        batch = collate([dataset[i] for i in indices]).to(device)
        decoded = searcher.recognize(batch.waveforms, batch.waveform_lengths)
        for utterance_id, best in zip(batch.ids, decoded, strict=True):
            hypotheses[utterance_id] = tokenizer.decode(best.tokens)
    decode_seconds = time.perf_counter() - started
    lowercase = getattr(tokenizer, "lowercase", False)
    results = []
    for u in utterances:
        reference = " ".join(u.text.split())
        results.append((u.id, reference.lower() if lowercase else reference, hypotheses[u.id]))
    references = [r for _, r, _ in results]
    predicted = [h for _, _, h in results]
    return EvalReport(
        words=error_counts(references, predicted, "word"),
        chars=error_counts(references, predicted, "char"),
        audio_seconds=sum(u.duration for u in utterances),
        decode_seconds=decode_seconds,
        results=results,
    )


def write_report(report: EvalReport, directory: str | os.PathLike) -> Path:
    """Write scores.md, hyp.txt, ref.txt and alignments.txt (per utterance) into ``directory``."""
    import jiwer

    directory = Path(directory)
    atomic_write_text(directory / "scores.md", report.table() + "\n")
    atomic_write_text(directory / "hyp.txt", "".join(f"{i} {h}\n" for i, _, h in report.results))
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
