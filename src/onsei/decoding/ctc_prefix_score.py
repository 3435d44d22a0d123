"""CTC prefix scores for label-synchronous search (Watanabe et al. 2017, as in ESPnet): the
log-probability, summed over alignments, that the CTC posteriors begin with a given prefix.

An attention decoder proposes the next token of each hypothesis; this scorer says how well
``prefix + token`` fits the audio according to CTC, for many hypotheses and candidate tokens at
once. Each hypothesis keeps its forward variables over all frames: ``r[t, 0]`` (alignments of
the prefix ending in its last token at frame ``t``) and ``r[t, 1]`` (ending in blank).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from onsei.decoding.log_space import NEG_INF


@dataclass
class CTCPrefixState:
    r: torch.Tensor
    """(N, T, 2) forward variables of each hypothesis' prefix: [non-blank, blank]."""
    score: torch.Tensor
    """(N,) CTC prefix score of each hypothesis."""
    last: torch.Tensor
    """(N,) last token of each prefix (-1 for the empty prefix)."""


class CTCPrefixScorer:
    """Scores over the CTC posteriors ``(B, T, V)`` of a batch, for hypotheses whose utterance
    is ``hyp_utterance[n]``.

    Args:
        log_probs: (B, T, V) natural-log CTC posteriors.
        lengths: (B,) frames of each utterance; frames beyond are treated as certain blanks.
        eos: the end-of-sentence id: its score is that of the complete prefix.
    """

    def __init__(self, log_probs: torch.Tensor, lengths: torch.Tensor, blank: int, eos: int):
        frames = log_probs.shape[1]
        beyond = torch.arange(frames, device=log_probs.device)[None, :] >= lengths[:, None]
        padded = log_probs.masked_fill(beyond[..., None], NEG_INF)
        padded[..., blank] = padded[..., blank].masked_fill(beyond, 0.0)
        self.log_probs = padded
        self.blank = blank
        self.eos = eos

    def initial_state(self, hyp_utterance: torch.Tensor) -> CTCPrefixState:
        """The empty prefix for each hypothesis: all-blank alignments."""
        blank = self.log_probs[hyp_utterance, :, self.blank]  # (N, T)
        r = torch.full((*blank.shape, 2), NEG_INF, device=blank.device, dtype=blank.dtype)
        r[:, :, 1] = blank.cumsum(dim=1)
        n = len(hyp_utterance)
        return CTCPrefixState(
            r=r,
            score=torch.zeros(n, device=blank.device, dtype=blank.dtype),
            last=torch.full((n,), -1, dtype=torch.long, device=blank.device),
        )

    def score(
        self, state: CTCPrefixState, hyp_utterance: torch.Tensor, candidates: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix scores of ``prefix + c`` for candidates ``(N, C)``: returns the scores
        ``(N, C)`` and the candidates' forward variables ``(N, C, T, 2)``."""
        x = self.log_probs[hyp_utterance]  # (N, T, V)
        n, frames, _ = x.shape
        x_c = torch.gather(x, 2, candidates.clamp(min=0)[:, None, :].expand(n, frames, -1))
        x_c = x_c.transpose(1, 2)  # (N, C, T)
        x_blank = x[:, :, self.blank][:, None, :]  # (N, 1, T)
        r_prev = state.r  # (N, T, 2)
        repeat = candidates == state.last[:, None]  # (N, C)
        # phi[t]: the prefix complete by frame t, ready for c at t + 1
        phi = torch.logaddexp(r_prev[:, None, :, 0], r_prev[:, None, :, 1]).expand(
            -1, len(candidates[0]), -1
        )
        phi = torch.where(repeat[..., None], r_prev[:, None, :, 1], phi)  # (N, C, T)
        r = torch.full((n, candidates.shape[1], frames, 2), NEG_INF, dtype=x.dtype, device=x.device)
        empty = state.last == -1
        r[:, :, 0, 0] = torch.where(
            empty[:, None], x_c[:, :, 0], torch.full_like(x_c[:, :, 0], NEG_INF)
        )
        for t in range(1, frames):
            r[:, :, t, 0] = torch.logaddexp(r[:, :, t - 1, 0], phi[:, :, t - 1]) + x_c[:, :, t]
            r[:, :, t, 1] = torch.logaddexp(r[:, :, t - 1, 0], r[:, :, t - 1, 1]) + x_blank[:, :, t]
        # psi: c first emitted at some frame t, the prefix done before it
        first = torch.cat([r[:, :, :1, 0], phi[:, :, :-1] + x_c[:, :, 1:]], dim=2)
        psi = torch.logsumexp(first, dim=2)  # (N, C)
        final = torch.logaddexp(r_prev[:, -1, 0], r_prev[:, -1, 1])  # the prefix, complete
        psi = torch.where(candidates == self.eos, final[:, None].expand_as(psi), psi)
        return psi, r

    def select(
        self,
        state: CTCPrefixState,
        r: torch.Tensor,
        scores: torch.Tensor,
        hyp_index: torch.Tensor,
        candidate_index: torch.Tensor,
        tokens: torch.Tensor,
    ) -> CTCPrefixState:
        """The state of the chosen extensions: hypothesis ``hyp_index[k]`` extended by its
        ``candidate_index[k]``-th candidate, token ``tokens[k]``."""
        return CTCPrefixState(
            r=r[hyp_index, candidate_index],
            score=scores[hyp_index, candidate_index],
            last=tokens,
        )
