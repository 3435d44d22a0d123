"""Where streamed audio comes from: a file (at real-time speed or as fast as possible) or a
microphone (sounddevice), as iterators of 16 kHz mono float32 chunks; and ``latest``, which
hands a live consumer everything that arrived while it was busy, in one piece."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from onsei.audio import SAMPLE_RATE, Resampler, load_audio
from onsei.errors import AudioError, OptionError

CHUNK_SECONDS = 0.1
"""Audio per chunk that a source yields."""


def file_chunks(
    path: str | os.PathLike, realtime: bool = False, chunk_seconds: float = CHUNK_SECONDS
) -> Iterator[np.ndarray]:
    """The file's audio in chunks; with ``realtime`` each chunk comes when its last sample
    would have been spoken (counted from the first call to ``next``)."""
    audio = load_audio(path)
    step = max(1, round(chunk_seconds * SAMPLE_RATE))
    started = time.monotonic()
    for start in range(0, len(audio), step):
        end = min(start + step, len(audio))
        if realtime:
            delay = started + end / SAMPLE_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        yield audio[start:end]


@dataclass
class InputDevice:
    index: int
    name: str
    channels: int
    sample_rate: float
    default: bool


def _sounddevice():
    try:
        import sounddevice
    except OSError as error:  # the PortAudio library is missing
        raise AudioError(
            f"the microphone needs PortAudio ({error}): install Debian's libportaudio2"
        ) from None
    return sounddevice


def input_devices() -> list[InputDevice]:
    """The audio input devices PortAudio sees (none on a machine without a sound card)."""
    sd = _sounddevice()
    try:
        default_input = sd.default.device[0]
        devices = sd.query_devices()
    except sd.PortAudioError as error:
        raise AudioError(f"cannot list audio devices: {error}") from None
    return [
        InputDevice(
            i, d["name"], d["max_input_channels"], d["default_samplerate"], i == default_input
        )
        for i, d in enumerate(devices)
        if d["max_input_channels"] > 0
    ]


def microphone_chunks(
    device: int | str | None = None, chunk_seconds: float = CHUNK_SECONDS
) -> Iterator[np.ndarray]:
    """Audio from an input device, mixed to mono and resampled to 16 kHz, until the consumer
    stops (closing the iterator closes the device)."""
    sd = _sounddevice()
    try:
        info = sd.query_devices(device, "input")
    except (ValueError, sd.PortAudioError) as error:
        raise OptionError(f"input device {device!r}: {error}") from None
    rate = int(info["default_samplerate"])
    resampler = Resampler(rate, SAMPLE_RATE)
    blocks: queue.Queue[np.ndarray] = queue.Queue()

    def callback(data, frames, when, status) -> None:
        blocks.put(data.mean(axis=1).astype(np.float32))

    try:
        stream = sd.InputStream(
            device=device,
            samplerate=rate,
            channels=min(2, int(info["max_input_channels"])) or 1,
            dtype="float32",
            blocksize=max(1, round(chunk_seconds * rate)),
            callback=callback,
        )
    except sd.PortAudioError as error:
        raise AudioError(f"cannot open input device {info['name']!r}: {error}") from None
    with stream:
        while True:
            chunk = resampler(blocks.get())
            if len(chunk):
                yield chunk


def latest(chunks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Re-chunk a live source for a consumer that may fall behind: a thread reads ``chunks``
    as they come, and each ``next`` returns everything read since the last one, joined (it
    waits for at least one chunk). Ends when ``chunks`` does; re-raises its error."""
    arrived: queue.Queue = queue.Queue()
    done = object()

    def read() -> None:
        try:
            for chunk in chunks:
                arrived.put(chunk)
        except BaseException as error:  # handed to the consumer
            arrived.put(error)
        arrived.put(done)

    threading.Thread(target=read, daemon=True, name="onsei-audio-reader").start()
    while True:
        items = [arrived.get()]
        while True:
            try:
                items.append(arrived.get_nowait())
            except queue.Empty:
                break
        ended = any(item is done for item in items)
        failures = [item for item in items if isinstance(item, BaseException)]
        pieces = [item for item in items if isinstance(item, np.ndarray)]
        if pieces:
            yield np.concatenate(pieces)
        if failures:
            raise failures[0]
        if ended:
            return
