"""One short window of audio through Whisper in a single pass, for streaming.

Whisper pads every window to 30 s, and on a CPU the encoder is most of a decoding's cost
(tiny.en, int8, 2 cores: 0.44 s for 30 s). CTranslate2's encoder also takes shorter mel
windows, at a cost that falls with their length (0.05 s for 10 s), so a streaming buffer of a
few seconds is encoded in a shorter window (whisper.cpp's ``audio_ctx``): its own length
with a second of silence after it, and at least 15 s (shorter windows lose words).
Decoding then follows faster-whisper's steps for one window: the prompt and prefix, greedy
or beam search without timestamp tokens (at most ``TOKENS_PER_SECOND`` per second of audio;
a decoding that loops is done again with a wider beam), and word times from the
cross-attention alignment (faster-whisper's own ``add_word_timestamps``; faster-whisper is
pinned, these are its internals).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from onsei.audio import SAMPLE_RATE
from onsei.transcript import Segment, Transcript, Word
from onsei.whisper.options import DecodingOptions

FULL_WINDOW_FRAMES = 3000
PADDING_FRAMES = 100
"""Silence after the audio: the model hears the speech end (1 s)."""
MIN_WINDOW_FRAMES = 1500
"""Windows are at least 15 s: measured on the clips streamed with tiny.en, shorter windows
lose words (12% WER with 12 s, 5% with 15 or 20 s, 9% with Whisper's 30 s; again under four
fixed decoding costs: 5.8 % with 10 s, 5.0 % with 15 s, 4.9 % with 20 s), and with base at
real-time speed 15 s instead of 20 s takes 0.35 s off the mean latency."""
STEP_FRAMES = 200
"""Window lengths are multiples of 2 s (fewer distinct shapes for the engine)."""
TOKENS_PER_SECOND, EXTRA_TOKENS = 8, 10
"""A window's text is at most this many tokens per second of audio, plus a few (fast English
speech is about 5 per second; spelled letters 3 to 4): a decoding that goes on longer is
looping, and is cut there rather than at Whisper's 448 tokens."""
LOOP_BEAM_SIZE = 5
"""A decoding that loops with fewer beams than this is decoded again with this many."""


def window_frames(audio_frames: int) -> int:
    """The encoder window for ``audio_frames`` mel frames: padded, rounded up, 20 to 30 s."""
    wanted = math.ceil((audio_frames + PADDING_FRAMES) / STEP_FRAMES) * STEP_FRAMES
    wanted = max(MIN_WINDOW_FRAMES, wanted)
    return min(FULL_WINDOW_FRAMES, wanted)


def transcribe_window(
    model,
    audio: np.ndarray,
    *,
    language: str | None,
    prompt: str | None = None,
    prefix: str | None = None,
    beam_size: int = 1,
    full_window: bool = False,
    prepend_punctuations: str = DecodingOptions.prepend_punctuations,
    append_punctuations: str = DecodingOptions.append_punctuations,
) -> Transcript:
    """Transcribe ``audio`` (16 kHz float32, at most 30 s) as one window of its own length
    (of 30 s with ``full_window``), with word timestamps; ``model`` is a
    ``faster_whisper.WhisperModel``. The segment's ``compression_ratio`` and
    ``no_speech_prob`` tell a looping or empty decoding.

    ``prompt`` is text said before the audio; ``prefix`` is the text the audio begins with
    (a stream's committed words): the decoder is forced through it, and the transcript holds
    only the words after it, timed by an alignment of the whole text."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_compression_ratio, get_suppressed_tokens

    features = model.feature_extractor(audio)[:, :FULL_WINDOW_FRAMES]
    frames = features.shape[1]
    width = FULL_WINDOW_FRAMES if full_window else window_frames(frames)
    padded = np.zeros((features.shape[0], width), dtype=features.dtype)
    padded[:, :frames] = features
    encoder_output = model.encode(padded)
    detected = None
    if language is None and model.model.is_multilingual:
        detected = model.model.detect_language(encoder_output)[0][0][0][2:-2]
    tokenizer = Tokenizer(
        model.hf_tokenizer,
        model.model.is_multilingual,
        task="transcribe",
        language=language or detected or "en",
    )

    def encoded(text: str | None) -> list[int]:
        return tokenizer.encode(" " + text.strip()) if text and text.strip() else []

    previous, forced = encoded(prompt), encoded(prefix)
    start = model.get_prompt(tokenizer, previous, without_timestamps=True) + forced
    duration = len(audio) / SAMPLE_RATE
    most = math.ceil(TOKENS_PER_SECOND * duration) + EXTRA_TOKENS
    suppressed = get_suppressed_tokens(tokenizer, [-1])

    def decoded(beams: int) -> tuple[Any, list[int], str]:
        result = model.model.generate(
            encoder_output,
            [start],
            beam_size=beams,
            max_length=min(model.max_length, len(start) + most),  # (the prompt counts)
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppressed,
        )[0]
        generated = result.sequences_ids[0][len(forced) :]  # (the result repeats the prefix)
        tokens = [t for t in generated if t < tokenizer.eot]
        return result, tokens, tokenizer.decode(tokens)

    result, tokens, text = decoded(beam_size)
    looping = len(tokens) >= most - 1 or (
        bool(text) and get_compression_ratio(text) > DecodingOptions.compression_ratio_threshold
    )
    if looping and beam_size < LOOP_BEAM_SIZE:
        result, tokens, text = decoded(LOOP_BEAM_SIZE)
    # the prefix and the new text are aligned together, as two pieces of one segment, so
    # that the new words' times follow the prefix's
    before = {"seek": 0, "start": 0.0, "end": duration, "tokens": forced}
    segment = {"seek": 0, "start": 0.0, "end": duration, "tokens": tokens}
    if tokens:
        model.add_word_timestamps(
            [[before, segment] if forced else [segment]],
            tokenizer,
            encoder_output,
            frames,
            prepend_punctuations,
            append_punctuations,
            last_speech_timestamp=0.0,
        )
    words = [
        Word(float(w["start"]), float(w["end"]), w["word"], float(w["probability"]))
        for w in segment.get("words", [])
    ]
    return Transcript(
        segments=[
            Segment(
                id=0,
                start=0.0,
                end=duration,
                text=text,
                words=words,
                tokens=tokens,
                avg_logprob=float(result.scores[0]) if result.scores else None,  # (per token)
                no_speech_prob=float(result.no_speech_prob),
                compression_ratio=get_compression_ratio(text) if text else 0.0,
                temperature=0.0,
            )
        ],
        language=language or detected,
        duration=duration,
    )
