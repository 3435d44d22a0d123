"""Every option that steers Whisper decoding, checked once and handed whole to the engine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from onsei.errors import OptionError
from onsei.languages import language_code

TASKS = ("transcribe", "translate")
AUTO_BATCH_SIZE = 8
AUTO_BATCH_SECONDS = 60.0
"""Audio longer than this (two Whisper windows) is decoded in batches by default."""


def temperature_schedule(temperature: float, increment: float | None) -> tuple[float, ...]:
    """The whisper CLI's fallback temperatures: ``0, 0.2, ..., 1.0`` for ``(0, 0.2)``."""
    if increment is None or increment <= 0:
        return (float(temperature),)
    steps = int((1.0 + 1e-6 - temperature) // increment) + 1
    return tuple(round(temperature + i * increment, 6) for i in range(max(steps, 1)))


@dataclass
class VadOptions:
    """Silero VAD settings (faster-whisper's ``VadOptions``, same names and defaults)."""

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_duration_ms: int = 0
    max_speech_duration_s: float = float("inf")
    min_silence_duration_ms: int = 2000
    speech_pad_ms: int = 400


@dataclass
class DecodingOptions:
    """Whisper decoding options; names follow the whisper CLI, defaults follow faster-whisper
    except ``vad_filter``."""

    language: str | None = None
    """Spoken language: a code ("ja"), an English name ("Japanese"), or None/"auto" to detect."""
    task: str = "transcribe"
    """"transcribe", or "translate" to English."""
    beam_size: int = 5
    best_of: int = 5
    """Candidates sampled at non-zero temperature."""
    patience: float = 1.0
    length_penalty: float | None = None
    """CTranslate2's exponential length penalty; None means 1 (plain length normalisation)."""
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    temperature: float | Sequence[float] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    """One temperature, or the fallback schedule tried when a window fails the thresholds."""
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    condition_on_previous_text: bool = True
    prompt_reset_on_temperature: float = 0.5
    initial_prompt: str | None = None
    prefix: str | None = None
    hotwords: str | None = None
    suppress_blank: bool = True
    suppress_tokens: Sequence[int] | None = (-1,)
    without_timestamps: bool | None = None
    """Sample text tokens only. None: False for sequential decoding; True for batched
    decoding, as in faster-whisper's ``BatchedInferencePipeline``, where timestamps cost
    accuracy and time, and each chunk's text is then cut into sentences by its word
    timestamps (``onsei.whisper.sentences``). True with sequential decoding: one segment per
    30-s window."""
    max_initial_timestamp: float = 1.0
    word_timestamps: bool = False
    prepend_punctuations: str = "\"'“¿([{-"
    append_punctuations: str = "\"'.。,，!！?？:：”)]}、"
    multilingual: bool = False
    """Detect the language again in every 30 s window (code-switched speech)."""
    max_new_tokens: int | None = None
    clip_timestamps: str | Sequence[float] = "0"
    hallucination_silence_threshold: float | None = None
    language_detection_threshold: float | None = 0.5
    language_detection_segments: int = 1
    vad_filter: bool = True
    """Drop non-speech with Silero VAD before decoding (timestamps stay in the original time).
    On by default, unlike faster-whisper: without it Whisper invents words in silence and noise."""
    vad_parameters: VadOptions = field(default_factory=VadOptions)
    batch_size: int | None = None
    """Speech chunks (from the VAD, up to 30 s each) decoded together, as faster-whisper's
    ``BatchedInferencePipeline`` does: each chunk on its own, without the previous text as
    prompt, at the first temperature; a chunk that fails (a loop, unlikely or far too short
    text, an early end) is decoded again with Whisper's sequential algorithm
    (``onsei.whisper.batched``). Several times faster (benchmarks/RESULTS.md, long_form).
    1: Whisper's sequential decoding. None (the default): ``AUTO_BATCH_SIZE`` for audio
    longer than ``AUTO_BATCH_SECONDS`` when no option needs sequential decoding (the VAD off,
    clip_timestamps, a hallucination silence threshold), else 1."""

    @classmethod
    def from_kwargs(cls, **options: Any) -> DecodingOptions:
        """Build from keyword options, rejecting unknown names instead of ignoring them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise OptionError(f"unknown option(s) for Whisper: {', '.join(unknown)}")
        vad = options.get("vad_parameters")
        if isinstance(vad, dict):
            try:
                options["vad_parameters"] = VadOptions(**vad)
            except TypeError as error:
                raise OptionError(f"bad vad_parameters: {error}") from None
        elif vad is None:
            options.pop("vad_parameters", None)
        decoding = cls(**options)
        decoding.validate()
        return decoding

    def validate(self) -> None:
        """Raise ``OptionError`` for values the engine would reject or misread."""
        self.language = language_code(self.language)
        if self.task not in TASKS:
            raise OptionError(f"unknown task {self.task!r}: use 'transcribe' or 'translate'")
        for name in ("beam_size", "best_of"):
            if getattr(self, name) < 1:
                raise OptionError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.patience <= 0:
            raise OptionError(f"patience must be positive, got {self.patience}")
        if any(t < 0 for t in self.temperatures):
            raise OptionError(f"temperatures must be >= 0, got {self.temperatures}")
        if self.batch_size is not None and self.batch_size < 1:
            raise OptionError(f"batch_size must be at least 1, got {self.batch_size}")
        if (self.batch_size or 1) > 1 and not self._batchable:
            raise OptionError(
                "batch_size > 1 decodes the VAD's speech chunks: it needs vad_filter on and "
                "neither clip_timestamps nor hallucination_silence_threshold"
            )

    @property
    def _batchable(self) -> bool:
        """Whether batched decoding honours every option set."""
        return (
            self.vad_filter
            and self.clip_timestamps in ("0", "", (), [], [0], [0.0])
            and self.hallucination_silence_threshold is None
        )

    def batch_size_for(self, seconds: float) -> int:
        """The batch size to decode ``seconds`` of audio with (1: sequential)."""
        if self.batch_size is not None:
            return self.batch_size
        return AUTO_BATCH_SIZE if self._batchable and seconds > AUTO_BATCH_SECONDS else 1

    @property
    def temperatures(self) -> list[float]:
        if isinstance(self.temperature, (int, float)):
            return [float(self.temperature)]
        return [float(t) for t in self.temperature]

    def engine_kwargs(self, batch_size: int = 1) -> dict[str, Any]:
        """Keyword arguments for ``faster_whisper.WhisperModel.transcribe`` (or the batched
        pipeline's, for ``batch_size`` > 1, less its ``batch_size``)."""
        kwargs = asdict(self)
        kwargs["log_prob_threshold"] = kwargs.pop("logprob_threshold")
        kwargs["temperature"] = self.temperatures
        kwargs["length_penalty"] = 1.0 if self.length_penalty is None else self.length_penalty
        kwargs["suppress_tokens"] = (
            None if self.suppress_tokens is None else list(self.suppress_tokens)
        )
        kwargs["vad_parameters"] = asdict(self.vad_parameters)
        if self.without_timestamps is None:
            kwargs["without_timestamps"] = batch_size > 1
        del kwargs["batch_size"]
        return kwargs
