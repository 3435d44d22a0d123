"""An ARPA n-gram model as sorted integer arrays, and its queries compiled with numba, for
the compiled CTC search (``onsei.decoding.ctc_compiled``).

Words get ids ``0 .. W - 1`` (and ``W``: a word the model does not know, in no n-gram). An
n-gram of ids ``w1 .. wn`` is the number ``(w1 + 1) B^(n-1) + ... + (wn + 1)`` in base
``B = W + 2``: no digit is 0, so n-grams of different orders never share a number, the
newest word is the lowest digit, and ``code % B**j`` is the history of its last ``j`` words.
A state is the code of a history, as ``NgramLM.score`` returns it (without the words that
cannot change a later probability). Lookups are binary searches in the sorted codes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numba
import numpy as np

from onsei.lm.arpa import BOS, EOS, NO_PROBABILITY, UNK, NgramLM

LN_10 = math.log(10.0)
_MAX_CODE = 2**62


@dataclass(frozen=True)
class NgramTables:
    """``NgramLM`` as arrays; ``arrays`` is the tuple the compiled queries take."""

    ids: dict[str, int]
    """Id of every word in the model's n-grams; ``len(ids)`` stands for any other word."""
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    """(n-gram codes, their log10 probabilities, back-off codes, their log10 weights,
    histories a state keeps, powers ``B**0 .. B**order``), the codes sorted."""
    unk_log10: float
    """log10 probability of a word the model does not know."""

    def id(self, word: str) -> int:
        return self.ids.get(word, len(self.ids))

    def start(self) -> int:
        """The state before the first word: the history ``<s>``."""
        return self.id(BOS) + 1

    @property
    def end(self) -> int:
        return self.id(EOS)


def ngram_tables(lm: NgramLM) -> NgramTables | None:
    """The tables of ``lm``, or None if its codes would not fit in 64 bits."""
    words = sorted({word for grams in lm.probabilities for gram in grams for word in gram})
    ids = {word: i for i, word in enumerate(words)}
    base = len(ids) + 2
    if base**lm.order >= _MAX_CODE:
        return None

    def codes(grams: Iterable[tuple[str, ...]]) -> np.ndarray:
        numbers = []
        for gram in grams:
            code = 0
            for word in gram:
                code = code * base + ids[word] + 1
            numbers.append(code)
        return np.array(numbers, dtype=np.int64)

    def sorted_table(table: dict[tuple[str, ...], float]) -> tuple[np.ndarray, np.ndarray]:
        keys = codes(table)
        values = np.fromiter(table.values(), dtype=np.float64, count=len(table))
        order = np.argsort(keys)
        return keys[order], values[order]

    probabilities: dict[tuple[str, ...], float] = {}
    for grams in lm.probabilities:
        probabilities.update(grams)
    gram_codes, gram_log10 = sorted_table(probabilities)
    backoff_codes, backoff_log10 = sorted_table(lm.backoffs)
    kept = lm.contexts | {gram for gram, weight in lm.backoffs.items() if weight}
    keep_codes = np.sort(codes(kept))
    unk = lm.probabilities[0].get((UNK,), NO_PROBABILITY)
    powers = np.array([base**j for j in range(lm.order + 1)], dtype=np.int64)
    arrays = (gram_codes, gram_log10, backoff_codes, backoff_log10, keep_codes, powers)
    return NgramTables(ids, arrays, unk)


@numba.njit(cache=True)
def _index(codes: np.ndarray, code: int) -> int:
    """Position of ``code`` in the sorted ``codes``, or -1."""
    i = np.searchsorted(codes, code)
    if i < len(codes) and codes[i] == code:
        return i
    return -1


@numba.njit(cache=True)
def _digits(code: int, base: int) -> int:
    """How many words the history ``code`` holds."""
    n = 0
    while code > 0:
        code //= base
        n += 1
    return n


@numba.njit(cache=True)
def lm_score(arrays, unk_log10: float, state: int, word: int) -> tuple[float, int]:
    """``NgramLM.score`` on ids: natural-log P(word | state), and the state after it."""
    gram_codes, gram_log10, backoff_codes, backoff_log10, keep_codes, powers = arrays
    order = len(powers) - 1
    base = powers[1]
    context = state % powers[order - 1]
    penalty = 0.0
    log10 = NO_PROBABILITY
    found = False
    for j in range(_digits(context, base), -1, -1):
        history = context % powers[j]
        i = _index(gram_codes, history * base + word + 1)
        if i >= 0:
            log10 = penalty + gram_log10[i]
            found = True
            break
        i = _index(backoff_codes, history)
        if i >= 0:
            penalty += backoff_log10[i]
    if not found:
        log10 = penalty + unk_log10
    history = (context * base + word + 1) % powers[order - 1]
    j = _digits(history, base)
    while j > 0 and _index(keep_codes, history) < 0:
        j -= 1
        history = history % powers[j]
    return log10 * LN_10, history
