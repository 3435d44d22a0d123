"""Whisper on CTranslate2 (through faster-whisper) behind onsei's recognizer interface."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from onsei.audio import SAMPLE_RATE, AudioSource, load_audio
from onsei.errors import AudioError, ModelError, OptionError
from onsei.transcript import Segment, Transcript, Word
from onsei.whisper.options import DecodingOptions

BATCH_LANES = 2
"""Parallel workers of batched decoding on CPU (``onsei.whisper.batched``)."""
DEFAULT_CPU_THREADS = 4
"""The threads the lanes share when ``threads`` is 0: CTranslate2's default (4), at most one
per usable core."""


def resolve_device(device: str) -> str:
    """``"auto"`` -> ``"cuda"`` when CTranslate2 sees a GPU, else ``"cpu"``."""
    import ctranslate2

    if device == "auto":
        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise OptionError(f"unknown device {device!r}: use cpu, cuda or auto")
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise OptionError("--device cuda: no CUDA device is visible to CTranslate2")
    return device


def resolve_compute_type(compute_type: str, device: str) -> str:
    """``"default"`` -> int8 on CPU, float16 on CUDA; other values must be supported there."""
    import ctranslate2

    if compute_type == "default":
        return "float16" if device == "cuda" else "int8"
    supported = ctranslate2.get_supported_compute_types(device)
    if compute_type not in supported and compute_type != "auto":
        raise OptionError(
            f"compute type {compute_type!r} is not supported on {device}: "
            f"use one of {', '.join(sorted(supported))}"
        )
    return compute_type


class WhisperRecognizer:
    """A CTranslate2 Whisper model; ``transcribe(audio, **options) -> Transcript``."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        name: str | None = None,
        device: str = "auto",
        compute_type: str = "default",
        threads: int = 0,
    ):
        self.model_dir = Path(model_dir)
        self.name = name or str(model_dir)
        self.device = resolve_device(device)
        self.compute_type = resolve_compute_type(compute_type, self.device)
        self.threads = threads
        self.model = self._load(threads=threads, workers=1)

    def _load(self, *, threads: int, workers: int) -> Any:
        """The model as a ``faster_whisper.WhisperModel`` with ``workers`` parallel workers
        of ``threads`` CPU threads each."""
        from faster_whisper import WhisperModel

        try:
            return WhisperModel(
                str(self.model_dir),
                device=self.device,
                compute_type=self.compute_type,
                cpu_threads=threads,
                num_workers=workers,
            )
        except (RuntimeError, ValueError, OSError) as error:
            raise ModelError(f"cannot load model {self.name!r}: {error}") from None

    @cached_property
    def _batch_engine(self) -> tuple[Any, int]:
        """The model batched decoding runs on, and its lanes. On CPU with at least
        ``BATCH_LANES`` threads: the model loaded again (on first use) with ``BATCH_LANES``
        workers sharing the threads, which decode ``BATCH_LANES`` batches at a time. Else the
        model itself, one lane."""
        threads = self.threads or min(DEFAULT_CPU_THREADS, len(os.sched_getaffinity(0)))
        if self.device != "cpu" or threads < BATCH_LANES:
            return self.model, 1
        engine = self._load(threads=threads // BATCH_LANES, workers=BATCH_LANES)
        return engine, BATCH_LANES

    @property
    def is_multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    @property
    def languages(self) -> list[str]:
        """Language codes the model can transcribe."""
        return self.model.supported_languages

    def transcribe(
        self,
        audio: AudioSource,
        *,
        on_segment: Callable[[Segment], None] | None = None,
        on_language: Callable[[str, float], None] | None = None,
        **options: Any,
    ) -> Transcript:
        """Transcribe ``audio`` (any ``AudioSource``) with ``DecodingOptions`` given as keywords.

        ``on_language(code, probability)`` is called once the language is known and
        ``on_segment(segment)`` as each segment is decoded, for live printing and progress.
        """
        decoding = DecodingOptions.from_kwargs(**options)
        self._check_language(decoding)
        waveform = load_audio(audio)
        batch_size = decoding.batch_size_for(len(waveform) / SAMPLE_RATE)
        kwargs = decoding.engine_kwargs(batch_size)
        sentences = batch_size > 1 and kwargs["without_timestamps"]
        if batch_size > 1:
            from onsei.whisper.batched import FallbackBatchedPipeline

            del kwargs["clip_timestamps"]  # the VAD's chunks are the clips
            kwargs["word_timestamps"] |= sentences  # to cut each chunk into sentences
            engine, lanes = self._batch_engine
            pipeline = FallbackBatchedPipeline(engine, decoding.temperatures, lanes)
            segments, info = pipeline.transcribe(waveform, batch_size=batch_size, **kwargs)
        else:
            segments, info = self.model.transcribe(waveform, **kwargs)
        if on_language is not None:
            on_language(info.language, info.language_probability)
        result: list[Segment] = []
        for raw in segments:
            pieces = [_to_segment(raw)]
            if sentences:
                pieces = self._sentences(pieces[0], keep_words=decoding.word_timestamps)
            for segment in pieces:
                segment.id = len(result)
                result.append(segment)
                if on_segment is not None:
                    on_segment(segment)
        return Transcript(
            segments=result,
            language=info.language,
            language_probability=float(info.language_probability),
            duration=float(info.duration),
        )

    def _sentences(self, segment: Segment, *, keep_words: bool) -> list[Segment]:
        """One batched chunk's ``segment`` (with words) cut into sentences
        (``onsei.whisper.sentences``); their words dropped unless ``keep_words``."""
        from onsei.whisper.sentences import split_segment

        def encode(text: str) -> list[int]:
            return self.model.hf_tokenizer.encode(text, add_special_tokens=False).ids

        pieces = split_segment(segment, encode)
        if not keep_words:
            for piece in pieces:
                piece.words = None
        return pieces

    def transcribe_window(
        self,
        audio: np.ndarray,
        *,
        language: str | None,
        prompt: str | None,
        prefix: str | None = None,
        beam_size: int = 1,
        full_window: bool = False,
    ) -> Transcript:
        """One window of at most 30 s, encoded at its own length (``onsei.whisper.window``):
        what streaming decodes again and again. Word timestamps included; with ``prefix``
        (the text the audio begins with) only the words after it."""
        from onsei.whisper.window import transcribe_window

        return transcribe_window(
            self.model,
            audio,
            language=language,
            prompt=prompt,
            prefix=prefix,
            beam_size=beam_size,
            full_window=full_window,
        )

    def streamer(self, **options: Any) -> Any:
        """A live transcription of one stream: ``accept(chunk)`` 16 kHz mono float32 audio
        as it comes and ``finish()`` at the end, each returning the events due.
        ``options``: ``onsei.streaming.whisper_stream.StreamOptions``."""
        from onsei.streaming.whisper_stream import StreamOptions, WhisperStreamer

        return WhisperStreamer(self, StreamOptions.from_kwargs(**options))

    def stream(self, chunks: Iterable[np.ndarray], **options: Any) -> Iterator[Any]:
        """The events of streaming ``chunks`` (``Committed`` words, never revised;
        ``Partial`` text; the ``Final`` transcript) as soon as they are due."""
        from onsei.streaming.events import stream_events

        return stream_events(self.streamer(**options), chunks)

    def detect_language(
        self, audio: AudioSource, *, vad_filter: bool = True
    ) -> list[tuple[str, float]]:
        """All languages with their probabilities, most likely first, from the first 30 s of
        speech (of the whole audio when ``vad_filter`` is False).

        Raises:
            AudioError: ``vad_filter`` is on and the audio holds no speech.
        """
        if not self.is_multilingual:
            return [("en", 1.0)]
        waveform = load_audio(audio)
        if vad_filter:
            from faster_whisper.vad import VadOptions, get_speech_timestamps

            chunks = get_speech_timestamps(waveform, VadOptions())
            if not chunks:
                raise AudioError("no speech found (voice activity detection)")
            waveform = np.concatenate([waveform[c["start"] : c["end"]] for c in chunks])
        _, _, probabilities = self.model.detect_language(waveform)
        return sorted(((code, float(p)) for code, p in probabilities), key=lambda x: -x[1])

    def _check_language(self, decoding: DecodingOptions) -> None:
        if self.is_multilingual:
            return
        if decoding.language not in (None, "en"):
            raise OptionError(
                f"model {self.name!r} is English-only: it cannot transcribe "
                f"language {decoding.language!r} (use a multilingual model such as 'base')"
            )
        if decoding.task == "translate":
            raise OptionError(
                f"model {self.name!r} is English-only: translation needs a multilingual model "
                "such as 'base'"
            )


def _to_segment(raw: Any) -> Segment:
    """faster-whisper Segment -> onsei Segment (plain floats, words converted)."""
    words = None
    if raw.words is not None:
        words = [
            Word(
                start=float(w.start),
                end=float(w.end),
                word=w.word,
                probability=float(w.probability),
            )
            for w in raw.words
        ]
    return Segment(
        id=int(raw.id),
        start=float(raw.start),
        end=float(raw.end),
        text=raw.text,
        words=words,
        tokens=[int(t) for t in raw.tokens],
        avg_logprob=float(raw.avg_logprob),
        no_speech_prob=float(raw.no_speech_prob),
        compression_ratio=float(raw.compression_ratio),
        temperature=None if raw.temperature is None else float(raw.temperature),
    )
