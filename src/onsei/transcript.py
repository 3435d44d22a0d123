"""The one result type every recognizer returns and every writer, server and UI consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Word:
    """One word with its time span in seconds and the model's confidence in it."""

    start: float
    end: float
    word: str
    """The word as decoded, with its leading space (Whisper style: ``" country."``)."""
    probability: float


@dataclass
class Segment:
    """A stretch of speech: times in seconds, text, and how the decoder arrived at it."""

    id: int
    start: float
    end: float
    text: str
    """Decoded text, usually with a leading space (join segments with ``""``)."""
    words: list[Word] | None = None
    speaker: str | None = None
    tokens: list[int] = field(default_factory=list)
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    temperature: float | None = None


@dataclass
class Transcript:
    """A recognizer's result for one recording."""

    segments: list[Segment]
    language: str | None = None
    language_probability: float | None = None
    duration: float = 0.0
    """Length of the input audio in seconds."""

    @property
    def text(self) -> str:
        """The whole transcript as one string."""
        return "".join(segment.text for segment in self.segments).strip()

    @property
    def words(self) -> list[Word]:
        """All words of all segments, in order (empty without word timestamps)."""
        return [word for segment in self.segments for word in segment.words or []]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: text, language, language_probability, duration, segments."""
        return {
            "text": self.text,
            "language": self.language,
            "language_probability": self.language_probability,
            "duration": self.duration,
            "segments": [asdict(segment) for segment in self.segments],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        """Inverse of ``to_dict`` (the ``text`` field is derived, so it is not read)."""
        segments = []
        for raw in data["segments"]:
            raw = dict(raw)
            words = raw.pop("words", None)
            segments.append(
                Segment(**raw, words=None if words is None else [Word(**w) for w in words])
            )
        return cls(
            segments=segments,
            language=data.get("language"),
            language_probability=data.get("language_probability"),
            duration=data.get("duration", 0.0),
        )
