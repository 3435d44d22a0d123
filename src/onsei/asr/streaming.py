"""Streaming with a model trained by ``onsei train``: a CTC or transducer model whose Conformer
encoder is chunked (``encoder.chunk_size`` > 0) emits its tokens chunk by chunk.

With a chunked encoder an output frame depends on the audio up to the end of its chunk only,
so once a chunk's audio has arrived (and the few feature frames of look-ahead of the
subsampling), its frames are final: their greedy tokens are emitted at once and never change.
A word is committed when the next one begins, or when the model has emitted nothing for
``word_timeout_seconds`` (the speaker paused), or at the end of the stream.

The encoder runs again over the current window of audio for each new chunk (simple and exact:
the chunked attention makes the old frames come out the same); the window is cut to its
second half when it grows beyond ``window_seconds``, at a chunk boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from onsei.audio import SAMPLE_RATE
from onsei.errors import OptionError
from onsei.streaming.events import Committed, Final, Partial, StreamEvent
from onsei.text.tokenizers import WORD_BOUNDARY
from onsei.transcript import Segment, Transcript, Word

BLANK = 0


@dataclass
class TrainedStreamOptions:
    word_timeout_seconds: float = 1.0
    """Commit the word in progress after this much decoded audio without a new token."""
    window_seconds: float = 16.0
    max_symbols_per_frame: int = 5
    """Transducer: labels emitted per frame at most."""

    @classmethod
    def from_kwargs(cls, **options: Any) -> TrainedStreamOptions:
        unknown = sorted(set(options) - set(cls.__dataclass_fields__))
        if unknown:
            raise OptionError(f"unknown streaming option {unknown[0]!r} for a trained model")
        return cls(**options)


class TrainedStreamer:
    """One stream through a trained chunked model: ``accept(chunk)``, then ``finish()``."""

    def __init__(self, model, tokenizer, options: TrainedStreamOptions, name: str = "model"):
        from onsei.asr.models import CTCModel, TransducerModel

        chunk = getattr(model.encoder, "chunk_size", 0)
        if not chunk or not isinstance(model, (CTCModel, TransducerModel)):
            raise OptionError(
                f"{name} cannot stream: streaming needs a CTC or RNN-T model with a chunked "
                "encoder (encoder.chunk_size > 0 in its recipe; see recipes/an4/*_streaming.yaml)"
            )
        self.model, self.tokenizer, self.options = model, tokenizer, options
        self.symbols = tokenizer.symbols()
        self.transducer = isinstance(model, TransducerModel)
        fbank = model.frontend.fbank.options
        self.hop, self.half_window = fbank.hop_length, fbank.n_fft // 2
        self.subsampling = model.config.encoder.subsampling  # (feature frames per output frame)
        self.chunk_frames = chunk
        self.frame_seconds = model.frame_seconds
        self.audio = np.zeros(0, dtype=np.float32)
        self.window_start = 0
        """Stream position (samples) of ``audio[0]``; always a whole number of chunks."""
        self.frames_done = 0
        """Encoder frames of the window already decoded."""
        self.received = 0
        self.previous = BLANK  # CTC: the last frame's best token (repeats merge)
        self.predictor_state = None  # transducer: prediction network state and output
        self.word: list[tuple[int, float]] = []
        """The word in progress: (token, stream time of its frame)."""
        self.last_emission = 0.0
        self.words: list[Word] = []

    def accept(self, chunk: np.ndarray) -> list[StreamEvent]:
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        self.audio = np.concatenate([self.audio, chunk])
        self.received += len(chunk)
        # feature frames whose window lies in the audio, then the encoder frames made of them
        final_features = max(0, (len(self.audio) - self.half_window) // self.hop + 1)
        final_frames = int(
            self.model.encoder.subsampling.output_lengths(torch.tensor(final_features))
        )
        complete = max(0, final_frames) // self.chunk_frames * self.chunk_frames
        events: list[StreamEvent] = []
        if complete > self.frames_done:
            events += self._decode(complete)
            self._slide_window()
        decoded = (self.window_start / SAMPLE_RATE) + self.frames_done * self.frame_seconds
        if self.word and decoded - self.last_emission > self.options.word_timeout_seconds:
            events += self._commit_word()
        return events

    def finish(self) -> list[StreamEvent]:
        events = self._decode(None) if len(self.audio) else []
        events += self._commit_word()
        return [*events, Final(self.transcript())]

    # -- decoding --------------------------------------------------------------------------

    @torch.no_grad()
    def _decode(self, until: int | None) -> list[StreamEvent]:
        """Decode the window's encoder frames from ``frames_done`` to ``until`` (None: all)."""
        waveform = torch.from_numpy(self.audio)[None]
        encoded, lengths = self.model.encode(waveform, torch.tensor([len(self.audio)]))
        until = int(lengths[0]) if until is None else min(until, int(lengths[0]))
        events: list[StreamEvent] = []
        offset = self.window_start / SAMPLE_RATE
        for t in range(self.frames_done, until):
            time_ = offset + t * self.frame_seconds
            for token in self._tokens_at(encoded[0, t]):
                if self.symbols[token].startswith(WORD_BOUNDARY) and self.word:
                    events += self._commit_word()
                self.word.append((token, time_))
                self.last_emission = time_ + self.frame_seconds
        self.frames_done = max(self.frames_done, until)
        if self.word:
            text = self.tokenizer.decode([token for token, _ in self.word])
            events.append(Partial(text, [], self.received / SAMPLE_RATE))
        return events

    def _tokens_at(self, frame: torch.Tensor) -> list[int]:
        """The tokens emitted at one encoder frame ``(D,)``: CTC greedy (repeats merged) or
        transducer greedy (until blank)."""
        if not self.transducer:
            best = int(self.model.ctc_head(frame).argmax())
            emitted = [best] if best not in (BLANK, self.previous) else []
            self.previous = best
            return emitted
        if self.predictor_state is None:
            state = self.model.predictor.init_state(1)
            self.predictor_state = self.model.predictor.step(torch.tensor([BLANK]), state)
        emitted = []
        predicted, state = self.predictor_state
        for _ in range(self.options.max_symbols_per_frame):
            token = int(self.model.joint.step(frame[None], predicted).argmax(-1))
            if token == BLANK:
                break
            emitted.append(token)
            predicted, state = self.model.predictor.step(torch.tensor([token]), state)
        self.predictor_state = (predicted, state)
        return emitted

    def _commit_word(self) -> list[StreamEvent]:
        if not self.word:
            return []
        text = self.tokenizer.decode([token for token, _ in self.word])
        start, end = self.word[0][1], self.word[-1][1] + self.frame_seconds
        self.word = []
        if not text:
            return []
        word = Word(start=round(start, 3), end=round(end, 3), word=" " + text, probability=1.0)
        self.words.append(word)
        return [Committed(word.start, word.end, text, [word], self.received / SAMPLE_RATE)]

    def _slide_window(self) -> None:
        """Keep the window under ``window_seconds``: drop its first half (whole chunks)."""
        if len(self.audio) <= self.options.window_seconds * SAMPLE_RATE:
            return
        chunk_samples = self.chunk_frames * self.subsampling * self.hop
        drop_chunks = min(
            self.frames_done // self.chunk_frames, len(self.audio) // 2 // chunk_samples
        )
        if drop_chunks:
            self.audio = self.audio[drop_chunks * chunk_samples :]
            self.window_start += drop_chunks * chunk_samples
            self.frames_done -= drop_chunks * self.chunk_frames

    def transcript(self) -> Transcript:
        segments = []
        if self.words:
            text = "".join(w.word for w in self.words)
            segments.append(
                Segment(0, self.words[0].start, self.words[-1].end, text, words=list(self.words))
            )
        return Transcript(segments=segments, duration=self.received / SAMPLE_RATE)
