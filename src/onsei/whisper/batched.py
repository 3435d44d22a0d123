"""Batched decoding of speech chunks, with Whisper's sequential algorithm for the chunks that
fail.

faster-whisper's ``BatchedInferencePipeline`` decodes the VAD's speech chunks (up to 30 s
each) in batches, at the first temperature only, and keeps whatever comes out. On 10 minutes
of real speech a few chunks then come out broken (benchmarks/RESULTS.md, long_form): a loop
(``S-A-N-D-L-E-R-D-A-V-I-D-T-F-F-F-F...``), a decoding that ends after a few tokens (29 s of
spelled letters as ``102762.``), or, with timestamps, one that ends at a timestamp 8 to 14 s
before its chunk does (the pipeline does not seek on within a chunk). This pipeline decodes
the batch as faster-whisper does, then decodes each failed chunk again on its own with
Whisper's sequential algorithm (``WhisperModel.generate_segments``: timestamps, seeking on
after each window, the whole temperature schedule; faster-whisper is pinned, these are its
internals).

A chunk fails when its text is too repetitive (``compression_ratio_threshold``) or too
unlikely (``log_prob_threshold``), as a window does in Whisper's fallback (unless
``no_speech_threshold`` says it is silence), and, onsei's own tests, when it is much shorter
than its speech (fewer than ``MIN_TOKENS_PER_SECOND`` text tokens per second, in a chunk of at
least ``MIN_CHECKED_SECONDS``; English speech gives 3 to 5) or its last timestamp is more than
``EARLY_END_SECONDS`` before the chunk's end (VAD chunks end within half a second of speech).

On CPU the batches run in ``lanes`` parallel workers of one CTranslate2 model (its
``inter_threads``), each with a share of the threads. With tiny.en on 2 cores, two batches at
a time on one thread each decode the 10-minute recording of benchmarks/long_form.py in
12.9 s, one batch at a time on two threads in 16.4 s, at some 300 MB more memory
(benchmarks/RESULTS.md, batched_decoding). The encoder gains little from it (two workers
encode 1.95 times as fast as one thread, two threads 1.81 times); the decoder's hundreds of
small steps per batch, and the Python work between them, gain the rest. The chunks are cut
into batches of even size, a multiple of ``lanes`` of them, so that the lanes finish
together.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import (
    Segment,
    TranscriptionOptions,
    Word,
    get_compression_ratio,
)

MIN_TOKENS_PER_SECOND = 0.5
MIN_CHECKED_SECONDS = 10.0
EARLY_END_SECONDS = 4.0
TIME_PRECISION = 0.02
"""Seconds per Whisper timestamp token."""


class FallbackBatchedPipeline(BatchedInferencePipeline):
    """``BatchedInferencePipeline`` whose failed chunks are decoded again sequentially, at
    the ``temperatures`` of the fallback schedule (the pipeline itself uses the first only),
    its batches decoded in ``lanes`` parallel workers of ``model`` (a ``WhisperModel`` with
    ``num_workers`` at least ``lanes``)."""

    def __init__(self, model: Any, temperatures: list[float], lanes: int = 1):
        super().__init__(model)
        self.temperatures = list(temperatures)
        self.lanes = lanes
        self._durations: list[float] = []
        """The seconds of speech of each chunk of the batch being decoded."""

    def _batched_segments_generator(
        self,
        features: np.ndarray,
        tokenizer: Tokenizer,
        chunks_metadata: list[dict],
        batch_size: int,
        options: TranscriptionOptions,
        log_progress: bool,
    ) -> Iterator[Segment]:
        """The segments of all chunks (``features`` ``(chunks, n_mels, 3000)``), in order,
        decoded in batches of at most ``batch_size`` by ``lanes`` pipelines in parallel."""
        bounds = batch_bounds(len(features), batch_size, self.lanes)
        lane = threading.local()

        def decode(batch: int) -> list[list[dict]]:
            if not hasattr(lane, "pipeline"):  # one per worker thread: forward keeps state
                lane.pipeline = FallbackBatchedPipeline(self.model, self.temperatures)
            start, end = bounds[batch], bounds[batch + 1]
            return lane.pipeline.forward(
                features[start:end], tokenizer, chunks_metadata[start:end], options
            )

        pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="onsei-lane")
        try:
            number = 0
            for results in pool.map(decode, range(len(bounds) - 1)):
                for chunk in results:
                    for segment in chunk:
                        number += 1
                        yield _segment(segment, number, options)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def forward(
        self,
        features: np.ndarray,
        tokenizer: Tokenizer,
        chunks_metadata: list[dict],
        options: TranscriptionOptions,
    ) -> list[list[dict]]:
        self._durations = [float(chunk["duration"]) for chunk in chunks_metadata]
        return super().forward(features, tokenizer, chunks_metadata, options)

    def generate_segment_batched(
        self, features: np.ndarray, tokenizer: Tokenizer, options: TranscriptionOptions
    ) -> tuple[Any, list[dict]]:
        """``features`` ``(B, n_mels, 3000)`` -> the encoder output and one
        ``{avg_logprob, no_speech_prob, tokens}`` per chunk, failed chunks decoded again."""
        encoder_output, outputs = super().generate_segment_batched(features, tokenizer, options)
        for i, output in enumerate(outputs):
            if chunk_fails(output, tokenizer, options, self._durations[i]):
                outputs[i] = self._decode_again(features[i], self._durations[i], tokenizer, options)
        return encoder_output, outputs

    def _decode_again(
        self,
        features: np.ndarray,
        duration: float,
        tokenizer: Tokenizer,
        options: TranscriptionOptions,
    ) -> dict:
        """One chunk's ``features`` ``(n_mels, 3000)`` of ``duration`` seconds through
        Whisper's sequential algorithm; its segments become timestamp-delimited tokens (or text
        tokens only, ``without_timestamps``), as the batch's output."""
        frames = min(features.shape[-1], round(duration * self.model.frames_per_second) + 1)
        sequential = replace(
            options,
            temperatures=self.temperatures,
            without_timestamps=False,
            word_timestamps=False,
            clip_timestamps=[0.0],
        )
        segments = list(
            self.model.generate_segments(features[:, :frames], tokenizer, sequential, False)
        )
        tokens: list[int] = []
        for segment in segments:
            text = [t for t in segment.tokens if t < tokenizer.eot]
            if options.without_timestamps:
                tokens += text
            else:
                tokens += [_timestamp(tokenizer, segment.start), *text]
                tokens.append(_timestamp(tokenizer, segment.end))
        return {
            "avg_logprob": float(np.mean([s.avg_logprob for s in segments])) if segments else 0.0,
            "no_speech_prob": min((s.no_speech_prob for s in segments), default=1.0),
            "tokens": tokens,
        }


def chunk_fails(
    output: dict, tokenizer: Tokenizer, options: TranscriptionOptions, duration: float
) -> bool:
    """Whether one chunk's decoding ``output`` (``tokens``, ``avg_logprob``,
    ``no_speech_prob``) of ``duration`` seconds needs decoding again."""
    if (
        options.no_speech_threshold is not None
        and output["no_speech_prob"] > options.no_speech_threshold
        and options.log_prob_threshold is not None
        and output["avg_logprob"] < options.log_prob_threshold
    ):
        return False  # silence
    text_tokens = [t for t in output["tokens"] if t < tokenizer.eot]
    text = tokenizer.decode(text_tokens).strip()
    if (
        options.compression_ratio_threshold is not None
        and text
        and get_compression_ratio(text) > options.compression_ratio_threshold
    ):
        return True
    if (
        options.log_prob_threshold is not None
        and output["avg_logprob"] < options.log_prob_threshold
    ):
        return True
    if duration >= MIN_CHECKED_SECONDS and len(text_tokens) < MIN_TOKENS_PER_SECOND * duration:
        return True
    timestamps = [t for t in output["tokens"] if t >= tokenizer.timestamp_begin]
    if text_tokens and timestamps:
        last = (max(timestamps) - tokenizer.timestamp_begin) * TIME_PRECISION
        return duration - last > EARLY_END_SECONDS
    return False


def batch_bounds(chunks: int, batch_size: int, lanes: int) -> list[int]:
    """Where the batches of ``chunks`` begin and end: the fewest batches of at most
    ``batch_size`` whose number is a multiple of ``lanes`` (or one chunk each, for fewer
    chunks than lanes), of sizes within one of each other.
    ``batch_bounds(21, 8, 2)`` -> ``[0, 5, 10, 16, 21]``."""
    batches = min(chunks, lanes * math.ceil(chunks / (lanes * batch_size)))
    return [round(k * chunks / batches) for k in range(batches + 1)] if batches else [0]


def _segment(segment: dict, number: int, options: TranscriptionOptions) -> Segment:
    """One of ``forward``'s segment dicts -> the faster-whisper ``Segment`` the pipeline
    yields (as ``BatchedInferencePipeline._batched_segments_generator`` builds it)."""
    words = None
    if options.word_timestamps:
        words = [Word(**word) for word in segment["words"]]
    return Segment(
        id=number,
        seek=segment["seek"],
        start=round(segment["start"], 3),
        end=round(segment["end"], 3),
        text=segment["text"],
        tokens=segment["tokens"],
        avg_logprob=segment["avg_logprob"],
        compression_ratio=segment["compression_ratio"],
        no_speech_prob=segment["no_speech_prob"],
        words=words,
        temperature=options.temperatures[0],
    )


def _timestamp(tokenizer: Tokenizer, seconds: float) -> int:
    return tokenizer.timestamp_begin + round(seconds / TIME_PRECISION)
