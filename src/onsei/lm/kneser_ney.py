"""Interpolated modified Kneser-Ney estimation (Chen & Goodman 1998), the method of KenLM's
``lmplz``, in plain Python: sentences in, a back-off ``NgramLM`` out (ready for ARPA).

- Counts: the highest order uses raw counts of the padded sentences ``<s> w1 .. wk </s>``;
  each lower order uses *adjusted* counts, the number of distinct words seen before the n-gram
  (n-grams that start with ``<s>`` keep their raw counts, as nothing can precede them).
- Discounts per order from the counts of counts t1..t4 of those counts:
  ``Y = t1 / (t1 + 2 t2)``, ``D1 = 1 - 2Y t2/t1``, ``D2 = 2 - 3Y t3/t2``, ``D3+ = 3 - 4Y t4/t3``.
  On tiny corpora these can be undefined or out of range; then ``fallback`` discounts are used
  (KenLM's ``--discount_fallback`` defaults: 0.5, 1, 1.5).
- ``P(w | h) = (a(h w) - D(a(h w))) / a(h .) + gamma(h) P(w | h')``, where
  ``gamma(h) = (D1 N1(h .) + D2 N2(h .) + D3+ N3+(h .)) / a(h .)`` and ``h'`` drops the oldest
  word; unigrams interpolate with the uniform distribution over the vocabulary (with ``<unk>``).
  In the ARPA file ``gamma(h)`` is the back-off weight of ``h``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from onsei.errors import OptionError
from onsei.lm.arpa import BOS, EOS, NO_PROBABILITY, UNK, NgramLM

Gram = tuple[str, ...]
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)


def kneser_ney(
    sentences: Iterable[Sequence[str]],
    order: int = 3,
    fallback: tuple[float, float, float] = FALLBACK_DISCOUNTS,
) -> NgramLM:
    """Estimate an interpolated modified Kneser-Ney model of ``order`` from tokenised
    sentences (the words of each, without ``<s>``/``</s>``)."""
    if order < 1:
        raise OptionError(f"order: must be at least 1, got {order}")
    counts = _adjusted_counts(sentences, order)
    if not counts[0]:
        raise OptionError("the corpus has no words")
    discounts = [_discounts(grams, fallback) for grams in counts]
    vocabulary = {gram[0] for gram in counts[0]} | {UNK}
    probabilities: list[dict[Gram, float]] = []
    backoffs: dict[Gram, float] = {}
    lower: dict[Gram, float] = {}
    for n, grams in enumerate(counts, start=1):
        discount = discounts[n - 1]
        totals: dict[Gram, int] = defaultdict(int)
        discounted_mass: dict[Gram, float] = defaultdict(float)
        for gram, count in grams.items():
            totals[gram[:-1]] += count
            discounted_mass[gram[:-1]] += discount[min(count, 3)]
        gammas = {h: discounted_mass[h] / totals[h] for h in totals}
        level: dict[Gram, float] = {}
        for gram, count in grams.items():
            history = gram[:-1]
            below = lower[gram[1:]] if n > 1 else 1.0 / len(vocabulary)
            level[gram] = (count - discount[min(count, 3)]) / totals[history]
            level[gram] += gammas[history] * below
        if n == 1 and (UNK,) not in level:  # <unk> gets its share of the uniform distribution
            level[(UNK,)] = gammas[()] / len(vocabulary)
        for history, gamma in gammas.items():
            if history:
                backoffs[history] = math.log10(gamma) if gamma > 0 else NO_PROBABILITY
        lower = level
        probabilities.append({gram: math.log10(p) for gram, p in level.items()})
    probabilities[0][(BOS,)] = NO_PROBABILITY
    return NgramLM(probabilities, backoffs)


def _adjusted_counts(sentences: Iterable[Sequence[str]], order: int) -> list[Counter[Gram]]:
    """``counts[n - 1]``: the count used for each n-gram of the padded sentences.

    The highest order has raw counts. Below it, an n-gram that starts with ``<s>`` (only ever
    at a sentence start) keeps its raw count; any other n-gram occurs after some word, so its
    count is the number of distinct (n+1)-grams it ends. ``<s>`` alone is left out of the
    unigrams: it is never predicted.
    """
    counts: list[Counter[Gram]] = [Counter() for _ in range(order)]
    for words in sentences:
        padded = (BOS, *words, EOS)
        for i in range(len(padded) - order + 1):
            counts[order - 1][padded[i : i + order]] += 1
        for n in range(1, min(order - 1, len(padded)) + 1):
            counts[n - 1][padded[:n]] += 1
    for n in range(order - 1, 0, -1):
        for gram in counts[n]:
            counts[n - 1][gram[1:]] += 1
    counts[0].pop((BOS,), None)
    return counts


def _discounts(
    grams: Counter[Gram], fallback: tuple[float, float, float]
) -> tuple[float, float, float, float]:
    """``(0, D1, D2, D3+)`` from the counts of counts, or the fallback when undefined."""
    t = Counter(min(count, 4) for count in grams.values())
    t1, t2, t3, t4 = (t[k] for k in (1, 2, 3, 4))
    if min(t1, t2, t3, t4) > 0:
        y = t1 / (t1 + 2 * t2)
        found = (1 - 2 * y * t2 / t1, 2 - 3 * y * t3 / t2, 3 - 4 * y * t4 / t3)
        if all(0 < d <= k for k, d in enumerate(found, start=1)):
            return (0.0, *found)
    return (0.0, *fallback)
