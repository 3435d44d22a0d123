"""Speech encoders: features ``(B, T, in_dim)`` and lengths ``(B,)`` -> encodings
``(B, T', output_dim)`` and lengths ``(B,)``.

Padded frames never influence real ones: LSTMs run on packed sequences, self-attention masks
padded keys, and padded frames are zeroed before every convolution across time (the strided
convolutions of ``Conv2dSubsampling`` have no padding, so a real output frame only sees real
input frames). Outputs on padded frames are unspecified.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from onsei.data.batching import padding_mask
from onsei.models.attention import RelPositionMultiHeadAttention
from onsei.models.config import EncoderConfig, pyramid_layers

SUBSAMPLING_CONVS: dict[int, tuple[tuple[int, int], ...]] = {
    1: (),
    2: ((3, 2), (3, 1)),
    4: ((3, 2), (3, 2)),
    6: ((3, 2), (5, 3)),
    8: ((3, 2), (3, 2), (3, 2)),
}
"""(kernel, stride) of the Conv2d layers for each time reduction (ESPnet's Conv2dSubsampling)."""


def sinusoids(positions: torch.Tensor, channels: int) -> torch.Tensor:
    """Sinusoidal encodings (Vaswani et al. 2017) of ``positions`` (N,), shape (N, channels):
    ``sin`` on even channels, ``cos`` on odd ones, wavelengths from 2 pi to 10000 * 2 pi."""
    inverse = torch.exp(
        torch.arange(0, channels, 2, device=positions.device) * (-math.log(10000.0) / channels)
    )
    angles = positions.float()[:, None] * inverse[None, :]
    encodings = torch.zeros(len(positions), channels, device=positions.device)
    encodings[:, 0::2] = torch.sin(angles)
    encodings[:, 1::2] = torch.cos(angles)
    return encodings


class PositionalEncoding(nn.Module):
    """``dropout(x * sqrt(d_model) + sinusoids)`` with absolute positions 0, 1, ..."""

    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.scale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        positions = torch.arange(x.shape[1], device=x.device)
        return self.dropout(x * self.scale + sinusoids(positions, x.shape[2]).to(x.dtype))


class RelPositionalEncoding(nn.Module):
    """Scales ``x`` by ``sqrt(d_model)`` and encodes the relative positions for
    ``RelPositionMultiHeadAttention``; both get dropout."""

    def __init__(self, d_model: int, dropout: float):
        super().__init__()
        self.scale = math.sqrt(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) -> scaled x (B, T, D) and encodings (1, 2T-1, D) of ``T-1, ..., -(T-1)``."""
        length = x.shape[1]
        positions = torch.arange(length - 1, -length, -1, device=x.device)
        encodings = sinusoids(positions, x.shape[2]).to(x.dtype).unsqueeze(0)
        return self.dropout(x * self.scale), self.dropout(encodings)


class Conv2dSubsampling(nn.Module):
    """Reduce time by ``factor`` (1, 2, 4, 6 or 8) with Conv2d + ReLU layers without padding
    (ESPnet) of ``conv_channels`` channels (default ``d_model``), then a Linear to ``d_model``;
    ``factor`` 1 is the Linear alone.

    Each convolution of (kernel ``k``, stride ``s``) maps ``L`` frames to ``(L - k) // s + 1``;
    for ``factor`` 4, ``T' = ((T - 1) // 2 - 1) // 2``, so at least 7 input frames are needed.
    """

    def __init__(self, in_dim: int, d_model: int, factor: int, conv_channels: int | None = None):
        super().__init__()
        channels_out = conv_channels or d_model
        if factor not in SUBSAMPLING_CONVS:
            raise ValueError(f"subsampling factor must be one of {list(SUBSAMPLING_CONVS)}")
        self.kernels_strides = SUBSAMPLING_CONVS[factor]
        layers: list[nn.Module] = []
        channels, freq = 1, in_dim
        for kernel, stride in self.kernels_strides:
            layers += [nn.Conv2d(channels, channels_out, kernel, stride), nn.ReLU()]
            channels, freq = channels_out, (freq - kernel) // stride + 1
        if freq < 1:
            raise ValueError(f"{in_dim} features are too few for subsampling by {factor}")
        self.conv = nn.Sequential(*layers)
        self.linear = nn.Linear(channels * freq, d_model)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames after subsampling, (B,) -> (B,)."""
        for kernel, stride in self.kernels_strides:
            lengths = (lengths - kernel) // stride + 1
        return lengths

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, in_dim), (B,) -> (B, T', d_model), (B,)."""
        x = self.conv(features.unsqueeze(1))  # (B, C, T', F')
        batch, channels, frames, freq = x.shape
        x = self.linear(x.transpose(1, 2).reshape(batch, frames, channels * freq))
        return x, self.output_lengths(lengths)


def _run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run ``lstm`` on the real frames only: (B, T, in) -> (B, T, out), zeros on padding."""
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    output, _ = lstm(packed)
    output, _ = pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])
    return output


def stack_frames(
    x: torch.Tensor, lengths: torch.Tensor, factor: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each ``factor`` consecutive frames side by side, an incomplete last group dropped:
    (B, T, D), (B,) -> (B, T // factor, factor * D), (B,) divided by ``factor``."""
    batch, frames, dim = x.shape
    kept = frames // factor
    return x[:, : kept * factor].reshape(batch, kept, factor * dim), lengths // factor


class BLSTMEncoder(nn.Module):
    """Frame stacking by ``subsampling`` (the low frame rate of Sak et al. 2015: ``subsampling``
    consecutive feature frames side by side), then ``layers`` bidirectional LSTM layers with
    dropout between them; ``output_dim = 2 * hidden``.

    Stacking rather than a Conv2d front: trained on 120 AN4 utterances, a BLSTM-CTC behind a
    4x Conv2d front (64 channels) was still on the all-blank plateau (loss 62) after 300
    updates, where the same BLSTM on stacked frames had reached loss 13."""

    def __init__(self, in_dim: int, config: EncoderConfig):
        super().__init__()
        self.output_dim = 2 * config.hidden
        self.subsampling = config.subsampling
        self.lstm = nn.LSTM(
            in_dim * config.subsampling,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, in_dim), (B,) -> (B, T // subsampling, 2 * hidden), (B,)."""
        features, lengths = stack_frames(features, lengths, self.subsampling)
        return _run_lstm(self.lstm, features, lengths), lengths


class PyramidalBLSTMEncoder(nn.Module):
    """The listener of LAS (Chan et al. 2016): a BLSTM on the features (``stack_frames``
    consecutive frames side by side), then ``log2(subsampling / stack_frames)`` pyramidal
    BLSTMs, each on pairs of consecutive frames concatenated (half the frame rate), then plain
    BLSTMs up to ``layers`` in all; dropout between layers. ``output_dim = 2 * hidden``."""

    def __init__(self, in_dim: int, config: EncoderConfig):
        super().__init__()
        self.output_dim = 2 * config.hidden
        self.stack = config.stack_frames
        self.pyramid = pyramid_layers(config.subsampling // config.stack_frames)
        inputs = [in_dim * self.stack] + [2 * self.output_dim] * self.pyramid
        inputs += [self.output_dim] * (config.layers - len(inputs))
        self.layers = nn.ModuleList(
            nn.LSTM(size, config.hidden, batch_first=True, bidirectional=True) for size in inputs
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, in_dim), (B,) -> (B, T // subsampling, 2 * hidden), (B,)."""
        x, lengths = stack_frames(features, lengths, self.stack)
        for index, lstm in enumerate(self.layers):
            if index > 0:
                x = self.dropout(x)
            if 1 <= index <= self.pyramid:
                x, lengths = stack_frames(x, lengths, 2)
            x = _run_lstm(lstm, x, lengths)
        return x, lengths


class RelPositionTransformerLayer(nn.Module):
    """Pre-LayerNorm Transformer encoder layer whose self-attention is relative-position
    (``RelPositionMultiHeadAttention``), with a ReLU feed-forward; each sub-layer with dropout
    and a residual, as ``nn.TransformerEncoderLayer(norm_first=True)``."""

    def __init__(self, d_model: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.norm_attention = nn.LayerNorm(d_model)
        self.attention = RelPositionMultiHeadAttention(d_model, heads, dropout)
        self.norm_ff = nn.LayerNorm(d_model)
        self.ff = _feed_forward(d_model, ff, dropout, nn.ReLU)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D), positions: (1, 2T-1, D), mask: (B, T) True on real frames -> (B, T, D)."""
        x = x + self.dropout(self.attention(self.norm_attention(x), positions, mask))
        return x + self.dropout(self.ff(self.norm_ff(x)))


class TransformerEncoder(nn.Module):
    """``Conv2dSubsampling`` to ``d_model = hidden``, then ``layers`` pre-LayerNorm
    self-attention blocks (ReLU feed-forward) with a key padding mask, and a final LayerNorm;
    ``output_dim = hidden``. Positions are scaled sinusoids added to the input
    (``positions="absolute"``) or relative-position attention in every block ("relative")."""

    def __init__(self, in_dim: int, config: EncoderConfig):
        super().__init__()
        self.output_dim = config.hidden
        self.subsampling = Conv2dSubsampling(
            in_dim, config.hidden, config.subsampling, config.conv_channels
        )
        self.relative = config.positions == "relative"
        if self.relative:
            self.positions = RelPositionalEncoding(config.hidden, config.dropout)
            self.layers = nn.ModuleList(
                RelPositionTransformerLayer(config.hidden, config.heads, config.ff, config.dropout)
                for _ in range(config.layers)
            )
        else:
            self.positions = PositionalEncoding(config.hidden, config.dropout)
            self.layers = nn.ModuleList(
                nn.TransformerEncoderLayer(
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

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, in_dim), (B,) -> (B, T', hidden), (B,)."""
        x, lengths = self.subsampling(features, lengths)
        mask = padding_mask(lengths, x.shape[1])
        if self.relative:
            x, positions = self.positions(x)
            for layer in self.layers:
                x = layer(x, positions, mask)
        else:
            x = self.positions(x)
            for layer in self.layers:
                x = layer(x, src_key_padding_mask=~mask)
        return self.norm(x), lengths


def _feed_forward(
    d_model: int, inner: int, dropout: float, activation: type[nn.Module] = nn.SiLU
) -> nn.Sequential:
    """Position-wise feed-forward (Swish by default, as the conformer's), (B, T, D) -> (B, T, D)."""
    return nn.Sequential(
        nn.Linear(d_model, inner), activation(), nn.Dropout(dropout), nn.Linear(inner, d_model)
    )


class ConvolutionModule(nn.Module):
    """Conformer convolution: pointwise (to 2D) + GLU, depthwise Conv1d over time, LayerNorm,
    Swish, pointwise. Pointwise convolutions are Linear layers over channels. LayerNorm (per
    frame) replaces the paper's BatchNorm so that padded frames cannot leak in through batch
    statistics."""

    def __init__(self, d_model: int, kernel: int, causal: bool = False):
        super().__init__()
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        # causal: all the padding on the left, so a frame sees only itself and the past
        self.left_pad = kernel - 1 if causal else 0
        padding = 0 if causal else kernel // 2
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, padding=padding, groups=d_model)
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D), mask: (B, T) True on real frames -> (B, T, D)."""
        x = nn.functional.glu(self.pointwise_in(x), dim=-1)
        x = x.masked_fill(~mask.unsqueeze(-1), 0.0)  # padded frames must not reach real ones
        x = nn.functional.pad(x.transpose(1, 2), (self.left_pad, 0))
        x = self.depthwise(x).transpose(1, 2)
        return self.pointwise_out(nn.functional.silu(self.norm(x)))


class ConformerBlock(nn.Module):
    """Half-step FFN, relative-position MHSA, convolution module, half-step FFN, LayerNorm
    (Gulati et al. 2020); each sub-module pre-LayerNorm with dropout and a residual."""

    def __init__(
        self, d_model: int, heads: int, ff: int, kernel: int, dropout: float, causal: bool = False
    ):
        super().__init__()
        self.norm_ff_in = nn.LayerNorm(d_model)
        self.ff_in = _feed_forward(d_model, ff, dropout)
        self.norm_attention = nn.LayerNorm(d_model)
        self.attention = RelPositionMultiHeadAttention(d_model, heads, dropout)
        self.norm_conv = nn.LayerNorm(d_model)
        self.conv = ConvolutionModule(d_model, kernel, causal)
        self.norm_ff_out = nn.LayerNorm(d_model)
        self.ff_out = _feed_forward(d_model, ff, dropout)
        self.norm_final = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, T, D), positions: (1, 2T-1, D), mask: (B, T) True on real frames, visible:
        (T, T) which keys each query may attend to (None: all)."""
        x = x + 0.5 * self.dropout(self.ff_in(self.norm_ff_in(x)))
        x = x + self.dropout(self.attention(self.norm_attention(x), positions, mask, visible))
        x = x + self.dropout(self.conv(self.norm_conv(x), mask))
        x = x + 0.5 * self.dropout(self.ff_out(self.norm_ff_out(x)))
        return self.norm_final(x)


def chunk_visibility(frames: int, chunk_size: int, device=None) -> torch.Tensor:
    """(T, T) mask of chunked self-attention: query ``i`` sees key ``j`` when ``j``'s chunk
    of ``chunk_size`` frames is not after ``i``'s."""
    chunk = torch.arange(frames, device=device) // chunk_size
    return chunk[None, :] <= chunk[:, None]


class ConformerEncoder(nn.Module):
    """``Conv2dSubsampling`` to ``d_model = hidden``, relative positional encoding, and
    ``layers`` Conformer blocks; ``output_dim = hidden``.

    With ``chunk_size`` > 0 it is a streaming encoder: attention is chunked
    (``chunk_visibility``) and the convolution modules are causal, so an output frame depends
    on the input up to the end of its chunk only (plus the subsampling's 6 feature frames of
    look-ahead), and a growing input leaves the outputs of finished chunks as they were."""

    def __init__(self, in_dim: int, config: EncoderConfig):
        super().__init__()
        self.chunk_size = config.chunk_size
        self.output_dim = config.hidden
        self.subsampling = Conv2dSubsampling(
            in_dim, config.hidden, config.subsampling, config.conv_channels
        )
        self.positions = RelPositionalEncoding(config.hidden, config.dropout)
        self.blocks = nn.ModuleList(
            ConformerBlock(
                config.hidden,
                config.heads,
                config.ff,
                config.conv_kernel,
                config.dropout,
                causal=config.chunk_size > 0,
            )
            for _ in range(config.layers)
        )

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, in_dim), (B,) -> (B, T', hidden), (B,)."""
        x, lengths = self.subsampling(features, lengths)
        x, positions = self.positions(x)
        mask = padding_mask(lengths, x.shape[1])
        visible = None
        if self.chunk_size:
            visible = chunk_visibility(x.shape[1], self.chunk_size, x.device)
        for block in self.blocks:
            x = block(x, positions, mask, visible)
        return x, lengths


ENCODERS: dict[str, type[nn.Module]] = {
    "blstm": BLSTMEncoder,
    "pblstm": PyramidalBLSTMEncoder,
    "transformer": TransformerEncoder,
    "conformer": ConformerEncoder,
}


def build_encoder(config: EncoderConfig, in_dim: int) -> nn.Module:
    """The encoder ``config.type`` for ``in_dim`` features per frame (after validating)."""
    config.validate()
    return ENCODERS[config.type](in_dim, config)
