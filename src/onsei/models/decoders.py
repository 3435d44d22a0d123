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
    """What ``TransformerDecoder.step`` needs: per layer, the keys and values of the encoder
    output (computed once) and of the prefix so far (one position added per step)."""

    memory_keys: list[torch.Tensor]
    """Per layer (B, heads, T, hidden / heads)."""
    memory_values: list[torch.Tensor]
    mask: torch.Tensor
    """(B, 1, 1, T) True on real frames."""
    prefix_keys: list[torch.Tensor]
    """Per layer (B, heads, u - 1, hidden / heads): the self-attention keys of the prefix."""
    prefix_values: list[torch.Tensor]


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, L, D) -> (B, heads, L, D / heads)."""
    batch, length, dim = x.shape
    return x.reshape(batch, length, heads, dim // heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, L, d) -> (B, L, heads * d)."""
    batch, heads, length, dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * dim)


class TransformerDecoder(nn.Module):
    """Scaled token embedding + sinusoidal positions, ``layers`` pre-LayerNorm decoder layers
    (causal self-attention, cross-attention with the encoder padding masked), final LayerNorm
    and an output Linear. A Linear maps ``encoder_dim`` to ``hidden`` when they differ."""

    def __init__(self, vocab_size: int, encoder_dim: int, config: DecoderConfig):
        super().__init__()
        self.vocab_size = vocab_size
        self.sos_eos = vocab_size - 1
        self.heads = config.heads
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
        memory = self.memory_projection(encoded)
        keys, values = [], []
        for layer in self.layers:
            attention = layer.multihead_attn
            _, key_weight, value_weight = attention.in_proj_weight.chunk(3)
            _, key_bias, value_bias = attention.in_proj_bias.chunk(3)
            keys.append(
                _split_heads(nn.functional.linear(memory, key_weight, key_bias), self.heads)
            )
            values.append(
                _split_heads(nn.functional.linear(memory, value_weight, value_bias), self.heads)
            )
        empty = memory.new_zeros(memory.shape[0], self.heads, 0, memory.shape[2] // self.heads)
        return TransformerDecoderState(
            memory_keys=keys,
            memory_values=values,
            mask=padding_mask(encoded_lengths, encoded.shape[1])[:, None, None, :],
            prefix_keys=[empty] * len(self.layers),
            prefix_values=[empty] * len(self.layers),
        )

    def _decode(
        self, inputs: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor
    ) -> torch.Tensor:
        """(B, U) token ids, memory (B, T, hidden), mask (B, T) True on real frames -> logits
        (B, U, vocab), each position seeing itself and before."""
        length = inputs.shape[1]
        causal = torch.ones(length, length, dtype=torch.bool, device=inputs.device).triu(1)
        x = self.positions(self.embed(inputs))
        for layer in self.layers:
            x = layer(x, memory, tgt_mask=causal, memory_key_padding_mask=~memory_mask)
        return self.output(self.norm(x))

    def forward(
        self, encoded: torch.Tensor, encoded_lengths: torch.Tensor, inputs: torch.Tensor
    ) -> torch.Tensor:
        """Teacher forcing: (B, T, D), (B,), (B, U) -> logits (B, U, vocab)."""
        mask = padding_mask(encoded_lengths, encoded.shape[1])
        return self._decode(inputs, self.memory_projection(encoded), mask)

    def step(
        self, prefix: torch.Tensor, state: TransformerDecoderState
    ) -> tuple[torch.Tensor, TransformerDecoderState]:
        """prefix (B, u) -> next-token log-probabilities (B, vocab) and the state with the
        last position's keys and values added: only that position is computed (the layers of
        ``forward`` in inference mode, without dropout). The state must hold ``u - 1``
        positions, as the previous step left it."""
        cached = state.prefix_keys[0].shape[2]
        if cached != prefix.shape[1] - 1:
            raise ValueError(f"state holds {cached} positions for a prefix of {prefix.shape[1]}")
        x = self.positions(self.embed(prefix))[:, -1:]  # (B, 1, hidden)
        prefix_keys, prefix_values = [], []
        for index, layer in enumerate(self.layers):
            attention = layer.self_attn
            query, key, value = nn.functional.linear(
                layer.norm1(x), attention.in_proj_weight, attention.in_proj_bias
            ).chunk(3, dim=-1)
            keys = torch.cat([state.prefix_keys[index], _split_heads(key, self.heads)], dim=2)
            values = torch.cat([state.prefix_values[index], _split_heads(value, self.heads)], 2)
            prefix_keys.append(keys)
            prefix_values.append(values)
            attended = nn.functional.scaled_dot_product_attention(
                _split_heads(query, self.heads), keys, values
            )
            x = x + attention.out_proj(_merge_heads(attended))
            attention = layer.multihead_attn
            query_weight = attention.in_proj_weight.chunk(3)[0]
            query_bias = attention.in_proj_bias.chunk(3)[0]
            query = nn.functional.linear(layer.norm2(x), query_weight, query_bias)
            attended = nn.functional.scaled_dot_product_attention(
                _split_heads(query, self.heads),
                state.memory_keys[index],
                state.memory_values[index],
                attn_mask=state.mask,
            )
            x = x + attention.out_proj(_merge_heads(attended))
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
        log_probs = self.output(self.norm(x[:, 0])).log_softmax(dim=-1)
        return log_probs, replace(state, prefix_keys=prefix_keys, prefix_values=prefix_values)

    def select_state(
        self, state: TransformerDecoderState, indices: torch.Tensor
    ) -> TransformerDecoderState:
        """Rows ``indices`` (N,) of every cached tensor."""
        return TransformerDecoderState(
            memory_keys=[keys[indices] for keys in state.memory_keys],
            memory_values=[values[indices] for values in state.memory_values],
            mask=state.mask[indices],
            prefix_keys=[keys[indices] for keys in state.prefix_keys],
            prefix_values=[values[indices] for values in state.prefix_values],
        )


def build_decoder(config: DecoderConfig, vocab_size: int, encoder_dim: int) -> nn.Module:
    """``LSTMSpeller`` or ``TransformerDecoder`` per ``config.type`` (after validating)."""
    config.validate()
    if config.type == "lstm":
        return LSTMSpeller(vocab_size, encoder_dim, config)
    return TransformerDecoder(vocab_size, encoder_dim, config)
