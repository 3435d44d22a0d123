"""Decoding every format users bring to 16 kHz mono float32, and clear errors for bad input."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import need_tool, shared

from onsei.audio import SAMPLE_RATE, check_speech_audio, load_audio
from onsei.errors import AudioError

JFK_SECONDS = 11.0


@pytest.mark.parametrize(
    "name",
    [
        "jfk.wav",
        "jfk_8k.wav",
        "jfk.mp3",
        "jfk.ogg",
        "jfk.opus",
        "jfk.m4a",
        "jfk_video.mp4",
        "jfk_video.webm",
        "jfk_video.mkv",
    ],
)
def test_every_format_decodes_to_16k_mono_float32(media_dir: Path, jfk_flac: Path, name: str):
    reference = load_audio(jfk_flac)
    audio = load_audio(media_dir / name)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / SAMPLE_RATE - JFK_SECONDS) < 0.1
    # Same speech: strongly correlated with the lossless original (lossy codecs, other rates).
    n = min(len(audio), len(reference)) - 2000
    shift = int(np.argmax([np.dot(audio[s : s + n], reference[:n]) for s in range(0, 1500, 10)]))
    aligned = audio[shift * 10 : shift * 10 + n]
    correlation = np.corrcoef(aligned, reference[:n])[0, 1]
    assert correlation > 0.9, correlation


def test_flac_44k_stereo_24bit(jfk_flac: Path):
    info = soundfile.info(jfk_flac)
    assert (info.samplerate, info.channels) == (44100, 2)
    audio = load_audio(jfk_flac)
    assert len(audio) == 176000
    assert 0.1 < np.abs(audio).max() <= 1.0


def test_nist_sphere_equals_its_flac_copy():
    sphere = load_audio(shared("an4/sphere_samples/an406-fcaw-b.sph"))
    flac = load_audio(shared("an4/test/fcaw/an406-fcaw-b.flac"))
    np.testing.assert_array_equal(sphere, flac)


def test_resampling_keeps_pitch_and_level(tmp_path: Path):
    rate = 44100
    t = np.arange(rate * 2) / rate
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    soundfile.write(tmp_path / "tone.wav", np.stack([tone, tone], axis=1), rate)
    audio = load_audio(tmp_path / "tone.wav")
    assert len(audio) == 2 * SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(audio[4000:-4000]))
    peak_hz = np.argmax(spectrum) * SAMPLE_RATE / len(audio[4000:-4000])
    assert abs(peak_hz - 1000) < 2
    assert abs(np.abs(audio[4000:-4000]).max() - 0.5) < 0.02


def test_long_file_is_decoded_block_by_block(tmp_path: Path):
    rate = 48000
    seconds = 40  # several soundfile blocks, with resampling state carried across them
    t = np.arange(rate * seconds) / rate
    soundfile.write(tmp_path / "long.flac", 0.3 * np.sin(2 * np.pi * 440 * t), rate)
    audio = load_audio(tmp_path / "long.flac")
    assert len(audio) == seconds * SAMPLE_RATE
    expected = 0.3 * np.sin(2 * np.pi * 440 * np.arange(len(audio)) / SAMPLE_RATE)
    middle = slice(1000, -1000)
    assert np.max(np.abs(audio[middle] - expected[middle])) < 0.01  # no clicks at block joins


def test_bytes_and_file_objects(jfk_flac: Path):
    from_path = load_audio(jfk_flac)
    data = jfk_flac.read_bytes()
    np.testing.assert_array_equal(load_audio(data), from_path)
    np.testing.assert_array_equal(load_audio(io.BytesIO(data)), from_path)
    with open(jfk_flac, "rb") as file:
        np.testing.assert_array_equal(load_audio(file), from_path)


def test_numpy_arrays_are_taken_at_16k():
    pcm = (np.sin(np.linspace(0, 100, 16000)) * 32767).astype(np.int16)
    audio = load_audio(pcm)
    assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    stereo = np.stack([pcm, pcm], axis=1)
    np.testing.assert_allclose(load_audio(stereo), audio, atol=1e-6)
    with pytest.raises(AudioError, match="dimensions"):
        load_audio(np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.wav", "no such file"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "empty.wav", b""), "empty file"),
        (
            lambda d: _write(d / "notes.wav", b"these are my notes, not audio\n" * 20),
            "not an audio",
        ),
    ],
)
def test_bad_files_raise_one_line_errors(tmp_path: Path, make, message: str):
    with pytest.raises(AudioError, match=message) as error:
        load_audio(make(tmp_path))
    assert "\n" not in str(error.value)


def test_truncated_mp3_and_flac(media_dir: Path, jfk_flac: Path, tmp_path: Path):
    mp3 = (media_dir / "jfk.mp3").read_bytes()
    with pytest.raises(AudioError, match="truncated"):
        load_audio(_write(tmp_path / "cut.mp3", mp3[: len(mp3) // 2]))
    flac = jfk_flac.read_bytes()
    with pytest.raises(AudioError, match="truncated"):
        load_audio(_write(tmp_path / "cut.flac", flac[: len(flac) // 2]))


def test_video_without_audio_track(tmp_path: Path):
    need_tool("ffmpeg")
    video = tmp_path / "silent_film.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=5",
            "-t",
            "1",
            "-c:v",
            "mpeg4",
            str(video),
        ],
        check=True,
    )
    with pytest.raises(AudioError, match="no audio track"):
        load_audio(video)


def test_check_speech_audio():
    check_speech_audio(0.1 * np.ones(int(0.14 * SAMPLE_RATE), np.float32))  # FSDD's shortest
    with pytest.raises(AudioError, match="too short"):
        check_speech_audio(0.1 * np.ones(int(0.1 * SAMPLE_RATE), np.float32))
    with pytest.raises(AudioError, match="silence"):
        check_speech_audio(np.zeros(30 * SAMPLE_RATE, np.float32))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
