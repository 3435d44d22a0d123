"""JSONL manifests: one utterance per line (id, audio, duration, text, speaker, language).

The format is the one of ../shared/data: ``audio`` is relative to the folder that holds the
manifest (absolute paths work too). Reading reports a bad line by its number.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from onsei.errors import OnseiError
from onsei.files import atomic_write_text


class ManifestError(OnseiError):
    """A manifest line is malformed or names audio that cannot be used."""


@dataclass
class Utterance:
    """One recording with its transcript; ``audio`` is an absolute path once read."""

    id: str
    audio: str
    duration: float
    text: str
    speaker: str | None = None
    language: str | None = None
    line: int | None = field(default=None, compare=False, repr=False)
    """Line number in the manifest it was read from (not written out)."""


_REQUIRED = ("id", "audio", "duration", "text")


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Read a JSONL manifest; ``audio`` paths come back absolute.

    Raises:
        ManifestError: naming the line number of a malformed line or a missing field.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest")
    utterances = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            utterances.append(_parse_line(line, path, number))
    return utterances


def _parse_line(line: str, path: Path, number: int) -> Utterance:
    where = f"{path}:{number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise ManifestError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected a JSON object")
    missing = [key for key in _REQUIRED if key not in record]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {', '.join(missing)}")
    try:
        return Utterance(
            id=str(record["id"]),
            audio=str((path.parent / record["audio"]).resolve()),
            duration=float(record["duration"]),
            text=str(record["text"]),
            speaker=None if record.get("speaker") is None else str(record["speaker"]),
            language=record.get("language"),
            line=number,
        )
    except (TypeError, ValueError) as error:
        raise ManifestError(f"{where}: bad value ({error})") from None


def write_manifest(path: str | os.PathLike, utterances: Iterable[Utterance]) -> Path:
    """Write utterances atomically; ``audio`` paths are written relative to the manifest's
    folder when they lie below it, absolute otherwise."""
    base = Path(path).parent.resolve()
    lines = []
    for utterance in utterances:
        record = {k: v for k, v in asdict(utterance).items() if v is not None and k != "line"}
        audio = Path(utterance.audio)
        if audio.is_relative_to(base):
            record["audio"] = str(audio.relative_to(base))
        record["duration"] = round(utterance.duration, 3)
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return atomic_write_text(path, "".join(lines))
