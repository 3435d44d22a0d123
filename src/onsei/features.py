"""Acoustic features for the models trained here: log-mel filterbanks, global mean/variance
normalisation, SpecAugment and speed perturbation (no torchaudio: torch.stft and an own mel
filterbank). Functions are pure; ``LogMelFbank``, ``GlobalCMVN`` and ``SpecAugment`` are modules.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from onsei.audio import SAMPLE_RATE, resample
from onsei.files import atomic_write_text


@dataclass
class FbankOptions:
    """Kaldi/ESPnet-style filterbank: 25 ms windows every 10 ms, 80 HTK-mel bands."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 80
    f_min: float = 20.0
    f_max: float | None = None
    """Upper edge of the highest band; None means the Nyquist frequency."""
    log_floor: float = 1e-10


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: ``2595 * log10(1 + hz / 700)``."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(
    n_mels: int, n_fft: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular filters equally spaced on the HTK mel scale, shape ``(n_fft // 2 + 1, n_mels)``.

    Filter ``m`` rises from centre ``m - 1`` to centre ``m`` and falls to centre ``m + 1``; the
    peaks are 1 (no area normalisation), as in torchaudio's ``melscale_fbanks(norm=None)``.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    bin_hz = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_hz[:, None] - lower) / (centre - lower)
    falling = (upper - bin_hz[:, None]) / (upper - centre)
    return torch.clamp(torch.minimum(rising, falling), min=0.0).to(torch.float32)


def frame_count(num_samples: torch.Tensor | int, hop_length: int) -> torch.Tensor:
    """Frames ``torch.stft(center=True)`` makes from ``num_samples`` samples."""
    return torch.as_tensor(num_samples) // hop_length + 1


def log_mel_spectrogram(
    waveforms: torch.Tensor,
    options: FbankOptions | None = None,
    filterbank: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log-mel energies of waveforms ``(batch, samples)`` -> ``(batch, frames, n_mels)``.

    ``frames = samples // hop_length + 1`` (centred frames, reflect padding); the power
    spectrum of a Hann window is projected on the mel filters and floored before the log.
    """
    options = options or FbankOptions()
    if filterbank is None:
        filterbank = mel_filterbank(
            options.n_mels, options.n_fft, options.sample_rate, options.f_min, options.f_max
        )
    window = torch.hann_window(options.win_length, device=waveforms.device)
    spectrum = torch.stft(
        waveforms,
        n_fft=options.n_fft,
        hop_length=options.hop_length,
        win_length=options.win_length,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )  # (batch, freqs, frames)
    power = spectrum.real.square() + spectrum.imag.square()
    mel = torch.matmul(power.transpose(1, 2), filterbank.to(waveforms.device))
    return torch.log(torch.clamp(mel, min=options.log_floor))


class LogMelFbank(nn.Module):
    """``(batch, samples)`` waveforms and their lengths -> ``(batch, frames, n_mels)`` features
    and frame lengths; padded frames are zero."""

    def __init__(self, options: FbankOptions | None = None):
        super().__init__()
        self.options = options or FbankOptions()
        o = self.options
        self.register_buffer(
            "filterbank",
            mel_filterbank(o.n_mels, o.n_fft, o.sample_rate, o.f_min, o.f_max),
            persistent=False,
        )

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features = log_mel_spectrogram(waveforms, self.options, self.filterbank)
        frames = frame_count(lengths, self.options.hop_length).to(features.device)
        mask = torch.arange(features.shape[1], device=features.device)[None, :] < frames[:, None]
        return features * mask[..., None], frames


class GlobalCMVN(nn.Module):
    """Global mean/variance normalisation with statistics from the training data."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.to(torch.float32))
        self.register_buffer("std", std.to(torch.float32))

    @classmethod
    def estimate(cls, features: Iterable[torch.Tensor], floor: float = 1e-5) -> GlobalCMVN:
        """Accumulate (in float64) over feature matrices of shape ``(frames, n_mels)``."""
        total = squares = None
        count = 0
        for matrix in features:
            matrix = matrix.to(torch.float64)
            total = matrix.sum(0) if total is None else total + matrix.sum(0)
            squares = (
                matrix.square().sum(0) if squares is None else squares + matrix.square().sum(0)
            )
            count += matrix.shape[0]
        if total is None or count == 0:
            raise ValueError("no frames to estimate normalisation statistics from")
        mean = total / count
        variance = torch.clamp(squares / count - mean.square(), min=floor**2)
        return cls(mean, variance.sqrt())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(..., n_mels)`` -> normalised, same shape."""
        return (features - self.mean) / self.std

    def save(self, path: str | os.PathLike) -> Path:
        data = {"mean": self.mean.tolist(), "std": self.std.tolist()}
        return atomic_write_text(path, json.dumps(data))

    @classmethod
    def load(cls, path: str | os.PathLike) -> GlobalCMVN:
        data = json.loads(Path(path).read_text())
        return cls(torch.tensor(data["mean"]), torch.tensor(data["std"]))


@dataclass
class SpecAugmentOptions:
    """Masks as in Park et al. (2019): LibriSpeech-basic-like defaults scaled for short audio."""

    freq_masks: int = 2
    freq_width: int = 27
    time_masks: int = 2
    time_width_ratio: float = 0.05
    """Widest time mask as a share of the utterance's frames."""
    time_warp: int = 0
    """Largest shift of the warp point in frames (0: no warping)."""


class SpecAugment(nn.Module):
    """Random frequency/time masks (and an optional time warp) on ``(batch, frames, n_mels)``,
    only in training mode; masked values are set to zero (the mean after normalisation)."""

    def __init__(self, options: SpecAugmentOptions | None = None):
        super().__init__()
        self.options = options or SpecAugmentOptions()

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return features
        features = features.clone()
        o = self.options
        for i in range(features.shape[0]):
            frames = int(lengths[i])
            if o.time_warp > 0 and frames > 2 * o.time_warp + 1:
                features[i, :frames] = time_warp(features[i, :frames], o.time_warp)
            for _ in range(o.freq_masks):
                _mask(features[i, :frames], dim=1, max_width=o.freq_width)
            for _ in range(o.time_masks):
                _mask(features[i, :frames], dim=0, max_width=int(o.time_width_ratio * frames))
        return features


def _mask(matrix: torch.Tensor, dim: int, max_width: int) -> None:
    size = matrix.shape[dim]
    width = int(torch.randint(0, max(1, min(max_width, size)) + 1, ()))
    if width == 0 or width >= size:
        return
    start = int(torch.randint(0, size - width + 1, ()))
    matrix.narrow(dim, start, width).zero_()


def time_warp(features: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Stretch the frames before a random point and squeeze those after it (or the reverse),
    keeping the length: ``(frames, n_mels)`` -> same shape (ESPnet's interpolation warp)."""
    frames = features.shape[0]
    centre = int(torch.randint(max_shift + 1, frames - max_shift, ()))
    warped = int(torch.randint(centre - max_shift, centre + max_shift + 1, ()))
    if warped == centre or warped <= 0 or warped >= frames:
        return features
    image = features.T[None]  # (1, n_mels, frames)
    left = nn.functional.interpolate(image[..., :centre], size=warped, mode="linear")
    right = nn.functional.interpolate(image[..., centre:], size=frames - warped, mode="linear")
    return torch.cat([left, right], dim=-1)[0].T


def speed_perturb(audio: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play ``audio`` ``factor`` times faster, pitch included (sox ``speed``): the samples are
    read as if recorded at ``sample_rate * factor`` and resampled to ``sample_rate``."""
    if math.isclose(factor, 1.0):
        return audio
    return resample(audio, round(sample_rate * factor), sample_rate)
