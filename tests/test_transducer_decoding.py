"""Transducer beam searches on small random networks, against exhaustive enumeration."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from onsei.decoding.transducer import TransducerBeamOptions, TransducerBeamSearch
from onsei.losses.transducer import transducer_loss
from onsei.models.config import TransducerConfig
from onsei.models.transducer import Joint, Predictor

VOCAB, BLANK = 3, 0


def networks(seed: int, sharpness: float = 1.0):
    torch.manual_seed(seed)
    config = TransducerConfig(embed=4, hidden=6, layers=1, joint=8, dropout=0.0)
    predictor = Predictor(VOCAB, config, blank=BLANK).double().eval()
    joint = Joint(5, 6, config, VOCAB).double().eval()
    with torch.no_grad():
        joint.output.weight.mul_(sharpness)
    encoded = torch.randn(4, 5, dtype=torch.float64)
    return predictor, joint, encoded


@torch.no_grad()
def full_log_prob(predictor, joint, encoded, labels: tuple[int, ...]) -> float:
    """log P(labels) summed over every transducer alignment (the RNN-T loss)."""
    inputs = torch.tensor([[BLANK, *labels]])
    logits = joint(encoded[None], predictor(inputs))
    targets = torch.tensor([list(labels) or [1]])
    loss = transducer_loss(
        logits, targets, torch.tensor([len(encoded)]), torch.tensor([len(labels)]), BLANK, "sum"
    )
    return -float(loss)


# Sequences of up to MAX_LABELS labels: every transducer alignment of them emits at most
# MAX_LABELS labels in a frame, so a search allowing that many keeps them all.
MAX_LABELS = 3
SHORT = [s for n in range(MAX_LABELS + 1) for s in itertools.product((1, 2), repeat=n)]
FULL_BEAM = 2 ** (4 * MAX_LABELS + 1)  # more than all sequences 4 frames can emit


@pytest.mark.parametrize("seed", range(3))
def test_time_synchronous_search_with_a_full_beam_is_exact(seed: int):
    predictor, joint, encoded = networks(seed)
    options = TransducerBeamOptions(
        beam_size=FULL_BEAM, nbest=FULL_BEAM, max_symbols_per_frame=MAX_LABELS
    )
    found = {
        h.tokens: h.score for h in TransducerBeamSearch(predictor, joint, options).search(encoded)
    }
    for labels in SHORT:
        assert found[labels] == pytest.approx(full_log_prob(predictor, joint, encoded, labels))


@pytest.mark.parametrize("seed", range(3))
def test_graves_search_scores_a_subset_of_the_alignments(seed: int):
    predictor, joint, encoded = networks(seed, sharpness=3.0)
    options = TransducerBeamOptions(beam_size=4, algorithm="graves", nbest=3)
    found = TransducerBeamSearch(predictor, joint, options, BLANK).search(encoded)
    assert len(found) == 3 and found[0].score >= found[1].score >= found[2].score
    for hypothesis in found:
        assert (
            hypothesis.score <= full_log_prob(predictor, joint, encoded, hypothesis.tokens) + 1e-9
        )


@pytest.mark.parametrize("algorithm", ["time_sync", "graves"])
@pytest.mark.parametrize("seed", range(3))
def test_beam_searches_find_the_most_probable_labels(seed: int, algorithm: str):
    predictor, joint, encoded = networks(seed, sharpness=3.0)
    sequences = [s for n in range(6) for s in itertools.product((1, 2), repeat=n)]
    exact = {s: full_log_prob(predictor, joint, encoded, s) for s in sequences}
    options = TransducerBeamOptions(beam_size=8, algorithm=algorithm)
    found = TransducerBeamSearch(predictor, joint, options, BLANK).search(encoded)[0]
    assert found.tokens == max(exact, key=exact.__getitem__)


def test_bad_transducer_options():
    predictor, joint, _ = networks(0)
    from onsei.errors import OptionError

    with pytest.raises(OptionError, match="unknown algorithm 'alsd'"):
        TransducerBeamSearch(predictor, joint, TransducerBeamOptions(algorithm="alsd"))


SYMBOLS = ["<blank>", "A", "B"]


def fused(labels: tuple[int, ...], acoustic: float, lm, weight: float, bonus: float) -> float:
    symbols = [SYMBOLS[label] for label in labels]
    lm_score = lm.sentence_log10_prob(symbols) * math.log(10)
    return acoustic + weight * lm_score + bonus * len(labels)


@pytest.mark.parametrize("seed", range(3))
def test_lm_fusion_in_the_time_synchronous_search_is_exact_with_a_full_beam(seed: int):
    from onsei.lm import kneser_ney

    lm = kneser_ney([list("ABAB"), list("AAB"), list("BA")], order=2)
    predictor, joint, encoded = networks(seed)
    weight, bonus = 0.8, 0.3
    options = TransducerBeamOptions(
        beam_size=FULL_BEAM,
        nbest=FULL_BEAM,
        max_symbols_per_frame=MAX_LABELS,
        lm_weight=weight,
        word_bonus=bonus,
    )
    search = TransducerBeamSearch(predictor, joint, options, BLANK, lm=lm, symbols=SYMBOLS)
    found = {h.tokens: h.score for h in search.search(encoded)}
    for labels in SHORT:
        acoustic = full_log_prob(predictor, joint, encoded, labels)
        assert found[labels] == pytest.approx(fused(labels, acoustic, lm, weight, bonus))


@pytest.mark.parametrize("seed", range(3))
def test_lm_fusion_in_the_graves_search_finds_the_best_fused_labels(seed: int):
    from onsei.lm import kneser_ney

    lm = kneser_ney([list("ABAB"), list("AAB"), list("BA")], order=2)
    predictor, joint, encoded = networks(seed, sharpness=3.0)
    sequences = [s for n in range(6) for s in itertools.product((1, 2), repeat=n)]
    exact = {
        s: fused(s, full_log_prob(predictor, joint, encoded, s), lm, 1.0, 0.0) for s in sequences
    }
    options = TransducerBeamOptions(beam_size=8, algorithm="graves", lm_weight=1.0)
    search = TransducerBeamSearch(predictor, joint, options, BLANK, lm=lm, symbols=SYMBOLS)
    assert search.search(encoded)[0].tokens == max(exact, key=exact.__getitem__)
