"""The one recognizer interface, and ``load_model``, which resolves a name or path to a model."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from onsei.audio import AudioSource
from onsei.transcript import Segment, Transcript


@runtime_checkable
class Recognizer(Protocol):
    """What every model in onsei offers: Whisper and the models trained here."""

    name: str
    languages: list[str]
    """Language codes the model can recognise (more than one: it can detect the language)."""

    def transcribe(
        self,
        audio: AudioSource,
        *,
        on_segment: Callable[[Segment], None] | None = None,
        on_language: Callable[[str, float], None] | None = None,
        **options: Any,
    ) -> Transcript:
        """Recognise ``audio``; call ``on_segment`` for each segment as soon as it is decoded."""
        ...

    def detect_language(
        self, audio: AudioSource, *, vad_filter: bool = True
    ) -> list[tuple[str, float]]:
        """``(language code, probability)`` pairs, most likely first."""
        ...

    def streamer(self, **options: Any) -> Any:
        """The state of one live stream: ``accept(chunk)`` 16 kHz mono float32 audio as it
        arrives, ``finish()`` at the end; each returns the ``onsei.streaming.events`` due."""
        ...

    def stream(self, chunks: Iterable[np.ndarray], **options: Any) -> Iterator[Any]:
        """``accept`` every chunk, then ``finish``: all the stream's events, as they are due."""
        ...


def load_model(
    name_or_path: str | None = None,
    *,
    device: str = "auto",
    compute_type: str = "default",
    threads: int = 0,
) -> Recognizer:
    """Load a bundled model by name ("tiny.en", "base"), any CTranslate2 Whisper directory, or
    the experiment directory of a model trained with ``onsei train``.

    Args:
        name_or_path: model name or directory; None means the default model, "base".
        device: "cpu", "cuda" or "auto" (a GPU when CTranslate2 sees one).
        compute_type: "default" (int8 on CPU, float16 on GPU) or any CTranslate2 compute type.
        threads: CPU threads for the engine; 0 lets CTranslate2 choose.

    Raises:
        ModelError: the name is unknown, the directory is not a model, or loading failed.
    """
    from onsei.whisper.engine import WhisperRecognizer
    from onsei.whisper.registry import DEFAULT_MODEL, resolve_whisper_model

    name = name_or_path or DEFAULT_MODEL
    if is_trained_experiment(name):
        from onsei.asr.recognizer import TrainedRecognizer

        return TrainedRecognizer(name, device=device, threads=threads)
    model_dir = resolve_whisper_model(name)
    return WhisperRecognizer(
        model_dir, name=name, device=device, compute_type=compute_type, threads=threads
    )


def is_trained_experiment(name_or_path: str) -> bool:
    """True for an ``onsei train`` experiment directory (config.yaml and model.pt)."""
    path = Path(name_or_path)
    return (path / "config.yaml").is_file() and (path / "model.pt").is_file()
