"""Streaming over Whisper: the audio buffer since the last committed point is decoded again
each time ``min_chunk_seconds`` of new audio has arrived, and LocalAgreement-2 commits the
words two consecutive decodings agree on (whisper_streaming's policy), once they end
``commit_margin_seconds`` before the end of the audio.

- The decoder is prompted with the committed text before the buffer, so a trimmed buffer
  keeps its context, and forced through the committed text inside the buffer (Whisper's
  prefix), so each decoding gives only the words after the committed ones: committed speech
  is neither decoded again nor, when its word times move, committed twice.
- The buffer is trimmed at the end of the last committed word once it is longer than
  ``buffer_seconds``, and, if nothing could be committed, everything tentative is committed
  when it reaches ``max_buffer_seconds`` (Whisper sees 30 s at most): memory stays flat
  however long the stream.
- Silero VAD runs on every chunk: audio before speech is dropped without decoding (silence
  costs nothing), and when a stretch of speech ends the buffer is decoded once more and all
  of it committed at once, instead of waiting for a second decoding to agree; the next
  stretch starts a buffer of its own.
- A decoding's words are checked: a looping decoding, one Whisper deems no speech, and words
  the alignment gives no audio (at the end, or two in a row) are not taken.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from onsei.audio import SAMPLE_RATE
from onsei.errors import OptionError
from onsei.streaming.agreement import LocalAgreement
from onsei.streaming.events import Committed, Final, Partial, StreamEvent
from onsei.streaming.vad import StreamingVad, VadOptions
from onsei.transcript import Segment, Transcript, Word
from onsei.whisper.options import DecodingOptions

_LOOP_COMPRESSION_RATIO = DecodingOptions.compression_ratio_threshold
"""gzip ratio of a segment's text above which it is a decoding loop (Whisper's threshold)."""
_NO_SPEECH_THRESHOLD = DecodingOptions.no_speech_threshold
_LOGPROB_THRESHOLD = DecodingOptions.logprob_threshold

_NEW_SPEECH_SECONDS = 0.3
"""Speech that ends less than this after the committed words holds no word to decode."""
_UNHEARD_SECONDS = 0.02
"""A word aligned to less audio than this (one alignment step) was not heard."""
_STUCK_SECONDS = 2.0
"""Speech this long after the committed words that a decoding forced through them gives no
word for: the committed words were wrong, and the decoder believes they cover it."""
_SENTENCE_END = re.compile(r"[.?!。？！]$")


@dataclass
class StreamOptions:
    min_chunk_seconds: float = 0.5
    """Decode the buffer again after this much new audio (a decoding that takes longer
    than this is followed at once by the next one)."""
    buffer_seconds: float = 12.0
    """Trim the buffer at the last committed word once it is longer than this."""
    max_buffer_seconds: float = 25.0
    """Commit everything tentative and start afresh when the buffer reaches this."""
    language: str | None = None
    """Language code; None detects it (multilingual models) on each decoding."""
    beam_size: int = 3
    """Beams per decoding (1: greedy). On the clips streamed with base (median of 3 runs,
    benchmarks/RESULTS.md), beam 3 gave 4.8 % WER at 1.73 s mean latency, greedy 5.6 % at
    1.50 s."""
    commit_margin_seconds: float = 0.3
    """Words that end less than this before the end of the decoded audio wait for the next
    decoding, however the hypotheses agree: their audio may be cut ("watch your" for "what
    your country"). On the clips streamed with tiny.en under four fixed decoding costs, 0.6 s
    gave 4.9 % WER on average against 5.7 % without, for 0.2 s more latency; streamed at
    real-time speed with base, 0.3 s gave 3.6 to 4.4 % (5 runs) against 0.6 s's 4.4 to
    5.2 % (5 runs), and 0.3 s less latency."""
    vad: bool = True
    vad_options: VadOptions = field(default_factory=VadOptions)
    prompt_characters: int = 200
    """Committed text (before the buffer) given to the decoder as its prompt."""
    short_windows: bool = True
    """Encode the buffer at its own length (``onsei.whisper.window``) instead of Whisper's
    30 s: several times faster on a CPU, so words are committed sooner."""

    def validate(self) -> None:
        if self.min_chunk_seconds <= 0:
            raise OptionError("min_chunk_seconds: must be positive")
        if self.beam_size < 1:
            raise OptionError(f"beam_size: must be at least 1, got {self.beam_size}")
        if self.commit_margin_seconds < 0:
            raise OptionError("commit_margin_seconds: must not be negative")
        if not 0 < self.buffer_seconds < self.max_buffer_seconds <= 30:
            raise OptionError("buffer limits: need 0 < buffer_seconds < max_buffer_seconds <= 30")

    @classmethod
    def from_kwargs(cls, **options: Any) -> StreamOptions:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise OptionError(f"unknown streaming option {unknown[0]!r}")
        result = cls(**options)
        result.validate()
        return result


class WhisperStreamer:
    """One stream's state: feed 16 kHz float32 chunks with ``accept``, then ``finish``.

    Both return the events due: ``Committed`` (new final words), ``Partial`` (the tentative
    rest), and from ``finish`` the ``Final`` transcript.
    """

    def __init__(self, recognizer, options: StreamOptions | None = None):
        self.recognizer = recognizer
        self.options = options or StreamOptions()
        self.options.validate()
        self.agreement = LocalAgreement()
        self.vad = StreamingVad(self.options.vad_options) if self.options.vad else None
        self.buffer = np.zeros(0, dtype=np.float32)
        self.buffer_start = 0
        """Stream position of the buffer's first sample."""
        self.received = 0
        """Samples received so far."""
        self.decoded_until = 0
        """Stream position up to which the buffer was last decoded."""
        self.speech_seen = not self.options.vad
        """Whether the buffer holds speech not yet committed."""
        self.language: str | None = self.options.language
        self.segment_breaks: list[int] = []
        """Indices into the committed words where a new segment begins (ends of speech)."""

    # -- input ---------------------------------------------------------------------------

    def accept(self, chunk: np.ndarray) -> list[StreamEvent]:
        """Take ``(samples,)`` float32 audio at 16 kHz; decode if enough has arrived."""
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self.buffer = np.concatenate([self.buffer, chunk])
        self.received += len(chunk)
        events: list[StreamEvent] = []
        boundaries = self.vad.accept(chunk) if self.vad is not None else []
        for boundary in boundaries:
            if boundary.kind == "start":
                self.speech_seen = True
            elif self.speech_seen:
                events += self._end_of_speech(boundary.sample)
        if not self.speech_seen:
            # nothing to decode in silence: keep only what speech could start with (the
            # speech before the pause is context as committed text, the prompt; its audio
            # made the decoder hear the next sentence in its voice: "ten of clothes" after a
            # novel's prose, "ten of clubs" alone)
            self._drop_before(self.received - self._pad_samples())
            return events
        if self.received - self.decoded_until >= self.options.min_chunk_seconds * SAMPLE_RATE:
            events += self._decode_and_commit()
        return events

    def finish(self) -> list[StreamEvent]:
        """End of the stream: decode what is left, commit everything, and the transcript."""
        events: list[StreamEvent] = []
        if self.speech_seen and len(self.buffer) >= 0.1 * SAMPLE_RATE:
            events += self._decode_and_commit(final=True)
        elif self.agreement.tentative:
            events += self._committed(self.agreement.flush())
        return [*events, Final(self.transcript())]

    # -- decoding ------------------------------------------------------------------------

    def _decode_and_commit(self, final: bool = False) -> list[StreamEvent]:
        hypothesis = self._decode(self.buffer, self.buffer_start)
        if not hypothesis and self._stuck():
            # decode the audio after the committed words alone, without them as its prefix
            self._drop_before(round(self.agreement.committed_end * SAMPLE_RATE))
            hypothesis = self._decode(self.buffer, self.buffer_start)
        self.decoded_until = self.received
        until = self.received / SAMPLE_RATE - self.options.commit_margin_seconds
        commit = self.agreement.update(hypothesis, until)
        buffer_seconds = len(self.buffer) / SAMPLE_RATE
        if final or buffer_seconds >= self.options.max_buffer_seconds:
            commit += self.agreement.flush()
        events = self._committed(commit)
        if final or buffer_seconds >= self.options.max_buffer_seconds:
            self._break_segment()
            self._drop_before(self.received)
            self.speech_seen = not self.options.vad or bool(self.vad and self.vad.in_speech)
        elif buffer_seconds > self.options.buffer_seconds and self.agreement.committed:
            self._drop_before(round(self.agreement.committed_end * SAMPLE_RATE))
        tentative = self.agreement.tentative
        events.append(Partial(_text(tentative), list(tentative), self.received / SAMPLE_RATE))
        return events

    def _stuck(self) -> bool:
        """Whether the buffer holds committed words and ``_STUCK_SECONDS`` of speech after
        them that a decoding found no word in."""
        end = self.agreement.committed_end
        return (
            end > self.buffer_start / SAMPLE_RATE
            and self.received / SAMPLE_RATE - end >= _STUCK_SECONDS
            and (self.vad is None or self.vad.in_speech)
        )

    def _end_of_speech(self, end_sample: int) -> list[StreamEvent]:
        """Speech stopped at ``end_sample``: decode it and commit all of it now."""
        speech = self.buffer[: max(0, end_sample - self.buffer_start)]
        commit = []
        unheard = end_sample / SAMPLE_RATE - self.agreement.committed_end
        if len(speech) >= 0.1 * SAMPLE_RATE and unheard >= _NEW_SPEECH_SECONDS:
            commit = self.agreement.update(self._decode(speech, self.buffer_start))
        events = self._committed(commit + self.agreement.flush())
        self._break_segment()
        self.decoded_until = self.received
        self.speech_seen = False
        events.append(Partial("", [], self.received / SAMPLE_RATE))
        return events

    def _decode(self, audio: np.ndarray, start_sample: int) -> list[Word]:
        """The words of ``audio`` (which begins at stream position ``start_sample``) after
        the committed ones, in stream times."""
        offset = start_sample / SAMPLE_RATE
        committed = self.agreement.committed
        inside = next((i for i, w in enumerate(committed) if w.end > offset + 0.01), len(committed))
        prompt = _text(committed[:inside])[-self.options.prompt_characters :] or None
        transcript = self.recognizer.transcribe_window(
            audio,
            language=self.language,
            prompt=prompt,
            prefix=_text(committed[inside:]) or None,
            beam_size=self.options.beam_size,
            full_window=not self.options.short_windows,
        )
        if self.language is None and len(audio) >= 3 * SAMPLE_RATE:
            self.language = transcript.language  # detected once, on 3 s of speech or more
        # (an alignment may put a new word's start a little before the committed end)
        floor = self.agreement.committed_end
        words = [
            Word(
                start=max(floor, round(offset + w.start, 3)),
                end=max(floor, round(offset + w.end, 3)),
                word=w.word,
                probability=w.probability,
            )
            for segment in transcript.segments
            if _speech(segment)
            for w in segment.words or []
            if any(c.isalnum() for c in w.word)  # punctuation alone is not a word
        ]
        return _heard(words)

    # -- bookkeeping ---------------------------------------------------------------------

    def _committed(self, words: list[Word]) -> list[StreamEvent]:
        if not words:
            return []
        audio_time = self.received / SAMPLE_RATE
        return [Committed(words[0].start, words[-1].end, _text(words), list(words), audio_time)]

    def _break_segment(self) -> None:
        count = len(self.agreement.committed)
        if count and (not self.segment_breaks or self.segment_breaks[-1] != count):
            self.segment_breaks.append(count)

    def _drop_before(self, sample: int) -> None:
        """Forget the buffer's audio before stream position ``sample``."""
        cut = min(max(0, sample - self.buffer_start), len(self.buffer))
        self.buffer = self.buffer[cut:]
        self.buffer_start += cut

    def _pad_samples(self) -> int:
        return int(self.options.vad_options.speech_pad_ms * SAMPLE_RATE / 1000) + SAMPLE_RATE // 2

    def transcript(self) -> Transcript:
        """Everything committed so far: one segment per stretch of speech, split further at
        sentence ends."""
        words = self.agreement.committed
        segments: list[Segment] = []
        start = 0
        breaks = set(self.segment_breaks)
        for i, word in enumerate(words, start=1):
            if i in breaks or _SENTENCE_END.search(word.word.strip()) or i == len(words):
                piece = words[start:i]
                segments.append(
                    Segment(
                        id=len(segments),
                        start=piece[0].start,
                        end=piece[-1].end,
                        text=_text(piece, leading_space=True),
                        words=list(piece),
                    )
                )
                start = i
        return Transcript(
            segments=segments, language=self.language, duration=self.received / SAMPLE_RATE
        )


def _speech(segment: Segment) -> bool:
    """Whether a decoding is speech: not Whisper looping ("the the the", ". . ."), nor
    words that the model itself deems no speech (Whisper's no-speech rule: a likely silence
    decoded with a low average log-probability, "Thank you." over a pause)."""
    if (segment.compression_ratio or 0.0) > _LOOP_COMPRESSION_RATIO:
        return False
    return not (
        (segment.no_speech_prob or 0.0) > _NO_SPEECH_THRESHOLD
        and (segment.avg_logprob if segment.avg_logprob is not None else 0.0) < _LOGPROB_THRESHOLD
    )


def _heard(words: list[Word]) -> list[Word]:
    """``words`` up to the first two in a row that the alignment gives no audio, and without
    unheard words at the end: words the model says without hearing them. When the buffer
    holds little or no speech after the committed words, Whisper forced through them may
    say some of them again, or the words of an earlier sentence, squeezed into no time
    ("... ask not. ask not."), or a word its prompt suggests ("... of spades. 5.")."""
    unheard = [w.end - w.start < _UNHEARD_SECONDS for w in words]
    end = next((i for i in range(len(words) - 1) if unheard[i] and unheard[i + 1]), len(words))
    while end and unheard[end - 1]:
        end -= 1
    return words[:end]


def _text(words: list[Word], leading_space: bool = False) -> str:
    text = "".join(w.word for w in words)
    return text if leading_space else text.strip()
