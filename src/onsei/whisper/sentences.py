"""Segments of subtitle length from the one segment per speech chunk of batched decoding.

Batched decoding without timestamps (``onsei.whisper.batched``) gives one segment per VAD
chunk, up to 30 s long: too long for a subtitle cue or a seek point. Whisper's sequential
algorithm ends its segments at timestamp tokens, usually at sentence ends, within about 10 s.
Here a chunk's segment is cut, by its word timestamps, after every word that ends a sentence,
and a piece still longer than ``MAX_SEGMENT_SECONDS`` is cut again at its longest pause
between words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from onsei.transcript import Segment, Word

MAX_SEGMENT_SECONDS = 10.0
MIN_PIECE_SECONDS = 1.0
"""A pause is a cut point only if it leaves this much speech on both sides (where any does)."""
SENTENCE_ENDS = (".", "?", "!", "。", "？", "！", "…")
CLOSING_QUOTES = "\"'”’)]」』"


def split_segment(
    segment: Segment,
    encode: Callable[[str], list[int]],
    max_seconds: float = MAX_SEGMENT_SECONDS,
) -> list[Segment]:
    """Cut ``segment`` (with ``words``) into sentences of at most ``max_seconds`` where its
    pauses allow; each piece keeps its words, the tokens ``encode(text)`` gives for its text,
    and the chunk's decoding statistics (log-prob, no-speech probability, compression ratio
    and temperature describe the whole chunk). A segment without words is returned as it is;
    ids are left to the caller."""
    if not segment.words:
        return [segment]
    pieces = []
    for sentence in _sentences(segment.words):
        pieces += _shorter_than(sentence, max_seconds)
    if len(pieces) == 1:
        return [segment]
    return [
        replace(
            segment,
            start=words[0].start,
            end=words[-1].end,
            text=(text := "".join(w.word for w in words)),
            words=words,
            tokens=encode(text),
        )
        for words in pieces
    ]


def _sentences(words: list[Word]) -> list[list[Word]]:
    """``words`` cut after each word that ends a sentence."""
    sentences: list[list[Word]] = [[]]
    for i, word in enumerate(words):
        sentences[-1].append(word)
        if word.word.strip().rstrip(CLOSING_QUOTES).endswith(SENTENCE_ENDS) and i < len(words) - 1:
            sentences.append([])
    return sentences


def _shorter_than(words: list[Word], max_seconds: float) -> list[list[Word]]:
    """``words`` cut at their longest pause, again and again, until each piece lasts at most
    ``max_seconds`` or is one word."""
    if len(words) < 2 or words[-1].end - words[0].start <= max_seconds:
        return [words]
    cuts = range(1, len(words))  # cut before words[i]
    roomy = [
        i
        for i in cuts
        if words[i - 1].end - words[0].start >= MIN_PIECE_SECONDS
        and words[-1].end - words[i].start >= MIN_PIECE_SECONDS
    ]
    middle = (words[0].start + words[-1].end) / 2
    cut = max(
        roomy or cuts,
        key=lambda i: (round(words[i].start - words[i - 1].end, 2), -abs(words[i].start - middle)),
    )
    return _shorter_than(words[:cut], max_seconds) + _shorter_than(words[cut:], max_seconds)
