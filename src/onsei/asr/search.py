"""Decoding a trained model: the search each family needs, chosen by ``SearchOptions``.

``beam_size`` 1 without an LM or hotwords is batched greedy search, except for joint
CTC-attention models, whose one-best search scores with both branches (as they were trained
to; attention alone may babble on, CTC prefix scores end it). Otherwise CTC models use
the prefix beam search of ``onsei.decoding.ctc`` (word or token LM, hotwords); attention models
(LAS, Transformer) the label-synchronous beam search of ``onsei.decoding.attention``, with CTC
prefix scores weighted by ``ctc_weight`` for joint CTC-attention models and, when asked, for
las and transformer models trained with an auxiliary CTC head (token LM);
transducers the time-synchronous or Graves beam search of ``onsei.decoding.transducer``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

import torch

from onsei.asr.models import ASRModel, AttentionModel, CTCModel, TransducerModel
from onsei.decoding.attention import AttentionBeamOptions, AttentionBeamSearch
from onsei.decoding.ctc import CTCBeamOptions, CTCPrefixBeamSearch, WordTiming, is_token_lm
from onsei.decoding.transducer import TransducerBeamOptions, TransducerBeamSearch
from onsei.errors import OptionError
from onsei.lm import LanguageModel, LanguageModelError, load_language_model


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
    """CTC models: words or phrases to favour."""
    hotword_weight: float = 5.0
    ctc_weight: float | None = None
    """Attention models with a CTC head: weight of the CTC prefix scores (None: the training
    weight for joint CTC-attention, 0 for las and transformer; 0: attention only; 1: CTC
    only)."""
    length_bonus: float = 0.0
    """Attention models: added per output token."""
    length_penalty: float = 0.0
    """Attention models: complete hypotheses rank by score / length ** length_penalty."""
    max_length_ratio: float = 1.0
    """Attention models: longest output, in tokens per encoder frame."""
    transducer_search: str = "time_sync"
    """Transducers: "time_sync" (time-synchronous decoding, batched) or "graves"."""
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


def _load_lm(path: str) -> LanguageModel:
    """The model at ``path`` (ARPA, or KenLM binary), read once while the file stays
    unchanged."""
    try:
        changed = os.stat(path).st_mtime_ns
    except OSError:
        changed = 0  # loading reports the missing file
    return _load_lm_cached(path, changed)


@cache
def _load_lm_cached(path: str, changed: int) -> LanguageModel:
    return load_language_model(path)


class Searcher:
    """Recognise batches of audio with ``model`` under ``options``."""

    def __init__(self, model: ASRModel, symbols: list[str], options: SearchOptions):
        self.model = model
        self.options = options
        self.ctc_search: CTCPrefixBeamSearch | None = None
        self.attention_search: AttentionBeamSearch | None = None
        self.transducer_search: TransducerBeamSearch | None = None
        family = model.config.family
        if options.ctc_weight is not None and not isinstance(model, AttentionModel):
            raise OptionError(f"ctc_weight applies to attention models, not {family}")
        if options.ctc_weight and model.ctc_head is None:
            raise OptionError(
                f"ctc_weight: this {family} model has no CTC head (train it with "
                "model.aux_ctc_weight above 0)"
            )
        if options.greedy and family != "joint_ctc_attention" and not options.ctc_weight:
            return
        lm = _load_lm(options.lm) if options.lm else None
        if not isinstance(model, CTCModel):
            if options.hotwords:
                raise OptionError(f"hotwords apply to CTC models, not {family}")
            if lm is not None and not is_token_lm(lm, symbols):
                raise LanguageModelError(
                    f"{options.lm}: {family} models fuse an LM over the model's tokens; "
                    "train one with `onsei lm train --unit char` (or --tokenizer EXP)"
                )
        if isinstance(model, CTCModel):
            beam = CTCBeamOptions(
                beam_size=options.beam_size,
                lm_weight=options.lm_weight,
                word_bonus=options.word_bonus,
                hotwords=options.hotwords,
                hotword_weight=options.hotword_weight,
                nbest=options.nbest,
            )
            self.ctc_search = CTCPrefixBeamSearch(symbols, beam, lm)
        elif isinstance(model, AttentionModel):
            ctc_weight = options.ctc_weight
            if ctc_weight is None:
                ctc_weight = model.ctc_weight
            beam = AttentionBeamOptions(
                beam_size=options.beam_size,
                ctc_weight=ctc_weight,
                lm_weight=options.lm_weight if lm is not None else 0.0,
                length_bonus=options.length_bonus,
                length_penalty=options.length_penalty,
                max_length_ratio=options.max_length_ratio,
                nbest=options.nbest,
            )
            self.attention_search = AttentionBeamSearch(
                model.decoder, beam, sos_eos=model.sos_eos, lm=lm, symbols=symbols
            )
        else:
            assert isinstance(model, TransducerModel)
            beam = TransducerBeamOptions(
                beam_size=options.beam_size,
                algorithm=options.transducer_search,
                nbest=options.nbest,
                lm_weight=options.lm_weight,
                word_bonus=options.word_bonus,
            )
            self.transducer_search = TransducerBeamSearch(
                model.predictor, model.joint, beam, lm=lm, symbols=symbols
            )

    @torch.no_grad()
    def recognize(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[Recognized]:
        """``(B, samples)`` waveforms and their lengths -> the best hypothesis of each."""
        if self.ctc_search is not None:
            log_probs, frames = self.model.ctc_log_probs(waveforms, lengths)
            rows = log_probs.cpu().numpy()
            found = self.ctc_search.decode_batch(
                [row[:length] for row, length in zip(rows, frames.tolist(), strict=True)]
            )
            return [Recognized(hypotheses[0].tokens, hypotheses[0].words) for hypotheses in found]
        if self.attention_search is not None:
            encoded, encoded_lengths = self.model.encode(waveforms, lengths)
            ctc = self.model.ctc_log_probs_of(encoded) if self.attention_search.uses_ctc else None
            found = self.attention_search.search(encoded, encoded_lengths, ctc)
            return [Recognized(hypotheses[0].tokens) for hypotheses in found]
        if self.transducer_search is not None:
            encoded, encoded_lengths = self.model.encode(waveforms, lengths)
            return [
                Recognized(list(self.transducer_search.search(row[:length])[0].tokens))
                for row, length in zip(encoded, encoded_lengths.tolist(), strict=True)
            ]
        return [Recognized(ids) for ids in self.model.recognize(waveforms, lengths)]
