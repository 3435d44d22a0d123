"""The one result type every recognizer returns and every writer, server and UI consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass
class Word:
    """One word with its time span in seconds and the model's confidence in it."""

    start: float
    end: float
    word: str
    """The word as decoded, with its leading space (Whisper style: ``" country."``)."""
    probability: float
    speaker: str | None = None
    """Who said it, once speakers are assigned (``Transcript.assign_speakers``)."""


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
class Turn:
    """A stretch of time in which one speaker talks (diarization output, an RTTM line)."""

    start: float
    end: float
    speaker: str

    @property
    def duration(self) -> float:
        return self.end - self.start


def _overlap(start: float, end: float, turn: Turn) -> float:
    return max(0.0, min(end, turn.end) - max(start, turn.start))


def speaker_at(start: float, end: float, turns: list[Turn]) -> str | None:
    """The speaker who talks most during ``[start, end]`` (of speakers who talk as much, in
    overlapped speech, the one whose turn there is longest: the main speaker, not a second
    voice over it); if nobody does, the one of the nearest turn (None without turns)."""
    if not turns:
        return None
    talk: dict[str, float] = {}
    longest: dict[str, float] = {}
    for turn in turns:
        during = _overlap(start, end, turn)
        talk[turn.speaker] = talk.get(turn.speaker, 0.0) + during
        if during > 0:
            longest[turn.speaker] = max(longest.get(turn.speaker, 0.0), turn.duration)
    best = max(talk, key=lambda s: (round(talk[s], 6), longest.get(s, 0.0)))
    if talk[best] > 0:
        return best
    middle = (start + end) / 2
    return min(turns, key=lambda t: max(t.start - middle, middle - t.end, 0.0)).speaker


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

    def assign_speakers(self, turns: list[Turn]) -> Transcript:
        """Label every word with the speaker who talks most during it (the nearest turn's
        speaker if nobody does), and every segment with the majority of its words' speakers;
        a segment whose words change speaker is split there. Segments without words take the
        speaker who talks most during them. Returns ``self``, changed in place."""
        segments: list[Segment] = []
        for segment in self.segments:
            if not segment.words:
                segment.speaker = speaker_at(segment.start, segment.end, turns)
                segments.append(segment)
                continue
            for word in segment.words:
                word.speaker = speaker_at(word.start, word.end, turns)
            segments += _split_by_speaker(segment)
        for index, segment in enumerate(segments):
            segment.id = index
        self.segments = segments
        return self

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


def _split_by_speaker(segment: Segment) -> list[Segment]:
    """``segment`` cut where its words' speaker changes (words must be labelled)."""
    words = segment.words or []
    pieces: list[list[Word]] = []
    for word in words:
        if pieces and pieces[-1][-1].speaker == word.speaker:
            pieces[-1].append(word)
        else:
            pieces.append([word])
    if len(pieces) <= 1:
        segment.speaker = words[0].speaker if words else None
        return [segment]
    return [
        replace(
            segment,
            start=piece[0].start,
            end=piece[-1].end,
            text="".join(w.word for w in piece),
            words=piece,
            speaker=piece[0].speaker,
            tokens=[],
        )
        for piece in pieces
    ]
