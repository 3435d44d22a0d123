"""An experiment directory of ``onsei train`` as a Recognizer: load it like a Whisper model."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from onsei.asr.models import ASRModel, build_model, load_weights
from onsei.asr.recipe import load_recipe
from onsei.asr.search import Searcher, SearchOptions
from onsei.asr.trainer import CMVN_FILE, CONFIG_FILE, MODEL_FILE
from onsei.audio import SAMPLE_RATE, AudioSource, load_audio
from onsei.decoding.ctc import WordTiming
from onsei.errors import ModelError, OptionError
from onsei.features import GlobalCMVN
from onsei.recognizer import is_trained_experiment
from onsei.text.tokenizers import load_tokenizer
from onsei.transcript import Segment, Transcript, Word

MAX_CHUNK_SECONDS = 30.0
"""Longer audio is cut at pauses (Silero VAD) into chunks of at most this length."""


def load_trained_model(exp_dir: str | os.PathLike, device: str = "cpu") -> tuple[ASRModel, Any]:
    """The averaged model of an experiment (eval mode) and its tokenizer."""
    exp_dir = Path(exp_dir)
    if not is_trained_experiment(str(exp_dir)):
        raise ModelError(f"{exp_dir}: not a trained experiment (no {CONFIG_FILE}/{MODEL_FILE})")
    recipe = load_recipe(exp_dir / CONFIG_FILE)
    tokenizer = load_tokenizer(exp_dir)
    cmvn = GlobalCMVN.load(exp_dir / CMVN_FILE)
    model = build_model(recipe.model, recipe.features, cmvn, tokenizer.vocab_size)
    try:
        saved = torch.load(exp_dir / MODEL_FILE, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for a truncated or foreign file
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelError(f"{exp_dir / MODEL_FILE}: unreadable ({reason})") from error
    load_weights(model, saved["model"], str(exp_dir / MODEL_FILE))
    return model.to(device).eval(), tokenizer


class TrainedRecognizer:
    """``transcribe(audio) -> Transcript`` with a model trained by ``onsei train``."""

    languages: list[str] = []

    def __init__(self, exp_dir: str | os.PathLike, *, device: str = "auto", threads: int = 0):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if threads:
            torch.set_num_threads(threads)
        self.name = str(exp_dir)
        self.device = device
        self.model, self.tokenizer = load_trained_model(exp_dir, device)

    def transcribe(
        self,
        audio: AudioSource,
        *,
        on_segment: Callable[[Segment], None] | None = None,
        on_language: Callable[[str, float], None] | None = None,
        **options: Any,
    ) -> Transcript:
        """Recognise ``audio`` with the search ``options`` ask for (``SearchOptions``: greedy
        by default; ``beam_size``, ``lm``, ``lm_weight``, ``word_bonus``, ``hotwords``, ...);
        ``word_timestamps=True`` adds word times where the search tracks them (CTC beam search).
        Audio longer than 30 s is cut at pauses first."""
        word_timestamps = bool(options.pop("word_timestamps", False))
        searcher = Searcher(
            self.model, self.tokenizer.symbols(), SearchOptions.from_kwargs(**options)
        )
        waveform = load_audio(audio)
        segments = []
        for start, end in _chunks(waveform):
            chunk = torch.from_numpy(waveform[start:end]).to(self.device)
            best = searcher.recognize(chunk[None], torch.tensor([len(chunk)], device=self.device))[
                0
            ]
            text = self.tokenizer.decode(best.tokens)
            if not text:
                continue
            offset = start / SAMPLE_RATE
            segment = Segment(
                id=len(segments),
                start=offset,
                end=end / SAMPLE_RATE,
                text=" " + text,
                tokens=best.tokens,
                words=self._words(best.words, offset) if word_timestamps else None,
            )
            segments.append(segment)
            if on_segment is not None:
                on_segment(segment)
        return Transcript(segments=segments, duration=len(waveform) / SAMPLE_RATE)

    def _words(self, timings: list[WordTiming], offset: float) -> list[Word] | None:
        if not timings:
            return None
        seconds = self.model.frame_seconds
        return [
            Word(
                start=round(offset + t.start_frame * seconds, 3),
                end=round(offset + t.end_frame * seconds, 3),
                word=" " + t.word,
                probability=round(t.probability, 4),
            )
            for t in timings
        ]

    def streamer(self, **options: Any):
        """A live transcription of one stream (``accept(chunk)``, ``finish()``), for a CTC or
        RNN-T model with a chunked encoder; ``options``: ``TrainedStreamOptions``."""
        from onsei.asr.streaming import TrainedStreamer, TrainedStreamOptions

        stream_options = TrainedStreamOptions.from_kwargs(**options)
        return TrainedStreamer(self.model, self.tokenizer, stream_options, self.name)

    def stream(self, chunks: Iterable[np.ndarray], **options: Any) -> Iterator[Any]:
        """The events of streaming ``chunks`` (16 kHz mono float32) through this model."""
        from onsei.streaming.events import stream_events

        return stream_events(self.streamer(**options), chunks)

    def detect_language(self, audio: AudioSource, *, vad_filter: bool = True):
        raise OptionError(f"model {self.name!r} recognises one language: it cannot detect others")


def _chunks(waveform: np.ndarray) -> list[tuple[int, int]]:
    """Sample ranges to recognise: the whole waveform if short, else VAD speech chunks."""
    if len(waveform) <= MAX_CHUNK_SECONDS * SAMPLE_RATE:
        return [(0, len(waveform))]
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(max_speech_duration_s=MAX_CHUNK_SECONDS, min_silence_duration_ms=300)
    return [(c["start"], c["end"]) for c in get_speech_timestamps(waveform, options)]
