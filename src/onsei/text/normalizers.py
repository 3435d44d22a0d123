"""Text normalisers applied to reference and hypothesis alike before scoring (WER, CER).

Transcripts of the same speech differ in ways that are not recognition errors: case,
punctuation, "4" or "four", "JPEG" or "J P E G". Each normaliser decides which of these
differences count:

- ``none``: as given (runs of whitespace collapsed).
- ``plain``: case and punctuation only: lower-cased; punctuation and symbols become spaces,
  except an apostrophe inside a word ("don't"). "JPEG 4" and "J P E G FOUR" still differ.
- ``whisper``: Whisper's English normaliser (transformers' port of openai-whisper's
  ``EnglishTextNormalizer``: contractions, titles, numbers to digits, currencies, British
  spellings are not mapped), with every digit then spelled out as its own word, before and
  after it: the normaliser alone groups digits unpredictably ("SEVEN ONE FIVE FOUR" -> "7154",
  "7 1 5 4" -> "7 one 5 4"), so both sides end as one word per digit ("seven one five four").
- ``spelled``: ``whisper``, after joining spelled-out letters into words, for corpora of
  spelled letters and digits such as AN4: hyphens between letters or digits become spaces, and
  a run of two or more single letters becomes one word, so "J P E G FOUR", "JPEG 4" and
  "J-P-E-G-4" all become "jpeg four".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import cache

from onsei.errors import OptionError

NORMALIZERS = ("none", "plain", "whisper", "spelled")

_DIGIT_WORDS = "zero one two three four five six seven eight nine".split()


def get_normalizer(name: str) -> Callable[[str], str]:
    """The normaliser called ``name`` (one of ``NORMALIZERS``)."""
    functions = {
        "none": normalize_none,
        "plain": normalize_plain,
        "whisper": normalize_whisper,
        "spelled": normalize_spelled,
    }
    if name not in functions:
        raise OptionError(f"normalizer: expected one of {', '.join(NORMALIZERS)}, got {name!r}")
    return functions[name]


def normalize_none(text: str) -> str:
    return " ".join(text.split())


def normalize_plain(text: str) -> str:
    """Lower case, punctuation and symbols removed (apostrophes inside words kept)."""
    lowered = text.lower()
    characters = []
    for i, c in enumerate(lowered):
        inside_word = (
            0 < i < len(lowered) - 1 and lowered[i - 1].isalnum() and lowered[i + 1].isalnum()
        )
        if c in "'’" and inside_word:
            characters.append("'")
        elif unicodedata.category(c)[0] in "PS":
            characters.append(" ")
        else:
            characters.append(c)
    return " ".join("".join(characters).split())


@cache
def _english_normalizer() -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer({})


def _spell_digits(text: str, keep_ordinals: bool) -> str:
    """Write every digit as its own English word: "7154" -> " seven one five four "."""
    # keep_ordinals: "1st" stays whole, or the normaliser would read "st" as "saint"
    ordinal = r"|st\b|nd\b|rd\b|th\b" if keep_ordinals else ""
    pattern = rf"(?<!\d)\d+(?!\d{ordinal})"
    return re.sub(pattern, lambda m: " " + " ".join(_DIGIT_WORDS[int(d)] for d in m[0]) + " ", text)


def normalize_whisper(text: str) -> str:
    """Whisper's English normaliser, with every digit spelled out as a separate word."""
    normalized = _english_normalizer()(_spell_digits(text, keep_ordinals=True))
    return " ".join(_spell_digits(normalized, keep_ordinals=False).split())


_HYPHEN_BETWEEN = re.compile(r"(?<=[^\W_])-(?=[^\W_])")
_LETTER_RUN = re.compile(r"\b[^\W\d_](?:\s+[^\W\d_]\b)+")


def join_spelled_letters(text: str) -> str:
    """ "J P E G FOUR" -> "JPEG FOUR", "B-A-O-Z-5-3" -> "BAOZ 5 3"."""
    text = _HYPHEN_BETWEEN.sub(" ", text)
    return _LETTER_RUN.sub(lambda m: "".join(m[0].split()), text)


def normalize_spelled(text: str) -> str:
    """``whisper`` after spelled-out letters are joined into words."""
    return normalize_whisper(join_spelled_letters(text))
