"""How many people speak at each moment (0, 1, 2, or 3 and more), every 20 ms: a small
bidirectional LSTM on the encoder output of the bundled Whisper tiny.en.

Whisper's encoder, trained on 680,000 hours of speech, tells speech from noise and one voice
from several far better than a model trained here from scratch could; the head that reads the
count off it is trained by ``onsei.diarization.train_counter`` on conversations simulated from
AN4's 74 speakers and from the AMI training excerpts' speakers, and on those excerpts, and
ships with onsei (``speaker_count.npz``, about 0.6 MB). The diarization pipeline takes its
overlapped speech (count > 1); its speech (count > 0) is as good as Silero VAD's on the AMI
excerpts, which the pipeline keeps.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from onsei.audio import SAMPLE_RATE
from onsei.errors import ModelError

FRAME_SECONDS = 0.02
"""Whisper's encoder output stride."""
FRAME_SAMPLES = round(FRAME_SECONDS * SAMPLE_RATE)
WINDOW_SECONDS = 30
"""Whisper encodes 30 s at a time."""
CLASSES = 4
"""0, 1, 2, and 3 or more voices."""
ENCODER_MODEL = "tiny.en"
WEIGHTS = "speaker_count.npz"


class CountHead(nn.Module):
    """``(batch, frames, dim)`` encoder output -> ``(batch, frames, CLASSES)`` logits."""

    def __init__(self, dim: int = 384, hidden: int = 64, layers: int = 2):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))
        self.lstm = nn.LSTM(dim, hidden, layers, batch_first=True, bidirectional=True)
        self.output = nn.Linear(2 * hidden, CLASSES)
        self.config = {"dim": dim, "hidden": hidden, "layers": layers}

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm((features - self.mean) / self.std)
        return self.output(hidden)

    def save(self, path: str | Path) -> None:
        """The weights as float16 (the config as integers) in one ``.npz`` file."""
        arrays = {k: v.detach().numpy().astype(np.float16) for k, v in self.state_dict().items()}
        arrays |= {f"config.{k}": np.array(v) for k, v in self.config.items()}
        np.savez_compressed(path, **arrays)

    @classmethod
    def load(cls, path) -> CountHead:
        with np.load(path) as data:
            config = {
                k.split(".", 1)[1]: int(data[k]) for k in data.files if k.startswith("config.")
            }
            head = cls(**config)
            state = {k: torch.from_numpy(data[k].astype(np.float32)) for k in head.state_dict()}
        head.load_state_dict(state)
        return head.eval()


def encoder_windows(whisper_model, audio: np.ndarray) -> Iterator[np.ndarray]:
    """``(samples,)`` at 16 kHz -> the Whisper encoder output of each 30 s, ``(frames, dim)``,
    one frame per 20 ms (the last window padded with silence, its output cut after the
    audio; a last piece shorter than a frame is left out); ``whisper_model`` is a
    ``faster_whisper.WhisperModel``."""
    window = WINDOW_SECONDS * SAMPLE_RATE
    frames_per_window = round(WINDOW_SECONDS / FRAME_SECONDS)
    for start in range(0, max(len(audio), 1), window):
        piece = audio[start : start + window]
        if start and len(piece) < FRAME_SAMPLES:
            break
        mel = whisper_model.feature_extractor(piece)[:, : 2 * frames_per_window]
        padded = np.zeros((mel.shape[0], 2 * frames_per_window), dtype=np.float32)
        padded[:, : mel.shape[1]] = mel
        output = np.asarray(whisper_model.encode(padded), dtype=np.float32)[0]
        yield output[: -(-len(piece) // FRAME_SAMPLES)]  # frames begun by the audio


def encoder_features(whisper_model, audio: np.ndarray) -> np.ndarray:
    """``(frames, dim)``: ``encoder_windows`` joined."""
    return np.concatenate(list(encoder_windows(whisper_model, audio)))


@cache
def _encoder():
    from onsei.recognizer import load_model

    return load_model(ENCODER_MODEL, device="cpu").model


def load_counter(weights: str | Path | None = None) -> CountHead:
    """The bundled head (``weights`` None) or one written by ``train_counter --out``, loaded
    once per process.

    Raises:
        ModelError: the file is not such a head, or the bundled one is missing.
    """
    return _load_counter(None if weights is None else Path(weights).resolve())


@cache
def _load_counter(weights: Path | None) -> CountHead:
    if weights is None:
        bundled = resources.files("onsei.diarization") / WEIGHTS
        if not bundled.is_file():
            raise ModelError(f"the voice counter {WEIGHTS} is missing from onsei's install")
        return CountHead.load(bundled)
    try:
        return CountHead.load(weights)
    except OSError as error:
        raise ModelError(f"{weights}: {error.strerror or error}") from None
    except (ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile):
        raise ModelError(
            f"{weights}: not a voice counter written by onsei.diarization.train_counter"
        ) from None


def speaker_counts(audio: np.ndarray, weights: str | Path | None = None) -> np.ndarray:
    """``(samples,)`` at 16 kHz -> ``(frames, CLASSES)`` probabilities of 0, 1, 2 and 3+
    voices in each 20-ms frame (30 s at a time: memory stays flat on long recordings), from
    the bundled head or the one in ``weights`` (``train_counter --out``)."""
    if not len(audio):
        return np.zeros((0, CLASSES), dtype=np.float32)
    head = load_counter(weights)
    pieces = []
    with torch.inference_mode():
        for features in encoder_windows(_encoder(), audio):
            logits = head(torch.from_numpy(features)[None])[0]
            pieces.append(torch.softmax(logits, dim=-1).numpy())
    return np.concatenate(pieces)
