"""KenLM binary models (``build_binary`` output), queried through the ``kenlm`` module."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from onsei.lm.arpa import EOS, LN_10, LanguageModelError

KENLM_MAGIC = b"mmap lm "
"""How every KenLM binary file begins."""


def is_kenlm_binary(path: str | os.PathLike) -> bool:
    with open(path, "rb") as file:
        return file.read(len(KENLM_MAGIC)) == KENLM_MAGIC


class KenLMModel:
    """A model loaded by KenLM, with the queries of :class:`onsei.lm.arpa.NgramLM`; KenLM
    does not list its words, so ``vocabulary`` is None (``knows`` answers for one word)."""

    vocabulary = None

    def __init__(self, path: str | os.PathLike):
        try:
            import kenlm
        except ImportError:
            raise LanguageModelError(
                f"{path}: a KenLM binary model needs the kenlm module "
                "(pip install kenlm), or use the ARPA file"
            ) from None
        try:
            self._model = kenlm.Model(str(path))
        except (OSError, RuntimeError) as error:
            raise LanguageModelError(f"{path}: KenLM cannot load it ({error})") from None
        self._new_state = kenlm.State
        self.path = Path(path)
        self.order: int = self._model.order

    def start(self):
        state = self._new_state()
        self._model.BeginSentenceWrite(state)
        return state

    def score(self, state, word: str):
        """Natural-log probability of ``word`` after ``state``, and the state after it."""
        after = self._new_state()
        return self._model.BaseScore(state, word, after) * LN_10, after

    def knows(self, word: str) -> bool:
        return word in self._model

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """Per-token perplexity (``</s>`` counted as a token)."""
        total, tokens = 0.0, 0
        for words in sentences:
            state = self.start()
            for word in [*words, EOS]:
                log_prob, state = self.score(state, word)
                total += log_prob
            tokens += len(words) + 1
        return math.exp(-total / max(tokens, 1))
