"""Character and sentencepiece tokenizers: shared id layout, round trips, save and load."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shared

from onsei.data.manifest import read_manifest
from onsei.errors import OnseiError
from onsei.text.tokenizers import (
    BLANK,
    SOS_EOS,
    CharTokenizer,
    SentencePieceTokenizer,
    load_tokenizer,
)


@pytest.fixture(scope="module")
def an4_texts() -> list[str]:
    return [u.text for u in read_manifest(shared("an4/train.jsonl"))]


def test_char_tokenizer_layout_and_round_trip(an4_texts: list[str], tmp_path: Path):
    tokenizer = CharTokenizer.train(an4_texts)
    symbols = tokenizer.symbols()
    assert symbols[0] == BLANK and symbols[-1] == SOS_EOS and symbols[2] == "▁"
    assert tokenizer.vocab_size == len(symbols) == 3 + 26 + 1  # A-Z and the word boundary
    ids = tokenizer.encode("RUBOUT  G M E F THREE NINE")
    assert all(2 <= i < tokenizer.sos_eos_id for i in ids)
    assert tokenizer.decode(ids) == "RUBOUT G M E F THREE NINE"
    assert tokenizer.encode("Q?")[-1] == tokenizer.unk_id
    assert tokenizer.decode([0, *ids[:3], tokenizer.sos_eos_id]) == "RUB"
    loaded = load_tokenizer(tokenizer.save(tmp_path).parent)
    assert loaded.symbols() == symbols and loaded.encode("NINE") == tokenizer.encode("NINE")


def test_lowercase_option():
    tokenizer = CharTokenizer.train(["Hello World"], lowercase=True)
    assert tokenizer.decode(tokenizer.encode("HELLO  world")) == "hello world"


def test_bpe_tokenizer(an4_texts: list[str], tmp_path: Path):
    tokenizer = SentencePieceTokenizer.train(an4_texts, vocab_size=60)
    ids = tokenizer.encode("ENTER SEVEN ONE FIVE FOUR")
    assert len(ids) < len("ENTER SEVEN ONE FIVE FOUR")  # pieces longer than characters
    assert all(1 <= i < tokenizer.sos_eos_id for i in ids)
    assert tokenizer.decode(ids) == "ENTER SEVEN ONE FIVE FOUR"
    assert tokenizer.symbols()[0] == BLANK and len(tokenizer.symbols()) == tokenizer.vocab_size
    loaded = load_tokenizer(tokenizer.save(tmp_path).parent)
    assert loaded.encode("ERASE SEVEN") == tokenizer.encode("ERASE SEVEN")


def test_bad_tokenizer_directory(tmp_path: Path):
    with pytest.raises(OnseiError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
