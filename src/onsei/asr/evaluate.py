"""``onsei eval`` of a trained model: decode a manifest in batches, score WER/CER, time it."""

from __future__ import annotations

import os
import time

from onsei.asr.recognizer import load_trained_model
from onsei.asr.search import Searcher, SearchOptions
from onsei.data.batching import BucketBatchSampler, SpeechDataset, collate
from onsei.data.manifest import read_manifest
from onsei.scoring import EvalReport, score


def evaluate(
    exp_dir: str | os.PathLike,
    manifest: str | os.PathLike,
    *,
    device: str = "cpu",
    max_batch_seconds: float = 60.0,
    search: SearchOptions | None = None,
    normalizer: str = "plain",
) -> EvalReport:
    """Decode every utterance of ``manifest`` (greedy unless ``search`` says otherwise) and
    score it; references are lower-cased first when the model's tokenizer lower-cases."""
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
    return score(
        utterances,
        hypotheses,
        normalizer=normalizer,
        decode_seconds=time.perf_counter() - started,
        lowercase_references=getattr(tokenizer, "lowercase", False),
    )
