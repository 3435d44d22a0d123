"""RNN-Transducer networks (Graves 2012): the prediction network (an LSTM language model over
the emitted labels, started with the blank id) and the joint network that combines it with the
encoder at every (frame, label) pair. The loss is ``onsei.losses.transducer``."""

from __future__ import annotations

import torch
from torch import nn

from onsei.models.config import TransducerConfig

PredictorState = tuple[torch.Tensor, torch.Tensor]
"""LSTM ``(h, c)``, each (layers, B, hidden)."""


class Predictor(nn.Module):
    """Embedding (the blank id is the start symbol, with a fixed zero embedding) + LSTM;
    ``output_dim = config.hidden``."""

    def __init__(self, vocab_size: int, config: TransducerConfig, blank: int = 0):
        super().__init__()
        self.blank = blank
        self.output_dim = config.hidden
        self.embed = nn.Embedding(vocab_size, config.embed, padding_idx=blank)
        self.lstm = nn.LSTM(
            config.embed,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, U+1) = ``[blank, y1, ..., yU]`` -> (B, U+1, hidden). Causal, so padding
        after the labels does not change the real positions."""
        output, _ = self.lstm(self.dropout(self.embed(inputs)))
        return self.dropout(output)

    def init_state(self, batch_size: int) -> PredictorState:
        """Zero ``(h, c)``, each (layers, batch_size, hidden)."""
        weight = self.embed.weight
        shape = (self.lstm.num_layers, batch_size, self.lstm.hidden_size)
        return weight.new_zeros(shape), weight.new_zeros(shape)

    def step(
        self, tokens: torch.Tensor, state: PredictorState
    ) -> tuple[torch.Tensor, PredictorState]:
        """One label per row: tokens (B,) -> output (B, hidden) and the new state."""
        output, state = self.lstm(self.dropout(self.embed(tokens.unsqueeze(1))), state)
        return self.dropout(output.squeeze(1)), state

    def select_state(self, state: PredictorState, indices: torch.Tensor) -> PredictorState:
        """Rows ``indices`` (N,) of ``(h, c)``."""
        h, c = state
        return h[:, indices], c[:, indices]


class Joint(nn.Module):
    """``Linear(tanh(W_e enc + W_p pred))``: unnormalised logits over the vocabulary."""

    def __init__(
        self, encoder_dim: int, predictor_dim: int, config: TransducerConfig, vocab_size: int
    ):
        super().__init__()
        self.encoder_projection = nn.Linear(encoder_dim, config.joint)
        self.predictor_projection = nn.Linear(predictor_dim, config.joint, bias=False)
        self.output = nn.Linear(config.joint, vocab_size)

    def forward(self, encoded: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        """encoded (B, T, E), predicted (B, U+1, P) -> logits (B, T, U+1, V)."""
        hidden = self.encoder_projection(encoded).unsqueeze(2) + self.predictor_projection(
            predicted
        ).unsqueeze(1)
        return self.output(torch.tanh(hidden))

    def step(self, encoded_t: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        """One frame and one predictor output per row: (B, E), (B, P) -> logits (B, V)."""
        hidden = self.encoder_projection(encoded_t) + self.predictor_projection(predicted)
        return self.output(torch.tanh(hidden))
