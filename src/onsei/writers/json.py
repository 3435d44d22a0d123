"""JSON: the Transcript schema (``Transcript.to_dict``)."""

from __future__ import annotations

import json
from typing import TextIO

from onsei.transcript import Transcript
from onsei.writers.options import SubtitleOptions


def write_json(transcript: Transcript, file: TextIO, options: SubtitleOptions) -> None:
    """Write the transcript as one UTF-8 JSON object (non-ASCII characters kept as they are)."""
    json.dump(transcript.to_dict(), file, ensure_ascii=False)
    file.write("\n")
