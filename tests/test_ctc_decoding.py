"""CTC decoding against brute force: every alignment of tiny inputs enumerated and summed."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from onsei.decoding.ctc import CTCBeamOptions, CTCPrefixBeamSearch, ctc_greedy
from onsei.errors import OptionError
from onsei.lm import LanguageModelError, kneser_ney

SYMBOLS = ["<blank>", "<unk>", "A", "B", "▁", "<sos/eos>"]
EXACT = {"token_min_logp": -math.inf, "beam_prune_logp": -math.inf}


def random_log_probs(frames: int, seed: int, emittable=(0, 2, 3, 4)) -> np.ndarray:
    """Posteriors over SYMBOLS that give probability only to ``emittable`` ids."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(frames, len(SYMBOLS))) * 2
    mask = np.full(len(SYMBOLS), -np.inf)
    mask[list(emittable)] = 0
    logits = logits + mask
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def brute_force(log_probs: np.ndarray, blank: int = 0) -> dict[tuple[int, ...], float]:
    """log P(labelling) for every labelling: the sum over all paths that collapse to it."""
    frames, vocab = log_probs.shape
    sums: dict[tuple[int, ...], float] = defaultdict(lambda: -math.inf)
    for path in itertools.product(range(vocab), repeat=frames):
        score = sum(log_probs[t, s] for t, s in enumerate(path))
        if score == -math.inf:
            continue
        labels = tuple(s for i, s in enumerate(path) if s != blank and (i == 0 or s != path[i - 1]))
        sums[labels] = np.logaddexp(sums[labels], score)
    return dict(sums)


def text_of(labels: tuple[int, ...]) -> str:
    return " ".join("".join(SYMBOLS[i] for i in labels).replace("▁", " ").split())


@pytest.mark.parametrize("seed", range(4))
def test_a_wide_beam_finds_the_exact_n_best_labellings(seed: int):
    log_probs = random_log_probs(5, seed, emittable=(0, 2, 3))
    exact = brute_force(log_probs)
    options = CTCBeamOptions(beam_size=500, nbest=10, **EXACT)
    hypotheses = CTCPrefixBeamSearch(SYMBOLS, options).decode(log_probs)
    expected = sorted(exact.items(), key=lambda item: -item[1])[:10]
    assert [tuple(h.tokens) for h in hypotheses] == [labels for labels, _ in expected]
    for hypothesis, (_, log_prob) in zip(hypotheses, expected, strict=True):
        assert hypothesis.acoustic == pytest.approx(log_prob, abs=1e-9)
        assert hypothesis.score == pytest.approx(log_prob, abs=1e-9)  # no LM: score = acoustic


def test_repeated_labels_need_a_blank_between_them():
    # frames: A A blank A -> "AA"; with no blank the two A's merge
    log_probs = np.log(np.full((4, len(SYMBOLS)), 1e-12))
    for frame, symbol in enumerate([2, 2, 0, 2]):
        log_probs[frame, symbol] = 0.0
    best = CTCPrefixBeamSearch(SYMBOLS, CTCBeamOptions(beam_size=4)).decode(log_probs)[0]
    assert best.tokens == [2, 2] and best.text == "AA"


@pytest.mark.parametrize("seed", range(3))
def test_a_small_beam_agrees_with_greedy_on_peaky_posteriors(seed: int):
    log_probs = random_log_probs(30, seed) * 4  # sharpen
    log_probs -= np.logaddexp.reduce(log_probs, axis=1, keepdims=True)
    greedy = ctc_greedy(torch.from_numpy(log_probs)[None], torch.tensor([30]))[0]
    best = CTCPrefixBeamSearch(SYMBOLS, CTCBeamOptions(beam_size=1)).decode(log_probs)[0]
    assert best.tokens == greedy


def test_batched_greedy_respects_lengths():
    log_probs = torch.full((2, 4, 3), -10.0)
    for b, path in enumerate([[1, 1, 0, 2], [2, 0, 2, 1]]):
        for t, s in enumerate(path):
            log_probs[b, t, s] = 0.0
    assert ctc_greedy(log_probs, torch.tensor([4, 3])) == [[1, 2], [2, 2]]


def word_lm_sentences() -> list[list[str]]:
    return [["AB", "BA"], ["AB"], ["BA", "AB", "BA"], ["AB", "AB"]]


@pytest.mark.parametrize("seed", range(3))
def test_word_lm_fusion_ranks_like_brute_force_rescoring(seed: int):
    lm = kneser_ney(word_lm_sentences(), order=2)
    log_probs = random_log_probs(6, seed)
    options = CTCBeamOptions(beam_size=5000, nbest=3, lm_weight=0.7, word_bonus=0.4, **EXACT)
    hypotheses = CTCPrefixBeamSearch(SYMBOLS, options, lm).decode(log_probs)

    def fused(labels: tuple[int, ...], acoustic: float) -> float:
        words = text_of(labels).split()
        lm_score = 0.0
        context = ["<s>"]
        for word in [*words, "</s>"]:
            lm_score += lm.log10_prob(context, word) * math.log(10)
            if word != "</s>" and (word,) not in lm.probabilities[0]:
                lm_score += options.unk_penalty
            context.append(word)
        return acoustic + options.lm_weight * lm_score + options.word_bonus * len(words)

    exact = brute_force(log_probs)
    # labellings that spell the same text ("A▁B" vs "A▁▁B") are distinct hypotheses
    ranked = sorted(((fused(k, v), k) for k, v in exact.items()), reverse=True)
    assert hypotheses[0].score == pytest.approx(ranked[0][0], abs=1e-9)
    assert tuple(hypotheses[0].tokens) == ranked[0][1]


def test_character_lm_is_applied_per_token():
    lm = kneser_ney([list("AB▁BA"), list("AB")], order=3)
    log_probs = random_log_probs(4, 0)
    options = CTCBeamOptions(beam_size=1000, lm_weight=1.0, word_bonus=0.0, **EXACT)
    decoder = CTCPrefixBeamSearch(SYMBOLS, options, lm)
    assert decoder.token_lm
    best = decoder.decode(log_probs)[0]
    symbols = [SYMBOLS[t] for t in best.tokens]
    lm_score = lm.sentence_log10_prob(symbols) * math.log(10)
    assert best.score == pytest.approx(best.acoustic + lm_score, abs=1e-9)


def test_hotwords_win_close_calls():
    # "AB" is slightly more likely than "B" (B B merged) acoustically
    log_probs = np.log(np.full((2, len(SYMBOLS)), 1e-9))
    log_probs[0, 2], log_probs[0, 3] = math.log(0.55), math.log(0.45)
    log_probs[1, 3] = 0.0
    plain = CTCPrefixBeamSearch(SYMBOLS, CTCBeamOptions(beam_size=4)).decode(log_probs)[0]
    assert plain.text == "AB"
    boosted = CTCPrefixBeamSearch(
        SYMBOLS, CTCBeamOptions(beam_size=4, hotwords=("B",), hotword_weight=2.0)
    ).decode(log_probs)[0]
    assert boosted.text == "B"
    assert boosted.score == pytest.approx(math.log(0.45) + 2.0, abs=1e-6)


def test_word_time_offsets():
    path = [2, 2, 0, 3, 4, 0, 0, 3, 0, 2]  # "AB" over frames 0-3, "BA" over 7-9
    log_probs = np.log(np.full((len(path), len(SYMBOLS)), 1e-9))
    for frame, symbol in enumerate(path):
        log_probs[frame, symbol] = 0.0
    best = CTCPrefixBeamSearch(SYMBOLS, CTCBeamOptions(beam_size=3)).decode(log_probs)[0]
    assert best.text == "AB BA"
    assert [(w.word, w.start_frame, w.end_frame) for w in best.words] == [
        ("AB", 0, 4),
        ("BA", 7, 10),
    ]


def test_bad_options_and_mismatched_lms_are_named():
    with pytest.raises(OptionError, match="beam_size: must be at least 1"):
        CTCPrefixBeamSearch(SYMBOLS, CTCBeamOptions(beam_size=0))
    with pytest.raises(OptionError, match=r"hotword 'Ab': the model has no token for 'b'"):
        CTCPrefixBeamSearch(SYMBOLS, CTCBeamOptions(hotwords=("Ab",)))
    lowercase = kneser_ney([["ab", "ba"], ["ba"]], order=2)
    with pytest.raises(LanguageModelError, match="do not match the model's tokens"):
        CTCPrefixBeamSearch(SYMBOLS, CTCBeamOptions(), lowercase)


def frame_by_frame_search(
    log_probs: np.ndarray, beam_size: int, token_min_logp: float, beam_prune_logp: float
) -> list[tuple[float, tuple[int, ...]]]:
    """Textbook prefix beam search over SYMBOLS, one frame at a time, with the decoder's
    pruning rules: tokens (blank too) below ``token_min_logp`` are not tried, except the
    likeliest; the ``beam_size`` best are kept, less those ``beam_prune_logp`` below the best."""
    tokens = (0, 1, 2, 3, 4)
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, -math.inf]}
    for row in log_probs:
        tried = {c for c in tokens if row[c] >= token_min_logp}
        tried.add(max(tokens, key=lambda c: row[c]))
        grown: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [-math.inf, -math.inf])
        for prefix, (pb, pnb) in beams.items():
            total = np.logaddexp(pb, pnb)
            if 0 in tried:
                grown[prefix][0] = np.logaddexp(grown[prefix][0], total + row[0])
            if prefix and prefix[-1] in tried:
                grown[prefix][1] = np.logaddexp(grown[prefix][1], pnb + row[prefix[-1]])
            for c in tried - {0}:
                source = pb if prefix and prefix[-1] == c else total
                grown[prefix + (c,)][1] = np.logaddexp(grown[prefix + (c,)][1], source + row[c])
        ranked = sorted(grown.items(), key=lambda item: -np.logaddexp(*item[1]))[:beam_size]
        floor = np.logaddexp(*ranked[0][1]) + beam_prune_logp
        beams = {p: v for p, v in ranked if np.logaddexp(*v) >= floor and v != [-math.inf] * 2}
    return sorted(((np.logaddexp(*v), prefix) for prefix, v in beams.items()), reverse=True)


def blank_heavy_log_probs(frames: int, seed: int) -> np.ndarray:
    """Posteriors whose frames are mostly blank-dominated, in runs, with some probability
    left on the other tokens: what a trained CTC model gives, but far less peaky."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(frames, len(SYMBOLS)))
    logits[:, 0] += np.where(rng.random(frames) < 0.7, 2.5, 0.0)
    logits[:, 5] = -np.inf  # <sos/eos>
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    ("beam_size", "token_min_logp", "beam_prune_logp"), [(8, -0.8, -1.0), (3, -2.0, -30.0)]
)
def test_pruned_search_equals_the_frame_by_frame_search(
    seed: int, beam_size: int, token_min_logp: float, beam_prune_logp: float
):
    # runs of frames that try one token only are applied in one step: same beams, same scores
    log_probs = blank_heavy_log_probs(40, seed)
    options = CTCBeamOptions(
        beam_size=beam_size,
        nbest=beam_size,
        token_min_logp=token_min_logp,
        beam_prune_logp=beam_prune_logp,
    )
    hypotheses = CTCPrefixBeamSearch(SYMBOLS, options).decode(log_probs)
    expected = frame_by_frame_search(log_probs, beam_size, token_min_logp, beam_prune_logp)
    assert [tuple(h.tokens) for h in hypotheses] == [prefix for _, prefix in expected][
        : len(hypotheses)
    ]
    assert len(hypotheses) == min(len(expected), beam_size)
    for hypothesis, (log_prob, _) in zip(hypotheses, expected, strict=False):
        assert hypothesis.acoustic == pytest.approx(log_prob, abs=1e-9)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scorer", ["none", "word LM", "word LM by length", "char LM", "hotwords"])
def test_the_one_best_search_drops_only_hypotheses_that_cannot_win(seed: int, scorer: str):
    # a 1-best search recombines prefixes with the same future; the n-best search does not
    # ("by length": a word in progress off the LM's words costs more the longer it grows)
    lm = {
        "word LM": kneser_ney(word_lm_sentences(), order=2),
        "word LM by length": kneser_ney(word_lm_sentences(), order=2),
        "char LM": kneser_ney([list("AB▁BA"), list("AB"), list("BB▁A")], order=3),
    }.get(scorer)
    hotwords = ("BA",) if scorer == "hotwords" else ()
    by_length = scorer == "word LM by length"
    log_probs = blank_heavy_log_probs(12, seed)

    def search(nbest: int) -> CTCPrefixBeamSearch:
        options = CTCBeamOptions(
            beam_size=5000,
            nbest=nbest,
            token_min_logp=-2.5,
            beam_prune_logp=-math.inf,
            lm_weight=0.8,
            word_bonus=0.3,
            hotwords=hotwords,
            **({"partial_word_length": 2, "partial_word_penalty": -2.0} if by_length else {}),
        )
        return CTCPrefixBeamSearch(SYMBOLS, options, lm)

    best = search(1).decode(log_probs)[0]
    reference = search(5000).decode(log_probs)[0]
    assert best.tokens == reference.tokens
    assert best.score == pytest.approx(reference.score, abs=1e-9)


def test_words_run_together_cost_more_the_longer_they_grow():
    # "AB" five times, each boundary a little less likely than blank: at a flat penalty for a
    # word in progress off the LM's words, "ABABABABAB" outscores the split words until the
    # end, where it is too late; a penalty that grows with the word lets them win in time
    def frame(log_probs: dict[str, float]) -> np.ndarray:
        row = np.full(len(SYMBOLS), -30.0)
        for symbol, log_prob in log_probs.items():
            row[SYMBOLS.index(symbol)] = log_prob
        return row

    rows = []
    for i in range(5):
        rows += [frame({"A": -0.01}), frame({"B": -0.01})]
        if i < 4:
            rows.append(frame({"<blank>": math.log(0.6), "▁": math.log(0.4)}))
    log_probs = np.stack(rows)
    log_probs -= np.logaddexp.reduce(log_probs, axis=1, keepdims=True)
    lm = kneser_ney(word_lm_sentences(), order=2)

    def best(partial_word_length: int) -> str:
        options = CTCBeamOptions(
            beam_size=4,
            lm_weight=0.5,
            word_bonus=0.0,
            partial_word_penalty=-1.0,
            partial_word_length=partial_word_length,
        )
        return CTCPrefixBeamSearch(SYMBOLS, options, lm).decode(log_probs)[0].text

    assert best(partial_word_length=100) == "ABABABABAB"
    assert best(partial_word_length=2) == "AB AB AB AB AB"


def test_a_kenlm_model_fuses_like_the_same_arpa_model(tmp_path):
    pytest.importorskip("kenlm", reason="the kenlm module is optional and not installed")
    from onsei.lm import write_arpa
    from onsei.lm.kenlm_model import KenLMModel

    for sentences, order in ((word_lm_sentences(), 2), ([list("AB▁BA"), list("BB▁A")], 3)):
        lm = kneser_ney(sentences, order=order)
        kenlm_model = KenLMModel(write_arpa(lm, tmp_path / f"lm{order}.arpa"))
        options = CTCBeamOptions(beam_size=2000, lm_weight=0.7, word_bonus=0.4, **EXACT)
        ours = CTCPrefixBeamSearch(SYMBOLS, options, lm)
        theirs = CTCPrefixBeamSearch(SYMBOLS, options, kenlm_model)
        assert theirs.token_lm == ours.token_lm == (order == 3)
        log_probs = random_log_probs(6, order)
        best, their_best = ours.decode(log_probs)[0], theirs.decode(log_probs)[0]
        assert their_best.tokens == best.tokens
        assert their_best.score == pytest.approx(best.score, abs=1e-3)


@pytest.mark.parametrize("scorer", ["none", "word LM", "char LM", "hotwords"])
def test_a_batch_decodes_as_its_utterances_one_by_one(scorer: str):
    # the batch's per-frame work is done once over all utterances: runs never cross them
    lm = {
        "word LM": kneser_ney(word_lm_sentences(), order=2),
        "char LM": kneser_ney([list("AB▁BA"), list("AB"), list("BB▁A")], order=3),
    }.get(scorer)
    options = CTCBeamOptions(
        beam_size=4,
        nbest=2,
        token_min_logp=-2.5,
        beam_prune_logp=-8.0,
        hotwords=("BA",) if scorer == "hotwords" else (),
    )
    search = CTCPrefixBeamSearch(SYMBOLS, options, lm)
    batch = [blank_heavy_log_probs(n, seed) for seed, n in enumerate((30, 1, 0, 7, 45, 2))]
    batch[3][:, 0] = 0.0  # all blank: a single run from its first frame to its last
    batch[3][:, 1:] = -np.inf
    batch[4][0] = batch[4][-1] = np.log(np.eye(len(SYMBOLS))[2] + 1e-12)  # "A" at both ends
    batched = search.decode_batch(batch)
    assert len(batched) == len(batch)
    for x, hypotheses in zip(batch, batched, strict=True):
        alone = search.decode(x)
        assert [h.tokens for h in hypotheses] == [h.tokens for h in alone]
        assert [h.score for h in hypotheses] == pytest.approx([h.score for h in alone], abs=1e-9)
        assert [[(w.start_frame, w.end_frame) for w in h.words] for h in hypotheses] == [
            [(w.start_frame, w.end_frame) for w in h.words] for h in alone
        ]
    assert search.decode_batch([]) == []
