"""Attention and joint CTC/attention beam search, and CTC prefix scores, against brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from onsei.decoding.attention import AttentionBeamOptions, AttentionBeamSearch
from onsei.decoding.ctc_prefix_score import CTCPrefixScorer
from onsei.models.config import DecoderConfig
from onsei.models.decoders import build_decoder

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


@pytest.mark.parametrize("length_penalty", [0.5, 1.0])
def test_length_penalty_ranks_complete_hypotheses_by_normalised_score(length_penalty: float):
    decoder = TableDecoder(seed=1)
    max_tokens = 3
    sequences = [s for n in range(max_tokens + 1) for s in itertools.product((A, B), repeat=n)]
    exact = {s: decoder.sequence_log_prob(s) / (len(s) + 1) ** length_penalty for s in sequences}
    options = AttentionBeamOptions(
        beam_size=len(sequences),
        max_length_ratio=max_tokens / 5,
        length_penalty=length_penalty,
        nbest=5,
    )
    search = AttentionBeamSearch(decoder, options, sos_eos=EOS, blank=BLANK)
    found = search.search(torch.zeros(1, 5, 2), torch.tensor([5]))[0]
    expected = brute_force_ranking(exact, 5)
    assert [tuple(h.tokens) for h in found] == [s for s, _ in expected]
    assert [h.score for h in found] == pytest.approx([v for _, v in expected], abs=1e-9)


REAL_DECODERS = {
    "lstm": DecoderConfig("lstm", hidden=12, layers=2, embed=6, attention_dim=8),
    "transformer": DecoderConfig("transformer", hidden=12, layers=2, heads=2, ff=16),
}
REAL_VOCAB, REAL_EOS = 7, 6


def real_decoder(name: str, seed: int) -> torch.nn.Module:
    """A random speller or Transformer decoder whose hypotheses end after 0 to 12 tokens."""
    torch.manual_seed(seed)
    decoder = build_decoder(REAL_DECODERS[name], REAL_VOCAB, encoder_dim=8).eval()
    with torch.no_grad():
        decoder.output.weight.mul_(4.0)  # peaky, so the search has choices to get wrong
        decoder.output.bias[REAL_EOS] += 0.6
    return decoder


def teacher_forced_log_prob(decoder, encoded, lengths, tokens: list[int]) -> float:
    """log P(tokens, end of sentence) by one forward pass of the whole sequence."""
    inputs = torch.tensor([[REAL_EOS, *tokens]])
    targets = torch.tensor([*tokens, REAL_EOS])
    with torch.no_grad():
        log_probs = decoder(encoded, lengths, inputs)[0].log_softmax(-1)
    return float(log_probs[torch.arange(len(targets)), targets].sum())


def greedy_tokens(decoder, encoded, lengths, limit: int) -> list[int]:
    state = decoder.init_state(encoded, lengths)
    prefix = torch.tensor([[REAL_EOS]])
    with torch.no_grad():
        for _ in range(limit):
            log_probs, state = decoder.step(prefix, state)
            log_probs[:, BLANK] = -math.inf
            token = int(log_probs.argmax(-1))
            if token == REAL_EOS:
                break
            prefix = torch.cat([prefix, torch.tensor([[token]])], dim=1)
    return prefix[0, 1:].tolist()


@pytest.mark.parametrize("name", REAL_DECODERS)
def test_beam_search_on_real_decoders_scores_what_the_decoder_says(name: str):
    # the cached states a beam reorders (LSTM cells and attention weights, self-attention keys)
    # must give each hypothesis the probability a forward pass over its tokens gives
    frames, beam = 12, 4
    for seed in range(4):
        decoder = real_decoder(name, seed)
        encoded, lengths = torch.randn(2, frames, 8), torch.tensor([frames, 9])
        options = AttentionBeamOptions(beam_size=beam, nbest=beam)
        found = AttentionBeamSearch(decoder, options, sos_eos=REAL_EOS, blank=BLANK).search(
            encoded, lengths
        )
        one = AttentionBeamOptions(beam_size=1)
        first = AttentionBeamSearch(decoder, one, sos_eos=REAL_EOS, blank=BLANK).search(
            encoded, lengths
        )
        for b, length in enumerate(lengths.tolist()):
            row = encoded[b : b + 1, :length], lengths[b : b + 1]
            for hypothesis in found[b]:
                assert hypothesis.score == pytest.approx(
                    teacher_forced_log_prob(decoder, *row, hypothesis.tokens), abs=1e-4
                )
            greedy = greedy_tokens(decoder, *row, limit=length)
            assert first[b][0].tokens == greedy
            assert first[b][0].score == pytest.approx(
                teacher_forced_log_prob(decoder, *row, greedy), abs=1e-4
            )
