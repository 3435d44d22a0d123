"""Speaker embeddings: the GE2E speaker encoder that ships in the resemblyzer package
(``pretrained.pt``: 3 x 256 LSTM -> Linear 256 -> ReLU, L2-normalised, 256-dim; trained on
1.6-s partial utterances; Apache-2.0), run with torch.

resemblyzer's declared dependencies include webrtcvad and the obsolete ``typing`` backport, so
it is installed with ``pip install --no-deps resemblyzer==0.1.4`` (scripts/setup.sh does), and
its weights are found without importing it (its import loads librosa and webrtcvad).

The input is what resemblyzer computes with librosa (``wav_to_mel_spectrogram``): a 40-band mel
*power* spectrogram, not a logarithm (Slaney mel scale and area normalisation, a periodic
25-ms Hann window, 10 ms hop, frames centred on ``t * 160`` with zero padding), of audio whose
volume has been raised to -30 dBFS (never lowered; ``normalize_volume(wav, -30,
increase_only=True)``). resemblyzer normalises what it is given; here each window is
normalised on its own, which matches how the encoder was trained (each utterance at -30 dBFS)
and lets a quiet voice in a meeting look like a loud one: on the AMI train excerpts it gave
a lower DER than normalising the whole recording once (benchmarks/diarization.py tune). The
spectrogram is computed with numpy (the same numbers: the tests compare it with
resemblyzer's own).
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from onsei.diarization.embedder import slaney_mel_filterbank
from onsei.errors import ModelError

if TYPE_CHECKING:
    import torch

WINDOW_FRAMES = 120
"""Feature frames (10 ms each) per embedding window by default: 1.2 s, the best of 1.0 to
1.6 s on the AMI train excerpts (the encoder was trained on 1.6-s partial utterances; a
shorter window straddles fewer speaker changes)."""
HOP = 160
N_FFT = 400
N_MELS = 40
TARGET_DBFS = -30.0
"""resemblyzer's ``audio_norm_target_dBFS``."""
INSTALL = "pip install --no-deps resemblyzer==0.1.4"
_CHUNK = 8192
"""Frames per FFT block in ``features`` (bounds memory on long recordings)."""


@cache
def _window() -> np.ndarray:
    """A periodic Hann window of 400 samples (librosa's ``get_window("hann", 400)``)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def normalize_volume(audio: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """``audio`` ``(samples,)`` raised to an RMS of ``target_dbfs``, or unchanged if it is
    that loud already or silent (resemblyzer's ``normalize_volume(..., increase_only=True)``)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if len(audio) else 0.0
    if rms == 0.0:
        return audio
    gain = 10 ** (target_dbfs / 20) / rms
    return audio * np.float32(gain) if gain > 1 else audio


def weights_path() -> Path:
    """The installed resemblyzer's ``pretrained.pt``, without importing resemblyzer.

    Raises:
        ModelError: resemblyzer is not installed.
    """
    spec = importlib.util.find_spec("resemblyzer")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / "pretrained.pt"
        if path.is_file():
            return path
    raise ModelError(f"the GE2E speaker embedder needs resemblyzer's weights: {INSTALL}")


@cache
def _encoder() -> tuple[torch.nn.LSTM, torch.nn.Linear]:
    """The LSTM and the projection, with resemblyzer's weights, loaded once per process."""
    import torch

    state = torch.load(weights_path(), map_location="cpu", weights_only=True)["model_state"]
    lstm = torch.nn.LSTM(N_MELS, 256, 3, batch_first=True)
    linear = torch.nn.Linear(256, 256)
    lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
    linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
    return lstm.eval(), linear.eval()


class GE2EEmbedder:
    """``embed(features, starts)`` -> one GE2E vector per window of ``window_frames`` frames
    of ``features``, each window's volume raised to -30 dBFS first."""

    def __init__(self, window_frames: int = WINDOW_FRAMES, threads: int = 1):
        """``threads``: torch's while embedding (restored after; 0: leave it). One by default:
        the batches are small, and with two, embedding the AMI train excerpts took 10 to 40
        times longer whenever other work shared this 2-core machine."""
        self.window_frames = window_frames
        self.threads = threads
        self.lstm, self.linear = _encoder()

    @staticmethod
    def features(audio: np.ndarray) -> np.ndarray:
        """``(samples,)`` at 16 kHz -> ``(1 + samples // 160, 41)``: the mel power spectrogram
        (columns 0-39; frame ``t`` centred on sample ``t * 160``) and the mean square of the
        samples ``t * 160`` to ``(t + 1) * 160`` (column 40, for the volume of a window)."""
        audio = np.asarray(audio, dtype=np.float32)
        padded = np.pad(audio, N_FFT // 2)
        count = 1 + len(audio) // HOP
        step = padded.strides[0]
        frames = np.lib.stride_tricks.as_strided(
            padded, shape=(count, N_FFT), strides=(step * HOP, step), writeable=False
        )
        filters = slaney_mel_filterbank(N_FFT).T.astype(np.float32)
        mel = np.concatenate(
            [
                (np.abs(np.fft.rfft(frames[i : i + _CHUNK] * _window(), axis=1)) ** 2) @ filters
                for i in range(0, count, _CHUNK)
            ]
        )
        hops = np.pad(audio, (0, count * HOP - len(audio))).reshape(count, HOP)
        energy = np.einsum("ij,ij->i", hops, hops, dtype=np.float64) / HOP
        return np.concatenate([mel, energy[:, None]], axis=1, dtype=np.float32)

    def embed(self, features: np.ndarray, starts: list[int], batch: int = 256) -> np.ndarray:
        """The vectors ``(len(starts), 256)`` of the windows ``features[s : s + window_frames]``
        (zero-padded past the end), L2-normalised. Each window's mel powers are scaled as
        ``normalize_volume`` would scale its audio (samples ``160 * s`` to ``160 * (s +
        window_frames)``, or to the end)."""
        import torch

        width = self.window_frames
        padded = np.pad(features, ((0, width), (0, 0)))
        target = 10 ** (TARGET_DBFS / 10)
        previous = torch.get_num_threads()
        outputs = [np.zeros((0, 256), np.float32)]
        try:
            if self.threads:
                torch.set_num_threads(self.threads)
            for i in range(0, len(starts), batch):
                some = np.array(starts[i : i + batch])
                windows = np.stack([padded[s : s + width] for s in some])
                inside = np.clip(len(features) - some, 1, width)  # frames not padding
                power = windows[:, :, N_MELS].sum(axis=1) / inside  # (batch,) mean square
                gain = np.where(power > 0, target / np.maximum(power, 1e-30), 1.0)
                mels = windows[:, :, :N_MELS] * np.maximum(gain, 1.0)[:, None, None]
                with torch.inference_mode():
                    _, (hidden, _) = self.lstm(torch.from_numpy(mels.astype(np.float32)))
                    outputs.append(torch.relu(self.linear(hidden[-1])).numpy())
        finally:
            torch.set_num_threads(previous)
        vectors = np.concatenate(outputs)
        return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12)
