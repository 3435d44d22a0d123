"""Tokenizers for the models trained here: characters, or BPE/unigram pieces (sentencepiece).

Every tokenizer shares one id layout: 0 is the CTC/transducer blank, 1 the unknown symbol, the
last id ``<sos/eos>`` (start and end of sentence for attention decoders); the real symbols lie
in between. Word boundaries are ``▁`` (U+2581), as in sentencepiece.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from onsei.errors import OnseiError
from onsei.files import atomic_write_bytes, atomic_write_text

BLANK = "<blank>"
UNK = "<unk>"
SOS_EOS = "<sos/eos>"
WORD_BOUNDARY = "▁"
TOKENIZER_FILE = "tokenizer.json"


class Tokenizer(Protocol):
    """Text <-> ids with the shared layout (blank 0, unk 1, sos/eos last)."""

    blank_id: int
    unk_id: int
    sos_eos_id: int
    vocab_size: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def symbols(self) -> list[str]: ...

    def save(self, directory: str | os.PathLike) -> Path: ...


def normalize_text(text: str, lowercase: bool) -> str:
    """Collapse whitespace (and lower-case if asked): the form tokenizers are trained on."""
    text = " ".join(text.split())
    return text.lower() if lowercase else text


class CharTokenizer:
    """One id per character; spaces become ``▁``."""

    blank_id = 0
    unk_id = 1

    def __init__(self, characters: list[str], lowercase: bool = False):
        self.lowercase = lowercase
        self._symbols = [BLANK, UNK, *characters, SOS_EOS]
        self._ids = {symbol: i for i, symbol in enumerate(self._symbols)}
        self.sos_eos_id = len(self._symbols) - 1
        self.vocab_size = len(self._symbols)

    @classmethod
    def train(cls, texts: Iterable[str], lowercase: bool = False) -> CharTokenizer:
        """Characters of the training texts, most frequent first (ties in code-point order)."""
        counts = Counter(
            WORD_BOUNDARY if c == " " else c for t in texts for c in normalize_text(t, lowercase)
        )
        characters = sorted(counts, key=lambda c: (-counts[c], c))
        return cls(characters, lowercase)

    def encode(self, text: str) -> list[int]:
        text = normalize_text(text, self.lowercase).replace(" ", WORD_BOUNDARY)
        return [self._ids.get(c, self.unk_id) for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        special = (self.blank_id, self.sos_eos_id)
        text = "".join(self._symbols[i] for i in ids if i not in special)
        return " ".join(text.replace(WORD_BOUNDARY, " ").split())

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def save(self, directory: str | os.PathLike) -> Path:
        data = {"type": "char", "lowercase": self.lowercase, "symbols": self._symbols[2:-1]}
        return atomic_write_text(Path(directory) / TOKENIZER_FILE, json.dumps(data, indent=1))


class SentencePieceTokenizer:
    """BPE or unigram pieces from sentencepiece, shifted by one so that 0 stays the blank."""

    blank_id = 0
    unk_id = 1

    def __init__(self, model: bytes, lowercase: bool = False):
        import sentencepiece

        self.model = model
        self.lowercase = lowercase
        self._processor = sentencepiece.SentencePieceProcessor(model_proto=model)
        self.sos_eos_id = self._processor.get_piece_size() + 1
        self.vocab_size = self.sos_eos_id + 1

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        model_type: str = "bpe",
        lowercase: bool = False,
    ) -> SentencePieceTokenizer:
        """Train on the texts; ``vocab_size`` counts the pieces (blank and sos/eos come extra)."""
        import sentencepiece

        sentences = [normalize_text(t, lowercase) for t in texts]
        buffer = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=buffer,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=1.0,
                unk_id=0,
                bos_id=-1,
                eos_id=-1,
                pad_id=-1,
                hard_vocab_limit=False,
                minloglevel=2,
            )
        except RuntimeError as error:
            raise OnseiError(f"cannot train a {model_type} tokenizer: {error}") from None
        return cls(buffer.getvalue(), lowercase)

    def encode(self, text: str) -> list[int]:
        return [i + 1 for i in self._processor.encode(normalize_text(text, self.lowercase))]

    def decode(self, ids: Iterable[int]) -> str:
        pieces = [i - 1 for i in ids if i not in (self.blank_id, self.sos_eos_id)]
        return self._processor.decode(pieces)

    def symbols(self) -> list[str]:
        pieces = [self._processor.id_to_piece(i) for i in range(self._processor.get_piece_size())]
        return [BLANK, *pieces, SOS_EOS]

    def save(self, directory: str | os.PathLike) -> Path:
        atomic_write_bytes(Path(directory) / "tokenizer.model", self.model)
        data = {"type": "sentencepiece", "lowercase": self.lowercase, "model": "tokenizer.model"}
        return atomic_write_text(directory / TOKENIZER_FILE, json.dumps(data, indent=1))


def load_tokenizer(directory: str | os.PathLike) -> CharTokenizer | SentencePieceTokenizer:
    """Load the tokenizer saved in an experiment directory."""
    path = Path(directory) / TOKENIZER_FILE
    if not path.is_file():
        raise OnseiError(f"{directory}: no {TOKENIZER_FILE}")
    data = json.loads(path.read_text(encoding="utf-8"))
    if data["type"] == "char":
        return CharTokenizer(data["symbols"], data.get("lowercase", False))
    if data["type"] == "sentencepiece":
        model = (Path(directory) / data["model"]).read_bytes()
        return SentencePieceTokenizer(model, data.get("lowercase", False))
    raise OnseiError(f"{path}: unknown tokenizer type {data['type']!r}")
