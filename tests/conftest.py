"""Shared fixtures: real speech from ../shared/data, sound made on the fly, the bundled models."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
JFK_TEXT = (
    "And so my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def shared(relative: str) -> Path:
    """A path under ../shared/data; the test skips (with the reason) when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"needs {path} (the shared speech data beside the checkout)")
    return path


def need_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"needs the {name} command (./run-tests installs it)")
    return found


@pytest.fixture(scope="session")
def jfk_flac() -> Path:
    """11 s of JFK, FLAC, 44.1 kHz, stereo, 24-bit."""
    return shared("clips/jfk/jfk.flac")


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory, jfk_flac: Path) -> Path:
    """The JFK clip re-encoded by ffmpeg into the formats users bring."""
    need_tool("ffmpeg")
    out = tmp_path_factory.mktemp("media")
    encodings = {
        "jfk.wav": ["-ar", "22050"],
        "jfk_8k.wav": ["-ar", "8000", "-ac", "1"],
        "jfk.mp3": [],
        "jfk.ogg": ["-c:a", "libvorbis"],
        "jfk.opus": ["-c:a", "libopus"],
        "jfk.m4a": ["-c:a", "aac"],
        "jfk_video.mp4": [
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=5",
            "-shortest",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
        ],
        "jfk_video.webm": [
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=5",
            "-shortest",
            "-c:v",
            "libvpx",
            "-c:a",
            "libopus",
        ],
        "jfk_video.mkv": [
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=5",
            "-shortest",
            "-c:v",
            "mpeg4",
            "-c:a",
            "flac",
        ],
    }
    for name, args in encodings.items():
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(jfk_flac), *args, str(out / name)],
            check=True,
        )
    return out


def speak(text: str, path: Path, voice: str = "en-us") -> Path:
    """Synthesise ``text`` with espeak-ng into a WAV file."""
    need_tool("espeak-ng")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="session")
def tiny_en():
    import onsei

    return onsei.load_model("tiny.en", device="cpu")


@pytest.fixture(scope="session")
def base():
    import onsei

    return onsei.load_model("base", device="cpu")


def white_noise(seconds: float, seed: int = 0, std: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (std * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation, for loose comparisons."""
    kept = "".join(c.lower() if c.isalnum() or c.isspace() else " " for c in text)
    return kept.split()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run faster on one thread, and stay fast when another job holds a core."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
