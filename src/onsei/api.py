"""The one-liner: ``onsei.transcribe(path, **options)``."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from onsei.audio import AudioSource
from onsei.recognizer import Recognizer, load_model
from onsei.transcript import Transcript


@lru_cache(maxsize=2)
def _cached_model(name: str | None, device: str, compute_type: str, threads: int) -> Recognizer:
    return load_model(name, device=device, compute_type=compute_type, threads=threads)


def transcribe(
    audio: AudioSource,
    model: str | None = None,
    *,
    device: str = "auto",
    compute_type: str = "default",
    threads: int = 0,
    **options: Any,
) -> Transcript:
    """Transcribe ``audio`` with ``model`` (default "base"); the model stays loaded for reuse.

    ``options`` are the model's decoding options, e.g. ``language="ja"``, ``word_timestamps=True``.
    """
    recognizer = _cached_model(model, device, compute_type, threads)
    return recognizer.transcribe(audio, **options)
