"""Text for language models: a plain text file (one sentence per line) or a JSONL manifest
(its ``text`` fields), cut into words, characters (spaces as ``▁``, like the character
tokenizer) or a trained model's own tokens (e.g. its BPE pieces), so that a token LM's
symbols are the model's tokens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from onsei.data.manifest import read_manifest
from onsei.errors import OptionError
from onsei.lm.arpa import LanguageModelError
from onsei.text.tokenizers import WORD_BOUNDARY, normalize_text

UNITS = ("word", "char")


def split_text(
    text: str, unit: str = "word", lowercase: bool = False, tokenizer: Any = None
) -> list[str]:
    """The LM symbols of ``text``: its words, its characters with ``▁`` for spaces, or (with
    a ``tokenizer``) the tokenizer's symbols for it."""
    if tokenizer is not None:
        symbols = tokenizer.symbols()
        return [symbols[i] for i in tokenizer.encode(text)]
    text = normalize_text(text, lowercase)
    if unit == "word":
        return text.split()
    if unit == "char":
        return list(text.replace(" ", WORD_BOUNDARY))
    raise OptionError(f"unit: must be one of {', '.join(UNITS)}, got {unit!r}")


def read_corpus(
    path: str | os.PathLike, unit: str = "word", lowercase: bool = False, tokenizer: Any = None
) -> Iterator[list[str]]:
    """The non-empty sentences of ``path`` as lists of symbols."""
    path = Path(path)
    if not path.is_file():
        raise LanguageModelError(f"{path}: no such text file")
    if path.suffix == ".jsonl":
        texts: Iterator[str] = (u.text for u in read_manifest(path))
    else:
        texts = _lines(path)
    for text in texts:
        symbols = split_text(text, unit, lowercase, tokenizer)
        if symbols:
            yield symbols


def _lines(path: Path) -> Iterator[str]:
    try:
        with open(path, encoding="utf-8") as file:
            yield from file
    except UnicodeDecodeError:
        raise LanguageModelError(f"{path}: not UTF-8 text") from None
