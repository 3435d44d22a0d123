"""The compiled CTC prefix beam search against the Python one: the same hypotheses, scores and
word times, with every kind of LM; and the LM tables it queries against ``NgramLM``."""

from __future__ import annotations

import random

import numpy as np
import pytest

from onsei.decoding.ctc import CTCBeamOptions, CTCPrefixBeamSearch
from onsei.lm import kneser_ney
from onsei.lm.arpa import NgramLM
from onsei.lm.tables import lm_score, ngram_tables

LETTERS = "ABCDE"
SYMBOLS = ["<blank>", "<unk>", *LETTERS, "▁", "<sos/eos>"]
WORD_SENTENCES = [["AB", "BAD", "CAB"], ["ACE", "BAD"], ["DAB", "AB", "ACE", "BE"], ["BE", "BAD"]]
CHAR_SENTENCES = [list("AB▁BAD▁CAB"), list("ACE▁BE"), list("DAB▁AB")]


def peaky_log_probs(frames: int, seed: int) -> np.ndarray:
    """Mostly blank frames, the others favouring a letter or the word boundary ``(T, V)``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(frames, len(SYMBOLS)))
    logits[:, 0] += np.where(rng.random(frames) < 0.6, 3.0, 0.0)
    logits[np.arange(frames), rng.integers(2, len(SYMBOLS) - 1, frames)] += 2.0
    logits[:, [1, -1]] = -np.inf  # <unk>, <sos/eos>
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def lm_for(kind: str) -> NgramLM | None:
    if kind == "word LM":
        return kneser_ney(WORD_SENTENCES, order=3)
    if kind == "char LM":
        return kneser_ney(CHAR_SENTENCES, order=4)
    return None


@pytest.mark.parametrize(
    ("kind", "partial_word_length"), [("no LM", 6), ("word LM", 6), ("word LM", 1), ("char LM", 6)]
)
@pytest.mark.parametrize(("beam_size", "nbest"), [(1, 1), (6, 1), (16, 4), (64, 1)])
def test_the_compiled_search_finds_what_the_python_search_finds(
    kind: str, partial_word_length: int, beam_size: int, nbest: int
):
    # (partial_word_length 1: every character of a word in progress off the LM's words costs)
    options = CTCBeamOptions(
        beam_size=beam_size,
        nbest=nbest,
        lm_weight=0.8,
        word_bonus=0.5,
        token_min_logp=-4.0,
        beam_prune_logp=-12.0,
        partial_word_length=partial_word_length,
    )
    search = CTCPrefixBeamSearch(SYMBOLS, options, lm_for(kind))
    assert search.compiled is not None
    batch = [peaky_log_probs(n, seed) for seed, n in enumerate((60, 1, 0, 25, 300, 7))]
    compiled = search.decode_batch(batch)
    search.compiled = None
    python = search.decode_batch(batch)
    for ours, theirs in zip(compiled, python, strict=True):
        assert [h.tokens for h in ours] == [h.tokens for h in theirs]
        assert [h.text for h in ours] == [h.text for h in theirs]
        assert [h.score for h in ours] == [h.score for h in theirs]
        assert [h.acoustic for h in ours] == [h.acoustic for h in theirs]
        assert [h.words for h in ours] == [h.words for h in theirs]


def test_hotwords_and_lms_beyond_64_bit_codes_use_the_python_search():
    hotwords = CTCPrefixBeamSearch(SYMBOLS, CTCBeamOptions(hotwords=("BAD",)))
    assert hotwords.compiled is None
    words = [f"W{i}" for i in range(6000)]
    wide = NgramLM([{(w,): -4.0 for w in words}, {}, {}, {}, {}])
    assert ngram_tables(wide) is None  # 6002 ** 5 > 2 ** 62


@pytest.mark.parametrize("kind", ["word LM", "char LM"])
def test_the_tables_score_and_move_between_states_as_the_model_does(kind: str):
    lm = lm_for(kind)
    tables = ngram_tables(lm)
    base = int(tables.arrays[-1][1])
    words = sorted(lm.vocabulary) + ["UNSEEN"]
    rng = random.Random(0)
    for _ in range(200):
        state, code = lm.start(), tables.start()
        for _ in range(10):
            word = rng.choice(words)
            log_prob, state = lm.score(state, word)
            compiled_log_prob, code = lm_score(
                tables.arrays, tables.unk_log10, code, tables.id(word)
            )
            assert compiled_log_prob == pytest.approx(log_prob, abs=1e-12)
            expected = 0
            for w in state:
                expected = expected * base + tables.id(w) + 1
            assert code == expected
