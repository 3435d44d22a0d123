"""Attention mechanisms: additive attention for the LSTM speller, one decoder step at a time
(Bahdanau et al. 2015; location-aware, Chorowski et al. 2015), and the multi-head
self-attention with relative positions of the Conformer (Transformer-XL, Dai et al. 2019).

Masks are boolean and True on real (valid) positions; padded positions get zero weight.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _attend(
    scores: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of ``scores`` (B, T) over the valid positions of ``mask`` (B, T), and the context
    ``(B, K)``: the weighted sum of ``keys`` (B, T, K). Returns ``(context, weights)``."""
    weights = scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)
    context = torch.bmm(weights.unsqueeze(1), keys).squeeze(1)
    return context, weights


class BahdanauAttention(nn.Module):
    """Additive attention: ``score_t = w . tanh(W_k k_t + W_q q)``."""

    def __init__(self, query_dim: int, key_dim: int, attention_dim: int):
        super().__init__()
        self.key_projection = nn.Linear(key_dim, attention_dim)
        self.query_projection = nn.Linear(query_dim, attention_dim, bias=False)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def precompute(self, keys: torch.Tensor) -> torch.Tensor:
        """``W_k k``, once per utterance: keys (B, T, K) -> processed keys (B, T, A)."""
        return self.key_projection(keys)

    def _energies(
        self, query: torch.Tensor, processed: torch.Tensor, previous_weights: torch.Tensor
    ) -> torch.Tensor:
        """The argument of ``tanh``, (B, T, A); Bahdanau attention ignores the weights."""
        return processed + self.query_projection(query).unsqueeze(1)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        processed: torch.Tensor,
        mask: torch.Tensor,
        previous_weights: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One step.

        Args:
            query: (B, Q) decoder state; keys: (B, T, K) encoder outputs; processed: (B, T, A)
            from ``precompute(keys)``; mask: (B, T) True on valid frames; previous_weights:
            (B, T) the previous step's attention weights.

        Returns:
            context (B, K) and weights (B, T), which sum to 1 over the valid frames.
        """
        energies = self._energies(query, processed, previous_weights)
        scores = self.score(torch.tanh(energies)).squeeze(-1)
        return _attend(scores, keys, mask)


class LocationAwareAttention(BahdanauAttention):
    """Additive attention that also sees where it attended before:
    ``score_t = w . tanh(W_k k_t + W_q q + U (F * previous_weights)_t)``, where ``F`` is a
    Conv1d with ``channels`` filters of width ``kernel`` (odd)."""

    def __init__(
        self, query_dim: int, key_dim: int, attention_dim: int, channels: int = 10, kernel: int = 31
    ):
        super().__init__(query_dim, key_dim, attention_dim)
        self.location_conv = nn.Conv1d(1, channels, kernel, padding=kernel // 2, bias=False)
        self.location_projection = nn.Linear(channels, attention_dim, bias=False)

    def _energies(
        self, query: torch.Tensor, processed: torch.Tensor, previous_weights: torch.Tensor
    ) -> torch.Tensor:
        filtered = self.location_conv(previous_weights.unsqueeze(1)).transpose(1, 2)  # (B, T, C)
        location = self.location_projection(filtered)
        return super()._energies(query, processed, previous_weights) + location


def _relative_shift(scores: torch.Tensor) -> torch.Tensor:
    """(B, H, T, 2T-1) scores against relative positions ``T-1, ..., -(T-1)`` -> (B, H, T, T)
    where ``[i, j]`` is the score of query ``i`` against relative position ``i - j``."""
    length = scores.shape[2]
    steps = torch.arange(length, device=scores.device)
    index = (length - 1) - steps[:, None] + steps[None, :]  # position of i - j: T-1-(i-j)
    return scores.gather(-1, index.expand(*scores.shape[:2], length, length))


class RelPositionMultiHeadAttention(nn.Module):
    """Multi-head self-attention with relative positional encoding (Transformer-XL; ESPnet's
    ``RelPositionMultiHeadedAttention``): the score of query ``i`` and key ``j`` is
    ``(q_i + u) . k_j + (q_i + v) . W_p p_{i-j}``, scaled by ``1 / sqrt(d_k)``."""

    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.d_k = d_model // heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.position = nn.Linear(d_model, d_model, bias=False)
        self.out = nn.Linear(d_model, d_model)
        self.content_bias = nn.Parameter(torch.empty(heads, self.d_k))  # u
        self.position_bias = nn.Parameter(torch.empty(heads, self.d_k))  # v
        nn.init.xavier_uniform_(self.content_bias)
        nn.init.xavier_uniform_(self.position_bias)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, T, D); positions: (1, 2T-1, D) encodings of relative positions ``T-1`` down to
        ``-(T-1)``; mask: (B, T) True on real frames; visible: (T, T), True where query ``i``
        may see key ``j`` (None: everywhere). Returns (B, T, D)."""
        batch, length, _ = x.shape
        q = self.query(x).view(batch, length, self.heads, self.d_k)
        k = self.key(x).view(batch, length, self.heads, self.d_k).transpose(1, 2)
        v = self.value(x).view(batch, length, self.heads, self.d_k).transpose(1, 2)
        p = self.position(positions).view(1, -1, self.heads, self.d_k).transpose(1, 2)
        content = (q + self.content_bias).transpose(1, 2) @ k.transpose(-2, -1)  # (B, H, T, T)
        position = (q + self.position_bias).transpose(1, 2) @ p.transpose(-2, -1)
        scores = (content + _relative_shift(position)) / math.sqrt(self.d_k)
        allowed = mask[:, None, None, :]
        if visible is not None:
            allowed = allowed & visible[None, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
        weights = self.dropout(scores.softmax(dim=-1))
        out = (weights @ v).transpose(1, 2).reshape(batch, length, -1)
        return self.out(out)
