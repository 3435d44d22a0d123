"""A language model as the decoders query it, and loading one from a file: ARPA text (read
by onsei), or a KenLM binary (through the ``kenlm`` module, when it is installed)."""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from onsei.lm.arpa import LanguageModelError, NgramLM, read_arpa
from onsei.lm.kenlm_model import KenLMModel, is_kenlm_binary


class LanguageModel(Protocol):
    """What the decoders need of an n-gram model. States are hashable, and equal states
    mean equal futures (decoders merge and cache by them)."""

    order: int

    @property
    def vocabulary(self) -> set[str] | None:
        """Its words (``<s>`` and the like included), or None if they cannot be listed."""

    def start(self) -> Hashable:
        """The state before the first word of a sentence."""

    def score(self, state: Hashable, word: str) -> tuple[float, Hashable]:
        """Natural-log probability of ``word`` after ``state``, and the state after it."""

    def knows(self, word: str) -> bool:
        """Whether ``word`` is in its vocabulary."""

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """Per-token perplexity, ``</s>`` counted as a token."""


def load_language_model(path: str | os.PathLike) -> LanguageModel:
    """The model at ``path``: a KenLM binary, or an ARPA file."""
    path = Path(path)
    if path.is_file() and is_kenlm_binary(path):
        return KenLMModel(path)
    return read_arpa(path)


__all__ = ["LanguageModel", "LanguageModelError", "NgramLM", "load_language_model"]
