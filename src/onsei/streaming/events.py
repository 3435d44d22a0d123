"""What a stream emits: tentative text, committed words (never revised) and the final
transcript; each event is also a JSON object (``to_dict``) for the WebSocket protocol."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from onsei.transcript import Transcript, Word


@dataclass
class Partial:
    """The words after the committed ones, as the last decoding heard them: they may change."""

    text: str
    words: list[Word] = field(default_factory=list)
    audio_time: float = 0.0
    """Seconds of audio the stream had received when this was decoded."""

    def to_dict(self) -> dict[str, Any]:
        return {"type": "partial", **asdict(self)}


@dataclass
class Committed:
    """Words that are final: later events never change them; times in stream seconds."""

    start: float
    end: float
    text: str
    words: list[Word]
    audio_time: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"type": "committed", **asdict(self)}


@dataclass
class Final:
    """The end of the stream: everything committed, as one transcript."""

    transcript: Transcript

    def to_dict(self) -> dict[str, Any]:
        return {"type": "final", "transcript": self.transcript.to_dict()}


@dataclass
class StreamError:
    """A problem with the stream (bad frame, bad configuration); the stream may go on."""

    message: str
    fatal: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"type": "error", "message": self.message, "fatal": self.fatal}


StreamEvent = Partial | Committed | Final | StreamError


def stream_events(streamer, chunks: Iterable[Any]) -> Iterator[StreamEvent]:
    """The events of feeding ``chunks`` to a streamer (``accept`` each, then ``finish``):
    what ``model.stream(chunks)`` returns, for Whisper and trained models alike."""
    for chunk in chunks:
        yield from streamer.accept(chunk)
    yield from streamer.finish()
