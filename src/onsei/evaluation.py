"""``onsei eval``: score any model, Whisper or trained, on a manifest.

Trained models decode the manifest in batches (``onsei.asr.evaluate``); Whisper models
transcribe it one utterance at a time through the normal engine, with the options of
``onsei transcribe``. Both are scored by ``onsei.scoring`` with the same normaliser.
"""

from __future__ import annotations

import os
import time
from typing import Any

from onsei.data.manifest import ManifestError, read_manifest
from onsei.errors import AudioError
from onsei.recognizer import Recognizer, is_trained_experiment, load_model
from onsei.scoring import EvalReport, score


def evaluate_model(
    model: str,
    manifest: str | os.PathLike,
    *,
    device: str = "auto",
    normalizer: str = "plain",
    options: dict[str, Any] | None = None,
) -> EvalReport:
    """Decode and score ``manifest`` with ``model`` (a name or directory, as ``load_model``).

    ``options``: for a trained model, the ``SearchOptions`` keywords (greedy by default); for
    Whisper, ``transcribe`` keywords (an utterance's own ``language`` in the manifest, if any,
    comes before ``options['language']``).
    """
    options = dict(options or {})
    if is_trained_experiment(model):
        from onsei.asr.evaluate import evaluate
        from onsei.asr.search import SearchOptions

        return evaluate(
            model,
            manifest,
            device="cpu" if device == "auto" else device,
            search=SearchOptions.from_kwargs(**options),
            normalizer=normalizer,
        )
    return evaluate_recognizer(
        load_model(model, device=device), manifest, normalizer=normalizer, options=options
    )


def evaluate_recognizer(
    recognizer: Recognizer,
    manifest: str | os.PathLike,
    *,
    normalizer: str = "plain",
    options: dict[str, Any] | None = None,
) -> EvalReport:
    """Transcribe each utterance of ``manifest`` with ``recognizer`` and score the texts.

    Raises:
        ManifestError: an utterance's audio cannot be read (naming its manifest line).
    """
    utterances = read_manifest(manifest)
    options = dict(options or {})
    hypotheses: dict[str, str] = {}
    started = time.perf_counter()
    for u in utterances:
        language = u.language or options.get("language")
        try:
            transcript = recognizer.transcribe(u.audio, **{**options, "language": language})
        except AudioError as error:
            raise ManifestError(f"{manifest}:{u.line}: {error}") from None
        hypotheses[u.id] = transcript.text
    return score(
        utterances, hypotheses, normalizer=normalizer, decode_seconds=time.perf_counter() - started
    )
