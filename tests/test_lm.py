"""N-gram LMs: modified Kneser-Ney estimation, ARPA reading/writing, queries, `onsei lm`."""

from __future__ import annotations

import importlib.util
import math
import random
import sys
from collections import Counter
from pathlib import Path

import pytest

from onsei.cli import main
from onsei.lm import LanguageModelError, kneser_ney, load_language_model, read_arpa, write_arpa
from onsei.lm.corpus import split_text
from onsei.lm.kenlm_model import KENLM_MAGIC, KenLMModel
from onsei.lm.kneser_ney import FALLBACK_DISCOUNTS, _adjusted_counts, _discounts
from onsei.text.tokenizers import SentencePieceTokenizer


def grammar_sentences(count: int, seed: int = 0) -> list[list[str]]:
    """Sentences of 2 to 9 words drawn from 150 words with Zipf frequencies: varied enough
    that counts of counts 1..4 all occur, so the discounts come from the data."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(150)]
    weights = [1 / (rank + 1) for rank in range(150)]
    return [rng.choices(words, weights, k=rng.randint(2, 9)) for _ in range(count)]


def phrase_sentences(count: int, seed: int = 0) -> list[list[str]]:
    """Sentences of a small phrase grammar, where the previous words do predict the next."""
    rng = random.Random(seed)
    subjects = "the cat|a dog|my friend|the old man|she|we".split("|")
    verbs = "sat on|looked at|ran to|walked past|saw".split("|")
    objects = "the mat|a log|the house|the river|a tree|the red car|it".split("|")
    return [
        f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}".split()
        for _ in range(count)
    ]


def probability(model, context: tuple[str, ...], word: str) -> float:
    return 10 ** model.log10_prob(context, word)


def test_a_hand_computed_bigram_model():
    # <s> a b </s> and <s> a </s>: too small for estimated discounts, so 0.5 / 1 / 1.5
    model = kneser_ney([["a", "b"], ["a"]], order=2)
    # unigram continuation counts a:1 b:1 </s>:2 (total 4), discounted 0.5+0.5+1 -> gamma 1/2,
    # spread over 4 words (a, b, </s>, <unk>)
    assert probability(model, (), "a") == pytest.approx(0.5 / 4 + 0.5 / 4)
    assert probability(model, (), "</s>") == pytest.approx(1 / 4 + 0.5 / 4)
    assert probability(model, (), "<unk>") == pytest.approx(0.5 / 4)
    assert probability(model, (), "zebra") == pytest.approx(0.5 / 4)  # unknown words are <unk>
    # after <s>: a seen twice (discount 1) of 2 -> 1/2, gamma 1/2
    assert probability(model, ("<s>",), "a") == pytest.approx(0.5 + 0.5 * 0.25)
    # after a: b and </s> once each (discount 0.5), gamma 1/2
    assert probability(model, ("a",), "b") == pytest.approx(0.25 + 0.5 * 0.25)
    assert probability(model, ("a",), "</s>") == pytest.approx(0.25 + 0.5 * 0.375)
    assert probability(model, ("a",), "a") == pytest.approx(0.5 * 0.25)  # backed off
    assert model.probabilities[0][("<s>",)] == -99.0


def test_lower_orders_count_distinct_left_words_except_after_sentence_start():
    counts = _adjusted_counts([["x", "y"], ["x", "y"], ["z", "y"]], order=3)
    assert counts[2][("<s>", "x", "y")] == 2  # highest order: raw counts
    assert counts[1][("<s>", "x")] == 2  # starts with <s>: raw count
    assert counts[1][("x", "y")] == 1  # only ever after <s>
    assert counts[0][("y",)] == 2  # after x and after z
    assert ("<s>",) not in counts[0]


def test_discounts_follow_the_counts_of_counts():
    grams = Counter({(str(i),): c for i, c in enumerate([1] * 8 + [2] * 4 + [3] * 2 + [4])})
    y = 8 / (8 + 2 * 4)
    expected = (0.0, 1 - 2 * y * 4 / 8, 2 - 3 * y * 2 / 4, 3 - 4 * y * 1 / 2)
    assert _discounts(grams, FALLBACK_DISCOUNTS) == pytest.approx(expected)
    assert _discounts(Counter({("a",): 1}), FALLBACK_DISCOUNTS) == (0.0, *FALLBACK_DISCOUNTS)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_gives_a_distribution_that_sums_to_one(order: int):
    sentences = grammar_sentences(2000)
    model = kneser_ney(sentences, order)
    for n in range(2, order + 1):  # estimated, not fallback, discounts at every order
        t = Counter(min(c, 4) for c in _adjusted_counts(sentences, order)[n - 1].values())
        assert all(t[k] for k in (1, 2, 3, 4))
    words = sorted(model.vocabulary - {"<s>"})
    contexts = {()} | model.contexts | {("zebra",), ("the", "zebra"), ("zebra", "the")}
    for context in contexts:
        total = sum(probability(model, context, w) for w in words)
        assert total == pytest.approx(1.0, abs=1e-9), context


def test_higher_orders_predict_held_out_text_better():
    train, test = phrase_sentences(400, seed=1), phrase_sentences(100, seed=2)
    perplexities = [kneser_ney(train, order).perplexity(test) for order in (1, 2, 3)]
    assert perplexities[0] > perplexities[1] > perplexities[2]


def test_arpa_round_trip(tmp_path: Path):
    model = kneser_ney(grammar_sentences(200), order=3)
    path = write_arpa(model, tmp_path / "lm.arpa")
    text = path.read_text()
    assert text.startswith("\n\\data\\\nngram 1=") and text.rstrip().endswith("\\end\\")
    again = read_arpa(path)
    assert again.order == 3
    for grams, read in zip(model.probabilities, again.probabilities, strict=True):
        assert grams.keys() == read.keys()
        assert all(abs(grams[g] - read[g]) < 1e-6 for g in grams)
    assert all(abs(model.backoffs[h] - again.backoffs[h]) < 1e-6 for h in model.backoffs)


def test_states_drop_history_that_cannot_matter():
    model = kneser_ney([["a", "b", "c"], ["c", "a"]], order=3)
    log_prob, state = model.score(model.start(), "a")
    assert state == ("<s>", "a")
    assert log_prob == pytest.approx(model.log10_prob(("<s>",), "a") * math.log(10))
    assert model.score(("a", "b"), "c")[1] == ("b", "c")
    _, state = model.score(("a",), "c")  # "a c" was never seen: only "c" can matter
    assert state == ("c",)
    _, state = model.score(("a",), "zebra")  # an unknown word ends every history
    assert state == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\ta\n", "no \\\\end\\\\ marker"),
        ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\ta\n\\end\\\n", "announces 2 1-grams"),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\nhigh\ta\n\\end\\\n", r"lm.arpa:5: expected a number"),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\ta b c\n\\end\\\n", "lm.arpa:5: a 1-gram line"),
        ("\\data\\\nngram 1=1\n\n\\2-grams:\n\\end\\\n", "unexpected section"),
        ("\\end\\\n", "header and the n-gram sections disagree"),
    ],
)
def test_malformed_arpa_files_name_the_problem(tmp_path: Path, text: str, message: str):
    path = tmp_path / "lm.arpa"
    path.write_text(text)
    with pytest.raises(LanguageModelError, match=message):
        read_arpa(path)


def test_binary_or_missing_files_are_refused(tmp_path: Path):
    with pytest.raises(LanguageModelError, match="no such language model"):
        read_arpa(tmp_path / "missing.arpa")
    binary = tmp_path / "lm.bin"
    binary.write_bytes(b"mmap lm http://kheafield.com/code\x00\xff\xfe\x80")
    with pytest.raises(LanguageModelError, match="not a text ARPA file"):
        read_arpa(binary)


def test_character_units_use_the_word_boundary_symbol():
    assert split_text("Hi  there", "char") == ["H", "i", "▁", "t", "h", "e", "r", "e"]
    assert split_text("Hi  There", "word", lowercase=True) == ["hi", "there"]


def test_a_models_tokenizer_gives_the_lm_its_tokens():
    texts = ["the cat sat", "the dog sat on the mat"] * 20
    tokenizer = SentencePieceTokenizer.train(texts, vocab_size=20)
    pieces = split_text("the cat", tokenizer=tokenizer)
    assert "".join(pieces).replace("▁", " ").strip() == "the cat"
    assert set(pieces) <= set(tokenizer.symbols())


def test_lm_command_trains_and_scores(tmp_path: Path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(s) for s in phrase_sentences(200)) + "\n\n")
    arpa = tmp_path / "lm.arpa"
    assert main(["lm", "train", str(corpus), "-o", str(arpa), "--order", "3"]) == 0
    assert "200 sentences" in capsys.readouterr().out
    assert read_arpa(arpa).order == 3
    assert main(["lm", "perplexity", str(arpa), str(corpus)]) == 0
    perplexity = float(capsys.readouterr().out.split("perplexity ")[1])
    assert 1.0 < perplexity < 10.0
    assert main(["lm", "perplexity", str(tmp_path / "none.arpa"), str(corpus)]) == 2
    assert "no such language model" in capsys.readouterr().err
    assert main(["lm", "train", str(corpus), "-o", str(arpa), "--order", "0"]) == 2
    assert "order: must be at least 1" in capsys.readouterr().err


def test_queries_agree_with_kenlm_when_it_is_installed(tmp_path: Path):
    kenlm = pytest.importorskip("kenlm", reason="the kenlm module is optional and not installed")
    model = kneser_ney(phrase_sentences(300), order=3)
    path = write_arpa(model, tmp_path / "lm.arpa")
    reference = kenlm.Model(str(path))
    for words in phrase_sentences(50, seed=9) + [["the", "zebra", "saw", "it"]]:
        expected = reference.score(" ".join(words), bos=True, eos=True)
        assert model.sentence_log10_prob(words) == pytest.approx(expected, abs=1e-4)


def test_kenlm_models_answer_the_decoders_queries_like_arpa_ones(tmp_path: Path):
    pytest.importorskip("kenlm", reason="the kenlm module is optional and not installed")
    arpa = write_arpa(kneser_ney(phrase_sentences(300), order=3), tmp_path / "lm.arpa")
    ours, theirs = read_arpa(arpa), KenLMModel(arpa)  # KenLM reads ARPA as well as binaries
    assert theirs.vocabulary is None and theirs.order == 3
    assert theirs.knows("cat") and not theirs.knows("zebra")
    state, their_state = ours.start(), theirs.start()
    for word in ["the", "cat", "saw", "zebra", "</s>"]:
        log_prob, state = ours.score(state, word)
        their_log_prob, their_state = theirs.score(their_state, word)
        assert their_log_prob == pytest.approx(log_prob, abs=1e-4)
    sentences = phrase_sentences(20, seed=3)
    assert theirs.perplexity(sentences) == pytest.approx(ours.perplexity(sentences), rel=1e-4)


def test_a_kenlm_binary_needs_the_kenlm_module(tmp_path: Path, monkeypatch):
    fake = tmp_path / "lm.bin"
    fake.write_bytes(KENLM_MAGIC + b"http://kheafield.com/code format version 5\n\0garbage")
    monkeypatch.setitem(sys.modules, "kenlm", None)  # as if not installed
    with pytest.raises(LanguageModelError, match="lm.bin: a KenLM binary model needs the kenlm"):
        load_language_model(fake)
    monkeypatch.undo()
    if importlib.util.find_spec("kenlm") is not None:
        with pytest.raises(LanguageModelError, match="lm.bin: KenLM cannot load it"):
            load_language_model(fake)
