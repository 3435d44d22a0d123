"""An experiment directory of ``onsei train`` as a Recognizer: load it like a Whisper model."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from onsei.asr.models import ASRModel, build_model
from onsei.asr.recipe import load_recipe
from onsei.asr.trainer import CMVN_FILE, CONFIG_FILE, MODEL_FILE
from onsei.audio import SAMPLE_RATE, AudioSource, load_audio
from onsei.errors import ModelError, OptionError
from onsei.features import GlobalCMVN
from onsei.recognizer import is_trained_experiment
from onsei.text.tokenizers import load_tokenizer
from onsei.transcript import Segment, Transcript

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
    saved = torch.load(exp_dir / MODEL_FILE, map_location="cpu", weights_only=False)
    model.load_state_dict(saved["model"])
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
        """Greedy recognition; audio longer than 30 s is cut at pauses first."""
        if options:
            raise OptionError(
                f"model {self.name!r} takes no decoding options yet "
                f"(got {', '.join(sorted(options))})"
            )
        waveform = load_audio(audio)
        segments = []
        for start, end in _chunks(waveform):
            chunk = torch.from_numpy(waveform[start:end]).to(self.device)
            with torch.no_grad():
                ids = self.model.recognize(
                    chunk[None], torch.tensor([len(chunk)], device=self.device)
                )
            text = self.tokenizer.decode(ids[0])
            if not text:
                continue
            segment = Segment(
                id=len(segments),
                start=start / SAMPLE_RATE,
                end=end / SAMPLE_RATE,
                text=" " + text,
                tokens=ids[0],
            )
            segments.append(segment)
            if on_segment is not None:
                on_segment(segment)
        return Transcript(segments=segments, duration=len(waveform) / SAMPLE_RATE)

    def detect_language(self, audio: AudioSource, *, vad_filter: bool = True):
        raise OptionError(f"model {self.name!r} recognises one language: it cannot detect others")


def _chunks(waveform: np.ndarray) -> list[tuple[int, int]]:
    """Sample ranges to recognise: the whole waveform if short, else VAD speech chunks."""
    if len(waveform) <= MAX_CHUNK_SECONDS * SAMPLE_RATE:
        return [(0, len(waveform))]
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    options = VadOptions(max_speech_duration_s=MAX_CHUNK_SECONDS, min_silence_duration_ms=300)
    return [(c["start"], c["end"]) for c in get_speech_timestamps(waveform, options)]
