"""The ``onsei`` command as a user runs it: outputs, batches, resuming, and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import REPO, shared, white_noise

from onsei.cli import main

FORMATS = ("txt", "srt", "vtt", "tsv", "json")


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_transcribe_writes_every_format_and_prints_segments(capsys, jfk_flac: Path, tmp_path: Path):
    code, out, err = run(
        capsys, "transcribe", str(jfk_flac), "--model", "tiny.en", "-o", str(tmp_path)
    )
    assert code == 0, err
    assert out.startswith("[00:00.000 --> ") and "fellow Americans" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"jfk.{f}" for f in FORMATS)
    data = json.loads((tmp_path / "jfk.json").read_text())
    assert data["language"] == "en" and data["duration"] == pytest.approx(11.0)
    assert "ask what you can do for your country" in data["text"]
    srt = (tmp_path / "jfk.srt").read_text()
    assert srt.startswith("1\n00:00:00,000 --> ")
    assert (tmp_path / "jfk.vtt").read_text().startswith("WEBVTT\n\n00:00.000 --> ")
    assert (tmp_path / "jfk.tsv").read_text().startswith("start\tend\ttext\n0\t")


def test_one_format_quietly_with_word_level_subtitles(capsys, jfk_flac: Path, tmp_path: Path):
    code, out, err = run(
        capsys,
        "transcribe",
        str(jfk_flac),
        "--model",
        "tiny.en",
        "-o",
        str(tmp_path),
        "--output_format",
        "srt",
        "--verbose",
        "False",
        "--word_timestamps",
        "True",
        "--max_line_width",
        "20",
        "--max_line_count",
        "1",
    )
    assert code == 0 and out == "" and err == ""
    assert [p.name for p in tmp_path.iterdir()] == ["jfk.srt"]
    cues = (tmp_path / "jfk.srt").read_text().strip().split("\n\n")
    assert len(cues) >= 6
    assert all(len(cue.split("\n")[2]) <= 20 for cue in cues)


def test_language_detection_is_reported(capsys, tmp_path: Path):
    clip = shared("multilingual/picovoice-leopard/test_de.wav")
    code, out, err = run(capsys, "transcribe", str(clip), "-o", str(tmp_path), "-f", "json")
    assert code == 0
    assert "Detected language: German" in err
    assert json.loads((tmp_path / "test_de.json").read_text())["language"] == "de"


def test_batch_skips_bad_files_finishes_the_rest_and_resumes(
    capsys, jfk_flac: Path, tmp_path: Path
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(jfk_flac, inputs / "good.flac")
    (inputs / "bad.wav").write_text("not audio at all")
    out_dir = tmp_path / "out"
    code, _, err = run(
        capsys,
        "transcribe",
        str(inputs),
        str(tmp_path / "gone.mp3"),
        "--model",
        "tiny.en",
        "-o",
        str(out_dir),
        "-f",
        "txt",
        "--verbose",
        "False",
    )
    assert code == 1
    assert "bad.wav: not an audio or video file" in err
    assert "gone.mp3: no such file" in err
    assert "1 transcribed, 0 skipped, 2 failed" in err
    assert "Traceback" not in err
    assert (out_dir / "good.txt").read_text().strip()

    mtime = (out_dir / "good.txt").stat().st_mtime_ns
    shutil.copy(jfk_flac, inputs / "later.flac")
    code, _, err = run(
        capsys,
        "transcribe",
        str(inputs / "good.flac"),
        str(inputs / "later.flac"),
        "--model",
        "tiny.en",
        "-o",
        str(out_dir),
        "-f",
        "txt",
    )
    assert code == 0
    assert "skipping" in err and "1 transcribed, 1 skipped, 0 failed" in err
    assert (out_dir / "good.txt").stat().st_mtime_ns == mtime
    assert (out_dir / "later.txt").exists()

    code, _, err = run(
        capsys,
        "transcribe",
        str(inputs / "good.flac"),
        "--model",
        "tiny.en",
        "-o",
        str(out_dir),
        "-f",
        "txt",
        "--verbose",
        "False",
        "--overwrite",
    )
    assert code == 0 and (out_dir / "good.txt").stat().st_mtime_ns != mtime


def test_inputs_with_the_same_name_do_not_overwrite_each_other(capsys, jfk_flac, tmp_path: Path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(jfk_flac, tmp_path / folder / "talk.flac")
    code, _, err = run(
        capsys,
        "transcribe",
        str(tmp_path / "a" / "talk.flac"),
        str(tmp_path / "b" / "talk.flac"),
        "--model",
        "tiny.en",
        "-o",
        str(tmp_path / "out"),
        "--verbose",
        "False",
    )
    assert code == 1 and "would overwrite those of" in err


def _bad_inputs(tmp_path: Path, media_dir: Path) -> dict[str, tuple[list[str], str]]:
    (tmp_path / "empty_dir").mkdir()
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("hello, I am a text file\n" * 50)
    soundfile.write(tmp_path / "short.wav", 0.1 * np.ones(1600, np.float32), 16000)
    soundfile.write(tmp_path / "silence.wav", np.zeros(30 * 16000, np.float32), 16000)
    mp3 = (media_dir / "jfk.mp3").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(mp3[: len(mp3) // 3])
    good = str(media_dir / "jfk.wav")
    return {
        "missing file": ([str(tmp_path / "nope.wav")], "no such file"),
        "no audio in directory": ([str(tmp_path / "empty_dir")], "no audio files"),
        "empty file": ([str(tmp_path / "empty.wav")], "empty file"),
        "0.1 s of audio": ([str(tmp_path / "short.wav")], "too short"),
        "pure silence": ([str(tmp_path / "silence.wav")], "silence"),
        "text renamed .wav": ([str(tmp_path / "text.wav")], "not an audio"),
        "truncated mp3": ([str(tmp_path / "cut.mp3")], "truncated"),
        "unknown model": ([good, "--model", "huge"], "unknown model 'huge'"),
        "unknown language": ([good, "--language", "xx"], "unknown language 'xx'"),
        "English-only model": ([good, "--model", "tiny.en", "--language", "fr"], "English-only"),
    }


BAD_CASES = [
    "missing file",
    "no audio in directory",
    "empty file",
    "0.1 s of audio",
    "pure silence",
    "text renamed .wav",
    "truncated mp3",
    "unknown model",
    "unknown language",
    "English-only model",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_one_line_and_non_zero(capsys, tmp_path: Path, media_dir: Path, case: str):
    args, message = _bad_inputs(tmp_path, media_dir)[case]
    code, out, err = run(capsys, "transcribe", *args, "-o", str(tmp_path / "out"))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("onsei: error: ") and message in lines[0], err
    assert out == ""
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_noise_gives_no_words_with_default_settings(capsys, tmp_path: Path):
    soundfile.write(tmp_path / "noise.wav", white_noise(30), 16000)
    code, out, err = run(capsys, "transcribe", str(tmp_path / "noise.wav"), "-o", str(tmp_path))
    assert code == 0, err
    assert json.loads((tmp_path / "noise.json").read_text())["segments"] == []
    assert (tmp_path / "noise.txt").read_text() == ""


def test_layout_options_need_word_timestamps(capsys, jfk_flac: Path, tmp_path: Path):
    code, _, err = run(capsys, "transcribe", str(jfk_flac), "--max_line_width", "20")
    assert code == 2 and "requires --word_timestamps True" in err


def test_detect_language(capsys):
    clip = shared("multilingual/picovoice-leopard/test_ja.wav")
    code, out, _ = run(capsys, "detect-language", str(clip), "--top", "3")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 3
    code_, probability = lines[0].split()
    assert code_ == "ja" and 0.5 < float(probability) <= 1
    assert all(len(line.split()) == 2 for line in lines)


def test_models_and_languages(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    assert "tiny.en" in out and "base *" in out and "99 languages" in out and "145 MB" in out
    code, out, _ = run(capsys, "languages")
    assert code == 0 and "ja\tJapanese" in out.splitlines()


def test_installed_command_runs_without_traceback(tmp_path: Path):
    command = Path(sys.executable).parent / "onsei"
    if not command.exists():
        pytest.skip("the onsei console script is not installed in this environment")
    (tmp_path / "fake.mp3").write_text("<html>not audio</html>")
    result = subprocess.run(
        [str(command), "transcribe", str(tmp_path / "fake.mp3"), "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[0].startswith("onsei: error: ")
    assert "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "onsei", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("onsei ")


def test_bad_option_value_is_one_line(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["transcribe", "talk.wav", "--beam_size", "five"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--beam_size" in err


def test_detect_language_on_noise_says_there_is_no_speech(capsys, tmp_path: Path):
    soundfile.write(tmp_path / "noise.wav", white_noise(10), 16000)
    code, out, err = run(capsys, "detect-language", str(tmp_path / "noise.wav"))
    assert code == 1 and out == ""
    assert (
        err.strip()
        == f"onsei: error: {tmp_path / 'noise.wav'}: no speech found (voice activity detection)"
    )


def test_seed_makes_sampling_repeatable(tmp_path: Path):
    clip = shared("clips/librispeech/test-clean/1089/134686/1089-134686-0000.flac")
    command = Path(sys.executable).parent / "onsei"
    if not command.exists():
        pytest.skip("the onsei console script is not installed in this environment")

    def sample(seed: int) -> str:
        args = [
            str(command),
            "transcribe",
            str(clip),
            "--model",
            "tiny.en",
            "--temperature",
            "1.0",
            "--temperature_increment_on_fallback",
            "None",
            "--best_of",
            "1",
            "--seed",
            str(seed),
            "-f",
            "txt",
            "-o",
            str(tmp_path / f"s{seed}"),
            "--overwrite",
        ]
        result = subprocess.run(args, capture_output=True, text=True, check=True)
        return result.stdout

    first = sample(1)
    assert first and sample(1) == first  # a fresh process, the same seed: the same sample
    assert sample(2) != first
