"""Tab-separated values: start and end in integer milliseconds, then the text."""

from __future__ import annotations

from typing import TextIO

from onsei.transcript import Transcript
from onsei.writers.options import SubtitleOptions


def write_tsv(transcript: Transcript, file: TextIO, options: SubtitleOptions) -> None:
    """Write ``start<TAB>end<TAB>text`` lines under a header, as the whisper CLI does."""
    print("start", "end", "text", sep="\t", file=file)
    for segment in transcript.segments:
        text = segment.text.strip().replace("\t", " ")
        print(round(1000 * segment.start), round(1000 * segment.end), text, sep="\t", file=file)
