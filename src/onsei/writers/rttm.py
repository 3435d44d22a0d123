"""RTTM (NIST Rich Transcription Time Marked): one ``SPEAKER`` line per speaker turn, the
format of diarization references and of pyannote, dscore and md-eval."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TextIO

from onsei.errors import OnseiError
from onsei.transcript import Transcript, Turn
from onsei.writers.options import SubtitleOptions


class RTTMError(OnseiError):
    """An RTTM file that cannot be read."""


def write_turns(turns: list[Turn], file: TextIO, uri: str) -> None:
    """``SPEAKER <uri> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>`` per turn."""
    uri = uri.replace(" ", "_") or "audio"
    for turn in turns:
        print(
            f"SPEAKER {uri} 1 {turn.start:.3f} {turn.duration:.3f} <NA> <NA> "
            f"{turn.speaker.replace(' ', '_')} <NA> <NA>",
            file=file,
        )


def write_rttm(
    transcript: Transcript, file: TextIO, options: SubtitleOptions, uri: str = "audio"
) -> None:
    """The turns of a transcript whose segments carry speakers (``--diarize``)."""
    turns = [Turn(s.start, s.end, s.speaker) for s in transcript.segments if s.speaker is not None]
    write_turns(turns, file, uri)


def read_rttm(path: str | os.PathLike) -> dict[str, list[Turn]]:
    """The turns of each file id (``uri``) in an RTTM file, in file order.

    Raises:
        RTTMError: naming the line of a malformed ``SPEAKER`` line, or a missing file.
    """
    turns: dict[str, list[Turn]] = {}
    for number, line in enumerate(text_lines(path), start=1):
        fields = line.split()
        if not fields or fields[0].startswith(";") or fields[0] != "SPEAKER":
            continue
        try:
            start, duration = float(fields[3]), float(fields[4])
            speaker = fields[7]
        except (IndexError, ValueError):
            raise RTTMError(f"{path}:{number}: not an RTTM SPEAKER line") from None
        if not (math.isfinite(start) and math.isfinite(duration)) or start < 0 or duration < 0:
            raise RTTMError(f"{path}:{number}: start and duration must be finite, not negative")
        turns.setdefault(fields[1], []).append(Turn(start, start + duration, speaker))
    return turns


def text_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file (a byte order mark left out).

    Raises:
        RTTMError: the file cannot be read or is not text.
    """
    try:
        return Path(path).read_text(encoding="utf-8-sig").splitlines()
    except OSError as error:
        raise RTTMError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise RTTMError(f"{path}: not a text file") from None
