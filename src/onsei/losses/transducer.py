"""RNN-Transducer loss (Graves 2012) in plain PyTorch.

The forward (alpha) and backward (beta) variables over the (T, U+1) lattice are computed one
anti-diagonal at a time, so each step is one vectorised operation over the batch and the
diagonal. The gradient with respect to the joint network's logits is written in closed form
from alpha and beta, so the only tensors of the joint's size are its logits (the input) and
their gradient; log-softmax is never stored.
"""

from __future__ import annotations

import torch
from torch.nn.functional import pad

NEG_INF = float("-inf")


def _diagonal(n: int, max_t: int, max_u: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Indices ``(t, u)`` of the cells with ``t + u == n`` in a (max_t, max_u) grid."""
    t = torch.arange(max(0, n - max_u + 1), min(n, max_t - 1) + 1, device=device)
    return t, n - t


def _pad_inf(x: torch.Tensor, widths: tuple[int, ...]) -> torch.Tensor:
    return pad(x, widths, value=NEG_INF)


def _log_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log(exp(a) + exp(b)), safe when both are -inf."""
    high = torch.maximum(a, b)
    high_safe = torch.where(torch.isinf(high), torch.zeros_like(high), high)
    return high_safe + torch.log(torch.exp(a - high_safe) + torch.exp(b - high_safe))


def transducer_lattice(
    logits: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-probabilities of the lattice's transitions, and alpha, beta and log-likelihoods.

    Args:
        logits: (B, T, U+1, V) joint network outputs (unnormalised).
        targets: (B, U) label ids (padding anywhere beyond ``target_lengths``).
        logit_lengths: (B,) frames per utterance; target_lengths: (B,) labels per utterance.

    Returns:
        blank_lp (B, T, U+1), label_lp (B, T, U), alpha (B, T, U+1), beta (B, T, U+1) and the
        log-likelihood of each utterance (B,). Cells outside an utterance's lattice are -inf.
    """
    batch, max_t, max_u1, _ = logits.shape
    device = logits.device
    log_norm = torch.logsumexp(logits, dim=-1)  # (B, T, U+1)
    blank_lp = logits[..., blank] - log_norm
    safe_targets = targets.clamp(min=0)[:, None, :, None].expand(batch, max_t, max_u1 - 1, 1)
    label_lp = logits[:, :, :-1, :].gather(-1, safe_targets).squeeze(-1) - log_norm[:, :, :-1]

    t_range = torch.arange(max_t, device=device)[None, :, None]
    u_range = torch.arange(max_u1, device=device)[None, None, :]
    inside = (t_range < logit_lengths[:, None, None]) & (u_range <= target_lengths[:, None, None])
    blank_lp = blank_lp.masked_fill(~inside, NEG_INF)
    label_lp = label_lp.masked_fill(~(inside[:, :, 1:]), NEG_INF)  # the label leading to u+1

    # Padded copies so that every neighbour index exists: the padding is -inf.
    blank_from_above = _pad_inf(blank_lp, (0, 0, 1, 0))  # [t, u] = blank at (t - 1, u)
    label_from_left = _pad_inf(label_lp, (1, 0))  # [t, u] = label at (t, u - 1)
    label_to_right = _pad_inf(label_lp, (0, 1))  # [t, u] = label at (t, u), -inf at u = U
    alpha = torch.full((batch, max_t + 1, max_u1 + 1), NEG_INF, dtype=logits.dtype, device=device)
    alpha[:, 1, 1] = 0.0  # alpha[t, u] lives at [t + 1, u + 1]
    for n in range(1, max_t + max_u1 - 1):
        t, u = _diagonal(n, max_t, max_u1, device)
        from_above = alpha[:, t, u + 1] + blank_from_above[:, t, u]
        from_left = alpha[:, t + 1, u] + label_from_left[:, t, u]
        alpha[:, t + 1, u + 1] = _log_add(from_above, from_left)
    alpha = alpha[:, 1:, 1:]

    rows = torch.arange(batch, device=device)
    last_t, last_u = logit_lengths - 1, target_lengths
    log_likelihood = alpha[rows, last_t, last_u] + blank_lp[rows, last_t, last_u]

    beta = torch.full((batch, max_t + 1, max_u1 + 1), NEG_INF, dtype=logits.dtype, device=device)
    beta[rows, last_t, last_u] = blank_lp[rows, last_t, last_u]  # beta[t, u] lives at [t, u]
    for n in range(max_t + max_u1 - 2, -1, -1):
        t, u = _diagonal(n, max_t, max_u1, device)
        to_below = beta[:, t + 1, u] + blank_lp[:, t, u]
        to_right = beta[:, t, u + 1] + label_to_right[:, t, u]
        terminal = (t[None, :] == last_t[:, None]) & (u[None, :] == last_u[:, None])
        beta[:, t, u] = torch.where(terminal, beta[:, t, u], _log_add(to_below, to_right))
    beta = beta[:, :-1, :-1]
    return blank_lp, label_lp, alpha, beta, log_likelihood


class _TransducerLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, targets, logit_lengths, target_lengths, blank):
        with torch.no_grad():
            blank_lp, label_lp, alpha, beta, log_likelihood = transducer_lattice(
                logits, targets, logit_lengths, target_lengths, blank
            )
        ctx.save_for_backward(
            logits,
            targets,
            logit_lengths,
            target_lengths,
            blank_lp,
            label_lp,
            alpha,
            beta,
            log_likelihood,
        )
        ctx.blank = blank
        return -log_likelihood

    @staticmethod
    def backward(ctx, grad_output):
        (
            logits,
            targets,
            logit_lengths,
            target_lengths,
            blank_lp,
            label_lp,
            alpha,
            beta,
            log_likelihood,
        ) = ctx.saved_tensors
        batch, max_t, max_u1, _ = logits.shape
        ll = log_likelihood[:, None, None]
        # d(-log p)/d logits[t, u] = occupancy(t, u) * softmax - posterior of each transition
        occupancy = torch.exp(alpha + beta - ll)
        grad = torch.softmax(logits, dim=-1).mul_(occupancy[..., None])
        # beta after a blank at (t, u): beta[t + 1, u]; 0 (log 1) after the final blank
        after_blank = torch.cat([beta[:, 1:], torch.full_like(beta[:, :1], NEG_INF)], dim=1)
        rows = torch.arange(batch, device=logits.device)
        after_blank[rows, logit_lengths - 1, target_lengths] = 0.0
        grad[..., ctx.blank] -= torch.exp(alpha + blank_lp + after_blank - ll)
        label_post = torch.exp(alpha[:, :, :-1] + label_lp + beta[:, :, 1:] - ll)
        index = targets.clamp(min=0)[:, None, :, None].expand(batch, max_t, max_u1 - 1, 1)
        grad[:, :, :-1].scatter_add_(-1, index, -label_post[..., None])
        grad.mul_(grad_output[:, None, None, None])
        return grad, None, None, None, None


def transducer_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    logit_lengths: torch.Tensor,
    target_lengths: torch.Tensor,
    blank: int = 0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative log-likelihood of ``targets`` under a transducer's joint output.

    Args:
        logits: (B, T, U+1, V) joint network outputs before log-softmax.
        targets: (B, U) int64 labels, never ``blank`` within ``target_lengths``.
        logit_lengths: (B,) int64 frames per utterance (>= 1).
        target_lengths: (B,) int64 labels per utterance.
        blank: id of the blank symbol.
        reduction: "mean" (over the batch), "sum", or "none" for (B,) losses.
    """
    losses = _TransducerLoss.apply(
        logits, targets.long(), logit_lengths.long(), target_lengths.long(), blank
    )
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    if reduction == "mean":
        return losses.mean()
    raise ValueError(f"unknown reduction {reduction!r}")
