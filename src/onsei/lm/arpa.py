"""Back-off n-gram language models in the ARPA format (as written by KenLM, SRILM, or
``onsei lm train``): reading, writing, and the queries a decoder makes.

Probabilities are stored as in the file, log10; ``score`` returns natural logs for decoders.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from onsei.errors import OnseiError
from onsei.files import atomic_write_text

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
NO_PROBABILITY = -99.0
"""log10 probability ARPA files give ``<s>``, which is never predicted."""
LN_10 = math.log(10.0)


class LanguageModelError(OnseiError):
    """A language model file is missing, malformed, or does not fit the model's tokens."""


@dataclass
class NgramLM:
    """A back-off n-gram model: ``probabilities[n - 1]`` maps each n-gram (a tuple of words)
    to its log10 probability, ``backoffs`` maps a context n-gram to its log10 back-off weight
    (absent: 0)."""

    probabilities: list[dict[tuple[str, ...], float]]
    backoffs: dict[tuple[str, ...], float] = field(default_factory=dict)
    contexts: set[tuple[str, ...]] = field(init=False, repr=False)
    """Every history some longer n-gram continues (whether or not its back-off is listed)."""

    def __post_init__(self) -> None:
        self.contexts = {gram[:-1] for grams in self.probabilities[1:] for gram in grams}

    @property
    def order(self) -> int:
        return len(self.probabilities)

    @property
    def vocabulary(self) -> set[str]:
        return {gram[0] for gram in self.probabilities[0]}

    def log10_prob(self, context: Sequence[str], word: str) -> float:
        """log10 P(word | context), backing off to shorter contexts (the oldest word first);
        a word the model does not know scores as ``<unk>`` (or -99 if it has no ``<unk>``)."""
        context = tuple(context)[-(self.order - 1) :] if self.order > 1 else ()
        penalty = 0.0
        for start in range(len(context) + 1):
            history = context[start:]
            found = self.probabilities[len(history)].get((*history, word))
            if found is not None:
                return penalty + found
            penalty += self.backoffs.get(history, 0.0)
        return penalty + self.probabilities[0].get((UNK,), NO_PROBABILITY)

    def knows(self, word: str) -> bool:
        return (word,) in self.probabilities[0]

    def start(self) -> tuple[str, ...]:
        """The state before the first word of a sentence."""
        return (BOS,)

    def score(self, state: tuple[str, ...], word: str) -> tuple[float, tuple[str, ...]]:
        """Natural-log probability of ``word`` after ``state``, and the state after it: the
        history without the oldest words that cannot change any later probability (so that
        equal states mean equal futures, which lets decoders merge and cache them)."""
        log_prob = self.log10_prob(state, word) * LN_10
        history = (*state, word)[-(self.order - 1) :] if self.order > 1 else ()
        while history and history not in self.contexts and not self.backoffs.get(history):
            history = history[1:]
        return log_prob, history

    def sentence_log10_prob(self, words: Sequence[str]) -> float:
        """log10 P(words, then end of sentence), starting after ``<s>``."""
        context: list[str] = [BOS]
        total = 0.0
        for word in [*words, EOS]:
            total += self.log10_prob(context, word)
            context.append(word)
        return total

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """Per-token perplexity (``</s>`` counted as a token, as SRILM and KenLM do)."""
        total, tokens = 0.0, 0
        for words in sentences:
            total += self.sentence_log10_prob(words)
            tokens += len(words) + 1
        return 10.0 ** (-total / max(tokens, 1))


def write_arpa(model: NgramLM, path: str | os.PathLike) -> Path:
    """Write ``model`` as an ARPA file (atomically); n-grams sorted within each order."""
    lines = ["", "\\data\\"]
    lines += [f"ngram {n + 1}={len(grams)}" for n, grams in enumerate(model.probabilities)]
    for n, grams in enumerate(model.probabilities):
        lines += ["", f"\\{n + 1}-grams:"]
        for gram in sorted(grams):
            entry = f"{grams[gram]:.6f}\t{' '.join(gram)}"
            if gram in model.backoffs:
                entry += f"\t{model.backoffs[gram]:.6f}"
            lines.append(entry)
    lines += ["", "\\end\\", ""]
    return atomic_write_text(path, "\n".join(lines))


def read_arpa(path: str | os.PathLike) -> NgramLM:
    """Read an ARPA file, checking its structure; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise LanguageModelError(f"{path}: no such language model")
    try:
        with open(path, encoding="utf-8") as file:
            return _parse_arpa(file, path)
    except UnicodeDecodeError:
        raise LanguageModelError(f"{path}: not a text ARPA file (nor a KenLM binary)") from None


def _parse_arpa(lines: Iterable[str], path: Path) -> NgramLM:
    declared: list[int] = []
    probabilities: list[dict[tuple[str, ...], float]] = []
    backoffs: dict[tuple[str, ...], float] = {}
    section = "preamble"
    order = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        where = f"{path}:{number}"
        if not line:
            continue
        if line == "\\data\\":
            section = "data"
        elif line == "\\end\\":
            section = "end"
            break
        elif line.startswith("\\") and line.endswith("-grams:"):
            order = _int(line[1 : -len("-grams:")], where)
            if order != len(probabilities) + 1 or order > len(declared):
                raise LanguageModelError(f"{where}: unexpected section {line}")
            probabilities.append({})
            section = "grams"
        elif section == "data":
            if not line.startswith("ngram ") or "=" not in line:
                raise LanguageModelError(f"{where}: expected 'ngram N=count', got {line!r}")
            n, count = line[len("ngram ") :].split("=", 1)
            if _int(n, where) != len(declared) + 1:
                raise LanguageModelError(f"{where}: n-gram orders must be listed 1, 2, ...")
            declared.append(_int(count, where))
        elif section == "grams":
            fields = line.split()
            if len(fields) not in (order + 1, order + 2):
                raise LanguageModelError(
                    f"{where}: a {order}-gram line needs a probability, {order} words and "
                    f"optionally a back-off weight"
                )
            gram = tuple(fields[1 : order + 1])
            probabilities[-1][gram] = _float(fields[0], where)
            if len(fields) == order + 2:
                backoffs[gram] = _float(fields[-1], where)
        # lines before \data\ are comments
    if section != "end":
        raise LanguageModelError(f"{path}: not a complete ARPA file (no \\end\\ marker)")
    if not declared or len(probabilities) != len(declared):
        raise LanguageModelError(f"{path}: the \\data\\ header and the n-gram sections disagree")
    for n, (count, grams) in enumerate(zip(declared, probabilities, strict=True), start=1):
        if count != len(grams):
            raise LanguageModelError(
                f"{path}: the header announces {count} {n}-grams, the file has {len(grams)}"
            )
    return NgramLM(probabilities, backoffs)


def _int(text: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise LanguageModelError(f"{where}: expected a whole number, got {text!r}") from None


def _float(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise LanguageModelError(f"{where}: expected a number, got {text!r}") from None
