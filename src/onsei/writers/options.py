"""Layout options shared by the subtitle writers (the whisper CLI's names and meanings)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SubtitleOptions:
    """How srt/vtt cues are laid out; the word-level options need word timestamps."""

    max_line_width: int | None = None
    """Maximum characters in a line before breaking it."""
    max_line_count: int | None = None
    """Maximum lines in one cue."""
    max_words_per_line: int | None = None
    """Maximum words in one line (ignored when max_line_width is set)."""
    highlight_words: bool = False
    """Underline each word as it is spoken (one cue per word)."""
