"""Plain text: one segment per line."""

from __future__ import annotations

from typing import TextIO

from onsei.transcript import Transcript
from onsei.writers.options import SubtitleOptions


def write_txt(transcript: Transcript, file: TextIO, options: SubtitleOptions) -> None:
    """Write each segment's text, stripped, on its own line (speaker-prefixed when known)."""
    for segment in transcript.segments:
        text = segment.text.strip()
        if segment.speaker is not None:
            text = f"[{segment.speaker}] {text}"
        print(text, file=file)
