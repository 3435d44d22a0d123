"""Decoding a trained model: the search each family needs, chosen by ``SearchOptions``.

``beam_size`` 1 without an LM or hotwords is batched greedy search; otherwise CTC models use
the prefix beam search of ``onsei.decoding.ctc`` (with LM fusion and hotwords).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

import torch

from onsei.asr.models import ASRModel, CTCModel
from onsei.decoding.ctc import CTCBeamOptions, CTCPrefixBeamSearch, WordTiming
from onsei.errors import OptionError
from onsei.lm import NgramLM, read_arpa


@dataclass
class SearchOptions:
    beam_size: int = 1
    """1: greedy search (unless an LM or hotwords ask for a beam)."""
    lm: str | None = None
    """ARPA n-gram model over words, or over the model's tokens."""
    lm_weight: float = 0.5
    word_bonus: float = 1.0
    """With an LM: added per word (per token with a token LM)."""
    hotwords: tuple[str, ...] = ()
    hotword_weight: float = 5.0
    nbest: int = 1

    @classmethod
    def from_kwargs(cls, **options: Any) -> SearchOptions:
        """Options by name (as ``transcribe(**options)`` gets them); unknown names are errors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise OptionError(
                f"unknown option(s) for a trained model: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        hotwords = options.get("hotwords") or ()
        if isinstance(hotwords, str):
            hotwords = tuple(h.strip() for h in hotwords.split(",") if h.strip())
        search = cls(**{**options, "hotwords": tuple(hotwords)})
        if search.beam_size is None or search.beam_size < 1:
            raise OptionError(f"beam_size: must be at least 1, got {search.beam_size}")
        return search

    @property
    def greedy(self) -> bool:
        return self.beam_size == 1 and self.lm is None and not self.hotwords


@dataclass
class Recognized:
    """One utterance's best hypothesis."""

    tokens: list[int]
    words: list[WordTiming] = field(default_factory=list)
    """Word frames (encoder frames), when the search tracks them."""


@cache
def _load_lm(path: str) -> NgramLM:
    return read_arpa(path)


class Searcher:
    """Recognise batches of audio with ``model`` under ``options``."""

    def __init__(self, model: ASRModel, symbols: list[str], options: SearchOptions):
        self.model = model
        self.options = options
        self.ctc_search: CTCPrefixBeamSearch | None = None
        if options.greedy:
            return
        if not isinstance(model, CTCModel):
            raise OptionError(
                f"beam search and LM fusion are not available for {model.config.family} models "
                "yet: use beam_size 1 without an LM"
            )
        lm = _load_lm(options.lm) if options.lm else None
        beam = CTCBeamOptions(
            beam_size=options.beam_size,
            lm_weight=options.lm_weight,
            word_bonus=options.word_bonus,
            hotwords=options.hotwords,
            hotword_weight=options.hotword_weight,
            nbest=options.nbest,
        )
        self.ctc_search = CTCPrefixBeamSearch(symbols, beam, lm)

    @torch.no_grad()
    def recognize(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[Recognized]:
        """``(B, samples)`` waveforms and their lengths -> the best hypothesis of each."""
        if self.ctc_search is None:
            return [Recognized(ids) for ids in self.model.recognize(waveforms, lengths)]
        log_probs, frames = self.model.ctc_log_probs(waveforms, lengths)
        results = []
        for row, length in zip(log_probs.cpu().numpy(), frames.tolist(), strict=True):
            best = self.ctc_search.decode(row[:length])[0]
            results.append(Recognized(best.tokens, best.words))
        return results
