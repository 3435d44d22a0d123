"""Writers that turn a ``Transcript`` into txt, srt, vtt, tsv, json and rttm files.

Each format is a function ``write(transcript, file, options)``; ``save_transcript`` renders one
and replaces the output file atomically, so an interrupted run never leaves a half-written file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from onsei.files import atomic_write_text
from onsei.transcript import Transcript
from onsei.writers.json import write_json
from onsei.writers.options import SubtitleOptions
from onsei.writers.rttm import write_rttm
from onsei.writers.subtitles import format_timestamp, write_srt, write_vtt
from onsei.writers.text import write_txt
from onsei.writers.tsv import write_tsv

Writer = Callable[[Transcript, TextIO, SubtitleOptions], None]

WRITERS: dict[str, Writer] = {
    "txt": write_txt,
    "vtt": write_vtt,
    "srt": write_srt,
    "tsv": write_tsv,
    "json": write_json,
    "rttm": write_rttm,
}
"""Output format name (also the file extension) -> writer."""

OUTPUT_FORMATS = (*WRITERS, "all")
SPEAKER_FORMATS = ("rttm",)
"""Formats that only make sense once speakers are assigned."""


def expand_formats(output_format: str, speakers: bool = False) -> list[str]:
    """``"all"`` -> every format (rttm only with ``speakers``); a name -> ``[name]``."""
    if output_format != "all":
        return [output_format]
    return [f for f in WRITERS if speakers or f not in SPEAKER_FORMATS]


def render(
    transcript: Transcript,
    output_format: str,
    options: SubtitleOptions | None = None,
    uri: str = "audio",
) -> str:
    """Return the transcript in ``output_format`` as a string (``uri``: the file id of rttm)."""
    buffer = io.StringIO()
    options = options or SubtitleOptions()
    if output_format == "rttm":
        write_rttm(transcript, buffer, options, uri)
    else:
        WRITERS[output_format](transcript, buffer, options)
    return buffer.getvalue()


def save_transcript(
    transcript: Transcript,
    path: str | os.PathLike,
    output_format: str,
    options: SubtitleOptions | None = None,
) -> Path:
    """Write the transcript to ``path`` atomically (temporary file, then rename)."""
    return atomic_write_text(path, render(transcript, output_format, options, uri=Path(path).stem))


__all__ = [
    "OUTPUT_FORMATS",
    "WRITERS",
    "SubtitleOptions",
    "expand_formats",
    "format_timestamp",
    "render",
    "save_transcript",
]
