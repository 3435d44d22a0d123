"""Attention decoders over encoder outputs: the LAS speller (LSTM) and the Transformer decoder.

Token ids follow the tokenizers' layout: 0 blank, 1 unknown, ``vocab_size - 1`` the start and
end symbol ``sos_eos``. Both decoders share one interface:

- ``forward(encoded (B, T, D), encoded_lengths (B,), inputs (B, U)) -> logits (B, U, vocab)``:
  teacher forcing on ``inputs = [sos_eos, y1, ..., yn]`` (padding after the end may be any id;
  the caller ignores padded positions).
- ``init_state(encoded, encoded_lengths) -> state``, then
  ``step(prefix (B, u), state) -> (log_probs (B, vocab), state)``: the next token given the
  prefix (which starts with ``sos_eos``), for greedy and beam search.
- ``select_state(state, indices (N,)) -> state``: rows reordered or repeated (beam search).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn

from onsei.data.batching import padding_mask
from onsei.models.attention import BahdanauAttention, LocationAwareAttention
from onsei.models.config import DecoderConfig
from onsei.models.encoders import PositionalEncoding

ATTENTIONS: dict[str, type[BahdanauAttention]] = {
    "bahdanau": BahdanauAttention,
    "location": LocationAwareAttention,
}


@dataclass
class SpellerState:
    """Recurrent state of ``LSTMSpeller`` and the encoder outputs it attends to."""

    hidden: list[torch.Tensor]
    """(B, hidden) per LSTM layer."""
    cell: list[torch.Tensor]
    """(B, hidden) per LSTM layer."""
    context: torch.Tensor
    """(B, D) the last attention context (fed back as input)."""
    weights: torch.Tensor
    """(B, T) the last attention weights."""
    keys: torch.Tensor
    """(B, T, D) encoder outputs."""
    processed: torch.Tensor
    """(B, T, A) keys projected by the attention, once per utterance."""
    mask: torch.Tensor
    """(B, T) True on real frames."""


class LSTMSpeller(nn.Module):
    """The speller of LAS (Chan et al. 2016): token embedding and the previous context go into
    ``layers`` LSTM cells; the top state attends (Bahdanau or location-aware) over the encoder
    outputs; a Linear on ``[state; context]`` gives the logits."""

    def __init__(self, vocab_size: int, encoder_dim: int, config: DecoderConfig):
        super().__init__()
        self.vocab_size = vocab_size
        self.sos_eos = vocab_size - 1
        self.embed = nn.Embedding(vocab_size, config.embed)
        self.cells = nn.ModuleList(
            nn.LSTMCell(config.embed + encoder_dim if layer == 0 else config.hidden, config.hidden)
            for layer in range(config.layers)
        )
        self.attention = ATTENTIONS[config.attention](
            config.hidden, encoder_dim, config.attention_dim
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(config.hidden + encoder_dim, vocab_size)

    def init_state(self, encoded: torch.Tensor, encoded_lengths: torch.Tensor) -> SpellerState:
        """Zero recurrent state and context; the first 'previous' attention weights are uniform
        over the real frames. encoded: (B, T, D), encoded_lengths: (B,)."""
        batch = encoded.shape[0]
        mask = padding_mask(encoded_lengths, encoded.shape[1])
        zeros = [encoded.new_zeros(batch, cell.hidden_size) for cell in self.cells]
        return SpellerState(
            hidden=zeros,
            cell=list(zeros),
            context=encoded.new_zeros(batch, encoded.shape[2]),
            weights=mask.to(encoded.dtype) / encoded_lengths.unsqueeze(1).to(encoded.dtype),
            keys=encoded,
            processed=self.attention.precompute(encoded),
            mask=mask,
        )

    def _advance(
        self, tokens: torch.Tensor, state: SpellerState
    ) -> tuple[torch.Tensor, SpellerState]:
        """One step on the previous tokens (B,): logits (B, vocab) and the new state."""
        x = torch.cat([self.dropout(self.embed(tokens)), state.context], dim=-1)
        hidden, cell = [], []
        for layer, lstm in enumerate(self.cells):
            h, c = lstm(x, (state.hidden[layer], state.cell[layer]))
            hidden.append(h)
            cell.append(c)
            x = self.dropout(h)
        context, weights = self.attention(
            hidden[-1], state.keys, state.processed, state.mask, state.weights
        )
        logits = self.output(torch.cat([x, context], dim=-1))
        new_state = replace(state, hidden=hidden, cell=cell, context=context, weights=weights)
        return logits, new_state

    def forward(
        self, encoded: torch.Tensor, encoded_lengths: torch.Tensor, inputs: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing: (B, T, D), (B,), (B, U) -> logits (B, U, vocab)."""
        state = self.init_state(encoded, encoded_lengths)
        logits = []
        for u in range(inputs.shape[1]):
            step_logits, state = self._advance(inputs[:, u], state)
            logits.append(step_logits)
        return torch.stack(logits, dim=1)

    def step(self, prefix: torch.Tensor, state: SpellerState) -> tuple[torch.Tensor, SpellerState]:
        """prefix (B, u) -> next-token log-probabilities (B, vocab); only ``prefix[:, -1]`` is
        read, the rest is in ``state``."""
        logits, state = self._advance(prefix[:, -1], state)
        return logits.log_softmax(dim=-1), state

    def select_state(self, state: SpellerState, indices: torch.Tensor) -> SpellerState:
        """Rows ``indices`` (N,) of every tensor of ``state``."""
        return SpellerState(
            hidden=[h[indices] for h in state.hidden],
            cell=[c[indices] for c in state.cell],
            context=state.context[indices],
            weights=state.weights[indices],
            keys=state.keys[indices],
            processed=state.processed[indices],
            mask=state.mask[indices],
        )


@dataclass
class TransformerDecoderState:
    """What ``TransformerDecoder.step`` attends to (the prefix is recomputed at each step)."""

    memory: torch.Tensor
    """(B, T, hidden) encoder outputs projected to the decoder's width."""
    mask: torch.Tensor
    """(B, T) True on real frames."""


class TransformerDecoder(nn.Module):
    """Scaled token embedding + sinusoidal positions, ``layers`` pre-LayerNorm decoder layers
    (causal self-attention, cross-attention with the encoder padding masked), final LayerNorm
    and an output Linear. A Linear maps ``encoder_dim`` to ``hidden`` when they differ."""

    def __init__(self, vocab_size: int, encoder_dim: int, config: DecoderConfig):
        super().__init__()
        self.vocab_size = vocab_size
        self.sos_eos = vocab_size - 1
        self.memory_projection = (
            nn.Linear(encoder_dim, config.hidden) if encoder_dim != config.hidden else nn.Identity()
        )
        self.embed = nn.Embedding(vocab_size, config.hidden)
        # Unit scale after PositionalEncoding's sqrt(hidden) (fairseq's init); nn.Embedding's
        # N(0, 1) would make the residual stream ~sqrt(hidden) times larger than what the
        # cross-attention adds to it, and the decoder would learn to use the encoder slowly.
        nn.init.normal_(self.embed.weight, std=config.hidden**-0.5)
        self.positions = PositionalEncoding(config.hidden, config.dropout)
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(
                config.hidden,
                config.heads,
                config.ff,
                config.dropout,
                batch_first=True,
                norm_first=True,
            )
            for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(config.hidden)
        self.output = nn.Linear(config.hidden, vocab_size)

    def init_state(
        self, encoded: torch.Tensor, encoded_lengths: torch.Tensor
    ) -> TransformerDecoderState:
        """encoded: (B, T, D), encoded_lengths: (B,)."""
        return TransformerDecoderState(
            memory=self.memory_projection(encoded),
            mask=padding_mask(encoded_lengths, encoded.shape[1]),
        )

    def _decode(self, inputs: torch.Tensor, state: TransformerDecoderState) -> torch.Tensor:
        """(B, U) token ids -> logits (B, U, vocab), each position seeing itself and before."""
        length = inputs.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=inputs.device).triu(1)
        x = self.positions(self.embed(inputs))
        for layer in self.layers:
            x = layer(x, state.memory, tgt_mask=causal, memory_key_padding_mask=~state.mask)
        return self.output(self.norm(x))

    def forward(
        self, encoded: torch.Tensor, encoded_lengths: torch.Tensor, inputs: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing: (B, T, D), (B,), (B, U) -> logits (B, U, vocab)."""
        return self._decode(inputs, self.init_state(encoded, encoded_lengths))

    def step(
        self, prefix: torch.Tensor, state: TransformerDecoderState
    ) -> tuple[torch.Tensor, TransformerDecoderState]:
        """prefix (B, u) -> next-token log-probabilities (B, vocab), recomputed over the
        whole prefix; the state does not change."""
        return self._decode(prefix, state)[:, -1].log_softmax(dim=-1), state

    def select_state(
        self, state: TransformerDecoderState, indices: torch.Tensor
    ) -> TransformerDecoderState:
        """Rows ``indices`` (N,) of the memory and its mask."""
        return TransformerDecoderState(memory=state.memory[indices], mask=state.mask[indices])


def build_decoder(config: DecoderConfig, vocab_size: int, encoder_dim: int) -> nn.Module:
    """``LSTMSpeller`` or ``TransformerDecoder`` per ``config.type`` (after validating)."""
    config.validate()
    if config.type == "lstm":
        return LSTMSpeller(vocab_size, encoder_dim, config)
    return TransformerDecoder(vocab_size, encoder_dim, config)
