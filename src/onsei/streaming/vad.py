"""Streaming voice activity detection: Silero VAD (the model of the silero-vad package) over
512-sample windows, fed with chunks of any size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onsei.audio import SAMPLE_RATE

WINDOW = 512
"""Samples per Silero VAD decision at 16 kHz (32 ms)."""


@dataclass
class VadOptions:
    threshold: float = 0.5
    """Speech probability above which a window is speech."""
    min_silence_ms: int = 700
    """Silence that ends a stretch of speech (and finalises its words)."""
    speech_pad_ms: int = 200
    """Audio kept around speech."""


@dataclass
class SpeechBoundary:
    kind: str
    """"start" or "end"."""
    sample: int
    """Position in the stream, in samples."""


class StreamingVad:
    """Feed audio with ``accept``; get the starts and ends of speech as they are detected.

    An end is reported ``min_silence_ms`` after the speech stopped (padded by
    ``speech_pad_ms``); ``in_speech`` says whether speech is going on now.
    """

    def __init__(self, options: VadOptions | None = None):
        import warnings

        from silero_vad import VADIterator, load_silero_vad

        self.options = options or VadOptions()
        with warnings.catch_warnings():  # (how silero-vad finds and loads its TorchScript file)
            warnings.simplefilter("ignore", DeprecationWarning)
            model = load_silero_vad()
        self._iterator = VADIterator(
            model,
            threshold=self.options.threshold,
            sampling_rate=SAMPLE_RATE,
            min_silence_duration_ms=self.options.min_silence_ms,
            speech_pad_ms=self.options.speech_pad_ms,
        )
        self._pending = np.zeros(0, dtype=np.float32)

    @property
    def in_speech(self) -> bool:
        return bool(self._iterator.triggered)

    def accept(self, audio: np.ndarray) -> list[SpeechBoundary]:
        """``(samples,)`` float32 at 16 kHz -> the speech boundaries found in it."""
        import torch

        self._pending = np.concatenate([self._pending, audio.astype(np.float32, copy=False)])
        whole = len(self._pending) // WINDOW * WINDOW
        windows, self._pending = self._pending[:whole], self._pending[whole:]
        boundaries = []
        for start in range(0, whole, WINDOW):
            event = self._iterator(torch.from_numpy(windows[start : start + WINDOW]))
            if event:
                kind = "start" if "start" in event else "end"
                boundaries.append(SpeechBoundary(kind, int(event[kind])))
        return boundaries
