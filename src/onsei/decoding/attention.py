"""Label-synchronous beam search for attention decoders (LAS, Transformer), batched over
utterances and beams, with optional joint CTC/attention scoring (Watanabe et al. 2017: the
decoder proposes, CTC prefix scores rescore every partial hypothesis) and token-LM fusion.

Each step extends every live hypothesis by its ``1.5 * beam`` likeliest next tokens (the
"pre-beam", plus end of sentence) and scores them:

    (1 - ctc_weight) * log P_att(token | prefix) + ctc_weight * (CTC prefix score gained)
    + lm_weight * log P_lm(token | prefix) + length_bonus

The ``beam`` best extensions per utterance are kept; one that ends the sentence among them is
complete. An utterance is done when ``beam`` hypotheses are complete or its maximum length
(``max_length_ratio`` times its encoder frames) is reached. Complete hypotheses rank by their
score divided by ``length ** length_penalty`` (length: tokens and end of sentence), the length
normalisation of Hugging Face's and Whisper's beam searches (0: by the score itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from onsei.decoding.ctc_prefix_score import CTCPrefixScorer
from onsei.decoding.log_space import NEG_INF
from onsei.errors import OptionError
from onsei.lm.arpa import EOS
from onsei.lm.model import LanguageModel


@dataclass
class AttentionBeamOptions:
    beam_size: int = 10
    ctc_weight: float = 0.0
    """0: attention scores only; 1: CTC prefix scores only; between: joint decoding."""
    lm_weight: float = 0.0
    length_bonus: float = 0.0
    """Added per output token (attention scores favour short outputs)."""
    length_penalty: float = 0.0
    """Complete hypotheses rank by ``score / length ** length_penalty`` (1: per token)."""
    max_length_ratio: float = 1.0
    """Longest output, in tokens per encoder frame."""
    nbest: int = 1

    def validate(self) -> None:
        if self.beam_size < 1:
            raise OptionError(f"beam_size: must be at least 1, got {self.beam_size}")
        if not 0.0 <= self.ctc_weight <= 1.0:
            raise OptionError(f"ctc_weight: must be between 0 and 1, got {self.ctc_weight}")
        if not 1 <= self.nbest <= self.beam_size:
            raise OptionError(f"nbest: must be between 1 and beam_size, got {self.nbest}")
        if self.length_penalty < 0:
            raise OptionError(f"length_penalty: must be at least 0, got {self.length_penalty}")
        if self.max_length_ratio <= 0:
            raise OptionError(f"max_length_ratio: must be positive, got {self.max_length_ratio}")


@dataclass
class AttentionHypothesis:
    tokens: list[int]
    score: float
    """The search's score, divided by ``(len(tokens) + 1) ** length_penalty``."""


class AttentionBeamSearch:
    """Beam search over a decoder with the ``init_state / step / select_state`` protocol.

    Args:
        decoder: the attention decoder (``onsei.models.decoders``).
        sos_eos: start/end-of-sentence id; ``blank`` (the CTC blank) is never emitted.
        symbols: token strings by id, needed with an LM (whose symbols must be these tokens).
    """

    def __init__(
        self,
        decoder: torch.nn.Module,
        options: AttentionBeamOptions,
        *,
        sos_eos: int,
        blank: int = 0,
        lm: LanguageModel | None = None,
        symbols: Sequence[str] = (),
    ):
        options.validate()
        self.decoder = decoder
        self.options = options
        self.sos_eos = sos_eos
        self.blank = blank
        self.lm = lm
        self.symbols = [EOS if i == sos_eos else s for i, s in enumerate(symbols)]

    @property
    def uses_ctc(self) -> bool:
        """Whether ``search`` needs the CTC posteriors."""
        return self.options.ctc_weight > 0

    @torch.no_grad()
    def search(
        self,
        encoded: torch.Tensor,
        encoded_lengths: torch.Tensor,
        ctc_log_probs: torch.Tensor | None = None,
    ) -> list[list[AttentionHypothesis]]:
        """Encoder output ``(B, T, D)`` and lengths ``(B,)`` (and the CTC posteriors
        ``(B, T, V)`` for joint decoding) -> the n-best hypotheses of each utterance."""
        options = self.options
        batch, device = encoded.shape[0], encoded.device
        beam = options.beam_size
        use_ctc = self.uses_ctc
        if use_ctc and ctc_log_probs is None:
            raise OptionError("ctc_weight > 0 needs the CTC posteriors of the model's CTC head")
        utterance = torch.arange(batch, device=device).repeat_interleave(beam)  # (N,)
        state = self.decoder.select_state(
            self.decoder.init_state(encoded, encoded_lengths), utterance
        )
        prefix = torch.full((batch * beam, 1), self.sos_eos, dtype=torch.long, device=device)
        scores = torch.full((batch, beam), NEG_INF, device=device, dtype=torch.float64)
        scores[:, 0] = 0.0  # one live hypothesis (the empty one) to begin with
        scorer = ctc_state = None
        if use_ctc:
            scorer = CTCPrefixScorer(ctc_log_probs, encoded_lengths, self.blank, self.sos_eos)
            ctc_state = scorer.initial_state(utterance)
        lm_states: list[Any] = [self.lm.start() for _ in range(batch * beam)] if self.lm else []
        max_lengths = (
            (encoded_lengths.float() * options.max_length_ratio).ceil().long().clamp(min=1)
        )
        finished: list[list[AttentionHypothesis]] = [[] for _ in range(batch)]
        done = [False] * batch
        for step in range(int(max_lengths.max()) + 1):
            log_probs, state = self.decoder.step(prefix, state)  # (N, V)
            candidates, extension = self._extensions(
                log_probs, scorer, ctc_state, utterance, lm_states
            )
            if scorer is not None:
                ctc_scores, ctc_r = extension.pop("ctc")
            forced_end = (step >= max_lengths)[utterance]  # (N,)
            is_eos = candidates == self.sos_eos
            total = scores.reshape(-1, 1) + extension["score"]
            total = total.masked_fill(forced_end[:, None] & ~is_eos, NEG_INF)
            width = candidates.shape[1]
            ranked_scores, ranked = total.reshape(batch, beam * width).topk(2 * beam, dim=1)
            keep_hyp, keep_cand, keep_scores = [], [], []
            for b in range(batch):
                running = []
                for rank, (value, flat) in enumerate(
                    zip(ranked_scores[b].tolist(), ranked[b].tolist(), strict=True)
                ):
                    if value == NEG_INF or done[b]:
                        break
                    hyp, cand = b * beam + flat // width, flat % width
                    token = int(candidates[hyp, cand])
                    if token == self.sos_eos:
                        if rank < beam:
                            tokens = prefix[hyp, 1:].tolist()
                            normalised = value / (len(tokens) + 1) ** options.length_penalty
                            finished[b].append(AttentionHypothesis(tokens, normalised))
                    elif len(running) < beam:
                        running.append((hyp, cand, value))
                if len(finished[b]) >= beam or not running:
                    done[b] = True
                running += [(b * beam, 0, NEG_INF)] * (beam - len(running))  # dead slots
                for hyp, cand, value in running:
                    keep_hyp.append(hyp)
                    keep_cand.append(cand)
                    keep_scores.append(value if not done[b] else NEG_INF)
            if all(done):
                break
            hyp_index = torch.tensor(keep_hyp, device=device)
            cand_index = torch.tensor(keep_cand, device=device)
            tokens = candidates[hyp_index, cand_index]
            scores = torch.tensor(keep_scores, device=device, dtype=torch.float64)
            scores = scores.reshape(batch, beam)
            prefix = torch.cat([prefix[hyp_index], tokens[:, None]], dim=1)
            state = self.decoder.select_state(state, hyp_index)
            if scorer is not None:
                ctc_state = scorer.select(
                    ctc_state, ctc_r, ctc_scores, hyp_index, cand_index, tokens
                )
            if self.lm is not None:
                lm_states = [
                    self.lm.score(lm_states[h], self.symbols[t])[1]
                    for h, t in zip(keep_hyp, tokens.tolist(), strict=True)
                ]
        results = []
        for b in range(batch):
            hypotheses = sorted(finished[b], key=lambda h: h.score, reverse=True)
            results.append(hypotheses[: options.nbest] or [AttentionHypothesis([], NEG_INF)])
        return results

    def _extensions(self, log_probs, scorer, ctc_state, utterance, lm_states):
        """Candidate tokens ``(N, C)`` of each hypothesis (pre-beam and end of sentence) and
        their step scores ``{"score": (N, C)}`` (with ``"ctc"``: prefix scores and forward
        variables for the scorer's ``select``)."""
        options = self.options
        log_probs = log_probs.clone()
        log_probs[:, self.blank] = NEG_INF
        eos_scores = log_probs[:, self.sos_eos].clone()
        log_probs[:, self.sos_eos] = NEG_INF
        pre_beam = min(int(1.5 * options.beam_size) + 1, log_probs.shape[1] - 2)
        if options.ctc_weight == 1.0:  # CTC only: the attention decoder must not choose
            ctc_view = scorer.log_probs[utterance].logsumexp(dim=1)  # tokens CTC finds at all
            ctc_view[:, self.blank] = NEG_INF
            ctc_view[:, self.sos_eos] = NEG_INF
            top = ctc_view.topk(pre_beam, dim=1).indices
        else:
            top = log_probs.topk(pre_beam, dim=1).indices
        eos = torch.full_like(top[:, :1], self.sos_eos)
        candidates = torch.cat([top, eos], dim=1)  # (N, C)
        attention = torch.cat([log_probs.gather(1, top), eos_scores[:, None]], dim=1)
        score = (
            (1 - options.ctc_weight) * attention
            if options.ctc_weight < 1
            else torch.zeros_like(attention)
        )
        extension: dict[str, Any] = {}
        if scorer is not None:
            prefix_scores, r = scorer.score(ctc_state, utterance, candidates)
            score = score + options.ctc_weight * (prefix_scores - ctc_state.score[:, None])
            extension["ctc"] = (prefix_scores, r)
        if self.lm is not None:
            lm = [
                [self.lm.score(lm_states[n], self.symbols[t])[0] for t in row]
                for n, row in enumerate(candidates.tolist())
            ]
            score = score + options.lm_weight * torch.tensor(lm, device=score.device)
        not_eos = candidates != self.sos_eos
        score = score + options.length_bonus * not_eos
        extension["score"] = score.double().masked_fill(score != score, NEG_INF)
        return candidates, extension
