"""Attention and joint CTC/attention beam search, and CTC prefix scores, against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from onsei.decoding.attention import AttentionBeamOptions, AttentionBeamSearch
from onsei.decoding.ctc_prefix_score import CTCPrefixScorer

BLANK, A, B, EOS = 0, 1, 2, 3  # the id layout of onsei's tokenizers, without <unk>
VOCAB = 4


def ctc_posteriors(frames: int, seed: int) -> torch.Tensor:
    """(frames, VOCAB) log posteriors over blank, A and B (never EOS)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(frames, VOCAB)) * 1.5
    logits[:, EOS] = -np.inf
    return torch.from_numpy(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))


def labelling_log_probs(log_probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """log P(labelling) for every labelling, by enumerating every path."""
    frames = log_probs.shape[0]
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product((BLANK, A, B), repeat=frames):
        score = float(sum(log_probs[t, s] for t, s in enumerate(path)))
        labels = tuple(s for i, s in enumerate(path) if s != BLANK and (i == 0 or s != path[i - 1]))
        totals[labels] = float(np.logaddexp(totals.get(labels, -math.inf), score))
    return totals


@pytest.mark.parametrize("seed", range(3))
def test_prefix_scores_sum_every_labelling_that_starts_with_the_prefix(seed: int):
    log_probs = ctc_posteriors(5, seed)
    exact = labelling_log_probs(log_probs)
    scorer = CTCPrefixScorer(log_probs[None], torch.tensor([5]), blank=BLANK, eos=EOS)
    state = scorer.initial_state(torch.tensor([0]))
    prefix: tuple[int, ...] = ()
    for token in (A, A, B):  # walk down one path, checking every candidate on the way
        scores, r = scorer.score(state, torch.tensor([0]), torch.tensor([[A, B, EOS]]))
        for column, candidate in enumerate((A, B)):
            extended = (*prefix, candidate)
            expected = np.logaddexp.reduce(
                [v for k, v in exact.items() if k[: len(extended)] == extended] or [-np.inf]
            )
            assert float(scores[0, column]) == pytest.approx(expected, abs=1e-9)
        assert float(scores[0, 2]) == pytest.approx(exact.get(prefix, -math.inf), abs=1e-9)
        column = (A, B).index(token)
        state = scorer.select(
            state, r, scores, torch.tensor([0]), torch.tensor([column]), torch.tensor([token])
        )
        prefix = (*prefix, token)


def test_padding_frames_do_not_count():
    log_probs = ctc_posteriors(4, 7)
    padded = torch.cat([log_probs, ctc_posteriors(3, 8)])[None]
    short = CTCPrefixScorer(log_probs[None], torch.tensor([4]), BLANK, EOS)
    long = CTCPrefixScorer(padded, torch.tensor([4]), BLANK, EOS)
    candidates = torch.tensor([[A, B, EOS]])
    one = short.score(short.initial_state(torch.tensor([0])), torch.tensor([0]), candidates)[0]
    two = long.score(long.initial_state(torch.tensor([0])), torch.tensor([0]), candidates)[0]
    assert torch.allclose(one, two)


class TableDecoder(torch.nn.Module):
    """A stand-in attention decoder: the next token depends only on the previous one."""

    def __init__(self, seed: int):
        super().__init__()
        rng = np.random.default_rng(seed)
        logits = rng.normal(size=(VOCAB, VOCAB)) * 1.5
        logits[:, BLANK] = -np.inf  # never proposed (the search masks it anyway)
        self.table = torch.from_numpy(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))

    def init_state(self, encoded, lengths):
        return torch.zeros(encoded.shape[0])

    def step(self, prefix, state):
        return self.table[prefix[:, -1]].clone(), state

    def select_state(self, state, indices):
        return state[indices]

    def sequence_log_prob(self, tokens: tuple[int, ...]) -> float:
        previous, total = EOS, 0.0
        for token in (*tokens, EOS):
            total += float(self.table[previous, token])
            previous = token
        return total


def brute_force_ranking(scores: dict[tuple[int, ...], float], top: int):
    return sorted(scores.items(), key=lambda item: -item[1])[:top]


@pytest.mark.parametrize("ctc_weight", [0.0, 0.3, 1.0])
def test_an_exhaustive_beam_finds_the_exact_n_best(ctc_weight: float):
    decoder = TableDecoder(seed=1)
    frames, max_tokens = 5, 3
    log_probs = ctc_posteriors(frames, seed=2)
    ctc = labelling_log_probs(log_probs)
    sequences = [s for n in range(max_tokens + 1) for s in itertools.product((A, B), repeat=n)]
    exact = {
        s: (1 - ctc_weight) * decoder.sequence_log_prob(s) + ctc_weight * ctc.get(s, -math.inf)
        for s in sequences
    }
    options = AttentionBeamOptions(
        beam_size=len(sequences),
        ctc_weight=ctc_weight,
        max_length_ratio=max_tokens / frames,
        nbest=5,
    )
    search = AttentionBeamSearch(decoder, options, sos_eos=EOS, blank=BLANK)
    encoded = torch.zeros(1, frames, 2)
    found = search.search(encoded, torch.tensor([frames]), log_probs[None])[0]
    expected = brute_force_ranking(exact, 5)
    assert [tuple(h.tokens) for h in found] == [s for s, _ in expected]
    assert [h.score for h in found] == pytest.approx([v for _, v in expected], abs=1e-9)


def test_utterances_in_a_batch_are_searched_independently():
    decoder = TableDecoder(seed=3)
    options = AttentionBeamOptions(beam_size=3, ctc_weight=0.5, max_length_ratio=1.0)
    search = AttentionBeamSearch(decoder, options, sos_eos=EOS, blank=BLANK)
    posteriors = [ctc_posteriors(6, 4), ctc_posteriors(4, 5)]
    padded = torch.stack([posteriors[0], torch.cat([posteriors[1], posteriors[1][:2]])])
    lengths = torch.tensor([6, 4])
    together = search.search(torch.zeros(2, 6, 2), lengths, padded)
    for b in range(2):
        alone = search.search(
            torch.zeros(1, int(lengths[b]), 2), lengths[b : b + 1], posteriors[b][None]
        )
        assert together[b][0].tokens == alone[0][0].tokens
        assert together[b][0].score == pytest.approx(alone[0][0].score, abs=1e-9)
