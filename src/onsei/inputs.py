"""Turn command-line inputs (files, directories, glob patterns) into a list of audio files."""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

AUDIO_EXTENSIONS = frozenset(
    ".wav .flac .mp3 .ogg .oga .opus .m4a .aac .wma .aiff .aif .aifc .au .caf .w64 .sph .nist "
    ".amr .mp4 .m4v .mov .webm .mkv .mka .avi .3gp".split()
)
"""Extensions picked up when a directory or glob is expanded (explicit files may be anything)."""


@dataclass
class Inputs:
    """The audio files to process, in order, and the inputs that named no audio at all."""

    files: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def is_audio_path(path: Path) -> bool:
    return path.suffix.lower() in AUDIO_EXTENSIONS


def expand_inputs(arguments: list[str]) -> Inputs:
    """Expand each argument: a file as is, a directory recursively, a pattern with ``glob``.

    Each file appears once, at its first position. An argument that yields nothing becomes an
    error line ("no such file", "no audio files in DIR", "no files match PATTERN").
    """
    inputs = Inputs()
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            inputs.files.append(path)

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and is_audio_path(p))
            if not found:
                inputs.errors.append(f"{argument}: no audio files in this directory")
            for file in found:
                add(file)
        elif path.exists():
            add(path)
        elif glob.has_magic(argument):
            matches = sorted(Path(m) for m in glob.glob(argument, recursive=True))
            found = [m for m in matches if m.is_file() and is_audio_path(m)]
            if not found:
                inputs.errors.append(f"{argument}: no audio files match this pattern")
            for file in found:
                add(file)
        else:
            inputs.errors.append(f"{argument}: no such file")
    return inputs
