"""Expanding files, directories and glob patterns into the audio files of a batch."""

from __future__ import annotations

from pathlib import Path

from onsei.inputs import expand_inputs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_files_directories_and_globs(tmp_path: Path):
    a = _touch(tmp_path / "a.wav")
    b = _touch(tmp_path / "sub" / "b.MP3")
    _touch(tmp_path / "sub" / "notes.txt")
    c = _touch(tmp_path / "c.flac")
    inputs = expand_inputs([str(a), str(tmp_path / "sub"), str(tmp_path / "*.flac"), str(a)])
    assert inputs.files == [a, b, c]
    assert inputs.errors == []


def test_explicit_files_are_kept_whatever_their_extension(tmp_path: Path):
    odd = _touch(tmp_path / "recording.data")
    assert expand_inputs([str(odd)]).files == [odd]


def test_inputs_that_name_no_audio(tmp_path: Path):
    _touch(tmp_path / "empty_dir" / "readme.txt")
    inputs = expand_inputs(
        [str(tmp_path / "missing.wav"), str(tmp_path / "empty_dir"), str(tmp_path / "*.ogg")]
    )
    assert inputs.files == []
    assert [e.split(": ", 1)[1] for e in inputs.errors] == [
        "no such file",
        "no audio files in this directory",
        "no audio files match this pattern",
    ]
