"""SubRip (.srt) and WebVTT (.vtt) subtitles, cue for cue as the whisper CLI writes them.

Without word timestamps every segment is one cue. With them, cues are built from words so the
line-layout options (width, line count, words per line, word highlighting) can apply.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import TextIO

from onsei.transcript import Segment, Transcript, Word
from onsei.writers.options import SubtitleOptions

_LONG_PAUSE = 3.0  # seconds of silence that start a new cue when segments are not preserved


def format_timestamp(
    seconds: float, always_include_hours: bool = False, decimal_marker: str = "."
) -> str:
    """``3725.5`` -> ``"01:02:05.500"``; hours are shown when non-zero or asked for."""
    milliseconds = round(max(seconds, 0.0) * 1000.0)
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    whole_seconds, milliseconds = divmod(milliseconds, 1_000)
    hours_marker = f"{hours:02d}:" if always_include_hours or hours > 0 else ""
    return f"{hours_marker}{minutes:02d}:{whole_seconds:02d}{decimal_marker}{milliseconds:03d}"


def write_srt(transcript: Transcript, file: TextIO, options: SubtitleOptions) -> None:
    """Numbered cues with ``HH:MM:SS,mmm`` times."""
    cues = iterate_cues(transcript, options, always_include_hours=True, decimal_marker=",")
    for index, (start, end, text) in enumerate(cues, start=1):
        print(f"{index}\n{start} --> {end}\n{text}\n", file=file)


def write_vtt(transcript: Transcript, file: TextIO, options: SubtitleOptions) -> None:
    """A ``WEBVTT`` header, then cues with ``MM:SS.mmm`` times."""
    print("WEBVTT\n", file=file)
    cues = iterate_cues(transcript, options, always_include_hours=False, decimal_marker=".")
    for start, end, text in cues:
        print(f"{start} --> {end}\n{text}\n", file=file)


def iterate_cues(
    transcript: Transcript,
    options: SubtitleOptions,
    *,
    always_include_hours: bool,
    decimal_marker: str,
) -> Iterator[tuple[str, str, str]]:
    """Yield ``(start, end, text)`` for each cue, times already formatted."""

    def stamp(seconds: float) -> str:
        return format_timestamp(seconds, always_include_hours, decimal_marker)

    segments = transcript.segments
    if not (segments and segments[0].words is not None):
        for segment in segments:
            text = _speaker_prefix(segment) + segment.text.strip().replace("-->", "->")
            yield stamp(segment.start), stamp(segment.end), text
        return

    for cue in _word_cues(segments, options):
        cue_start, cue_end = stamp(cue[0].start), stamp(cue[-1].end)
        speaker = f"[{cue[0].speaker}] " if cue[0].speaker is not None else ""
        cue_text = speaker + "".join(word.word for word in cue)
        if not options.highlight_words:
            yield cue_start, cue_end, cue_text
            continue
        last = cue_start
        for word in cue:
            start, end = stamp(word.start), stamp(word.end)
            if last != start:
                yield last, start, cue_text
            yield (
                start,
                end,
                speaker
                + "".join(
                    re.sub(r"^(\s*)(.*)$", r"\1<u>\2</u>", other.word)
                    if other is word
                    else other.word
                    for other in cue
                ),
            )
            last = end


def _speaker_prefix(segment: Segment) -> str:
    return f"[{segment.speaker}] " if segment.speaker is not None else ""


def _word_cues(segments: list[Segment], options: SubtitleOptions) -> Iterator[list[Word]]:
    """Group words into cues; a word's text gains a leading newline where a line breaks."""
    preserve_segments = options.max_line_count is None or options.max_line_width is None
    max_line_width = options.max_line_width or 1000
    max_words_per_line = options.max_words_per_line or 1000
    line_length = 0
    line_count = 1
    cue: list[Word] = []
    last_start = next((w.start for s in segments for w in s.words or []), segments[0].start)
    for segment in segments:
        words = segment.words or []
        for chunk_start in range(0, len(words), max_words_per_line):
            for index, original in enumerate(words[chunk_start : chunk_start + max_words_per_line]):
                word = replace(original)
                long_pause = not preserve_segments and word.start - last_start > _LONG_PAUSE
                has_room = line_length + len(word.word) <= max_line_width
                segment_break = (index == 0 and len(cue) > 0 and preserve_segments) or (
                    len(cue) > 0 and word.speaker != cue[-1].speaker  # a cue has one speaker
                )
                if line_length > 0 and has_room and not long_pause and not segment_break:
                    line_length += len(word.word)
                else:
                    word.word = word.word.strip()
                    new_cue = (
                        cue
                        and options.max_line_count is not None
                        and (long_pause or line_count >= options.max_line_count)
                    ) or segment_break
                    if new_cue:
                        yield cue
                        cue = []
                        line_count = 1
                    elif line_length > 0:
                        line_count += 1
                        word.word = "\n" + word.word
                    line_length = len(word.word.strip())
                cue.append(word)
                last_start = word.start
    if cue:
        yield cue
