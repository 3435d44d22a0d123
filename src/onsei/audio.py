"""Decode any audio (or the audio track of a video) to 16 kHz mono float32.

libsndfile (through soundfile) reads WAV, FLAC, NIST SPHERE, AIFF, OGG/Opus and friends quickly;
everything else (MP3, M4A/AAC, MP4, WebM, MKV, ...) goes through FFmpeg (through PyAV). Both paths
mix channels down by averaging and resample with FFmpeg's libswresample, block by block, so a
three-hour file never needs more than its 16 kHz copy in memory.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np

from onsei.errors import AudioError

SAMPLE_RATE = 16000
"""Sample rate, in Hz, of every waveform onsei hands to a recognizer."""

AudioSource = Union[str, os.PathLike, bytes, bytearray, BinaryIO, np.ndarray]  # noqa: UP007
"""A path, the bytes of an encoded file, an open binary file, or a waveform at ``SAMPLE_RATE``."""

MIN_DURATION = 0.12
"""Shortest audio, in seconds, that can hold a spoken word (FSDD's shortest digit is 0.14 s)."""

SILENCE_PEAK = 1e-4
"""Peak absolute amplitude (-80 dBFS) at or below which a waveform counts as digital silence."""

_BLOCK_FRAMES = 1 << 18  # frames per block when reading with soundfile (about 6 s at 44.1 kHz)
_TRUNCATION_TOLERANCE = 0.1  # seconds of declared audio that may be missing before it is an error


def load_audio(source: AudioSource, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode ``source`` to a mono float32 waveform of shape ``(num_samples,)`` at ``sample_rate``.

    A numpy array is taken to be a waveform already at ``sample_rate``: shape ``(num_samples,)``
    or ``(num_samples, num_channels)``, float in [-1, 1] or integer PCM. Anything else is decoded.

    Raises:
        AudioError: missing, empty, truncated or undecodable input, or no audio track.
    """
    if isinstance(source, np.ndarray):
        return _as_mono_float32(source)
    name, file = _open_source(source)
    try:
        chunks = list(_decode(file, name, sample_rate))
    finally:
        if not isinstance(source, io.IOBase):
            file.close()
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if audio.size == 0:
        raise AudioError(f"{name}: contains no audio samples")
    return audio


def resample(audio: np.ndarray, input_rate: int, output_rate: int) -> np.ndarray:
    """Resample a mono float32 waveform ``(num_samples,)`` (libswresample)."""
    resampler = Resampler(input_rate, output_rate)
    return np.concatenate([resampler(audio.astype(np.float32, copy=False)), resampler.flush()])


def audio_duration(source: str | os.PathLike) -> float:
    """Length of an audio file in seconds, from its header (decoded only if the header is silent).

    Raises:
        AudioError: missing, empty or unreadable file, or no audio track.
    """
    name, file = _open_source(source)
    with file:
        sound = _open_soundfile(file)
        if sound is not None:
            with sound:
                return sound.frames / sound.samplerate
        return _ffmpeg_duration(file, name)


def _ffmpeg_duration(file: BinaryIO, name: str) -> float:
    import av

    try:
        with av.open(file, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError(f"{name}: has no audio track")
            declared = _declared_duration(container, container.streams.audio[0])
    except av.error.FFmpegError:
        raise AudioError(f"{name}: not an audio or video file onsei can decode") from None
    if declared is not None:
        return declared
    file.seek(0)
    return sum(len(chunk) for chunk in _decode_ffmpeg(file, name, SAMPLE_RATE)) / SAMPLE_RATE


def check_speech_audio(audio: np.ndarray, name: str = "audio") -> None:
    """Raise ``AudioError`` if a 16 kHz waveform is too short for speech or is digital silence."""
    duration = audio.shape[0] / SAMPLE_RATE
    if duration < MIN_DURATION:
        raise AudioError(
            f"{name}: too short to hold speech ({duration:.2f} s; at least {MIN_DURATION} s needed)"
        )
    if float(np.max(np.abs(audio))) <= SILENCE_PEAK:
        raise AudioError(f"{name}: no sound, the audio is silence ({duration:.1f} s)")


def _as_mono_float32(samples: np.ndarray) -> np.ndarray:
    """(num_samples,) or (num_samples, num_channels) PCM or float -> (num_samples,) float32."""
    if samples.ndim not in (1, 2):
        raise AudioError(f"expected a waveform of 1 or 2 dimensions, got shape {samples.shape}")
    if np.issubdtype(samples.dtype, np.integer):
        scale = float(np.iinfo(samples.dtype).max) + 1.0
        samples = samples.astype(np.float32) / scale
    samples = samples.astype(np.float32, copy=False)
    if samples.ndim == 2:
        samples = samples.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(samples)


def _open_source(source: AudioSource) -> tuple[str, BinaryIO]:
    """Return a display name and a seekable binary file for a path, bytes or file object."""
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise AudioError("<bytes>: empty input")
        return "<bytes>", io.BytesIO(bytes(source))
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        return getattr(source, "name", "<stream>"), source  # type: ignore[return-value]
    path = Path(source)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file (0 bytes)")
    try:
        return str(path), open(path, "rb")
    except OSError as error:
        raise AudioError(f"{path}: cannot be read ({error.strerror})") from None


def _decode(file: BinaryIO, name: str, sample_rate: int) -> Iterator[np.ndarray]:
    """Yield float32 mono blocks at ``sample_rate``, trying libsndfile first, then FFmpeg."""
    sound = _open_soundfile(file)
    if sound is not None:
        with sound:
            yield from _decode_soundfile(sound, name, sample_rate)
        return
    yield from _decode_ffmpeg(file, name, sample_rate)


def _open_soundfile(file: BinaryIO):
    """A ``soundfile.SoundFile`` if libsndfile reads this file, else None with ``file``
    rewound for FFmpeg. MP3 always goes to FFmpeg: libsndfile's MP3 reader chatters on
    stderr and cannot tell a truncated file."""
    import soundfile

    start = file.tell()
    if not _looks_like_mp3(file.read(4)):
        file.seek(start)
        try:
            return soundfile.SoundFile(file)
        except (soundfile.LibsndfileError, RuntimeError, TypeError):
            pass
    file.seek(start)
    return None


def _looks_like_mp3(head: bytes) -> bool:
    """True for an ID3 tag or an MPEG audio frame sync word at the start of a file."""
    return head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


def _decode_soundfile(sound, name: str, sample_rate: int) -> Iterator[np.ndarray]:
    import soundfile

    resampler = Resampler(sound.samplerate, sample_rate)
    decoded = 0
    try:
        while True:
            block = sound.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                break
            decoded += block.shape[0]
            yield resampler(block.mean(axis=1, dtype=np.float32))
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{name}: corrupt or truncated audio ({_one_line(error)})") from None
    yield resampler.flush()
    _check_complete(name, decoded / sound.samplerate, sound.frames / sound.samplerate)


def _decode_ffmpeg(file: BinaryIO, name: str, sample_rate: int) -> Iterator[np.ndarray]:
    import av

    try:
        container = av.open(file, mode="r", metadata_errors="ignore")
    except (av.error.FFmpegError, ValueError):
        raise AudioError(f"{name}: not an audio or video file onsei can decode") from None
    with container:
        if not container.streams.audio:
            raise AudioError(f"{name}: has no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        decoded = 0
        try:
            for frame in container.decode(stream):
                decoded += frame.samples / frame.sample_rate
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except av.error.FFmpegError as error:
            raise AudioError(f"{name}: corrupt or truncated audio ({_one_line(error)})") from None
        declared = _declared_duration(container, stream)
    _check_complete(name, decoded, declared)


def _declared_duration(container, stream) -> float | None:
    """Seconds of audio the header promises: the stream's own duration, else the container's
    (only when audio is all it holds, since a video track may run longer)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration and len(container.streams) == len(container.streams.audio):
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def _check_complete(name: str, decoded: float, declared: float | None) -> None:
    """Raise if far less audio was decoded than the file's header promises (a cut-off file)."""
    if declared and declared - decoded > max(_TRUNCATION_TOLERANCE, 0.01 * declared):
        raise AudioError(
            f"{name}: truncated file (decoded {decoded:.2f} s of the {declared:.2f} s it declares)"
        )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


class Resampler:
    """Streaming mono float32 resampler (libswresample through PyAV), block by block; the
    identity when the rates match."""

    def __init__(self, input_rate: int, output_rate: int):
        self.input_rate = input_rate
        self.output_rate = output_rate
        self._resampler = None
        if input_rate != output_rate:
            import av

            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=output_rate)

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """Resample one block of shape (num_samples,); returns what is ready, shape (m,)."""
        if self._resampler is None:
            return block
        import av

        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.input_rate
        return self._collect(self._resampler.resample(frame))

    def flush(self) -> np.ndarray:
        """Return the samples still buffered in the resampler, shape (m,)."""
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames) -> np.ndarray:
        if not frames:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([frame.to_ndarray().reshape(-1) for frame in frames])
