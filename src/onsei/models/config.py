"""Options of the model building blocks, as plain dataclasses (read from the ``model:`` part of
a YAML recipe). ``validate()`` raises ``OptionError`` with a one-line message naming the field."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from onsei.errors import OptionError

ENCODER_TYPES = ("blstm", "pblstm", "transformer", "conformer")
DECODER_TYPES = ("lstm", "transformer")
ATTENTION_TYPES = ("bahdanau", "location")
POSITION_TYPES = ("absolute", "relative")
CONV_SUBSAMPLING = (1, 2, 4, 6, 8)
"""Time reductions that ``Conv2dSubsampling`` implements."""


@dataclass
class EncoderConfig:
    type: str = "conformer"
    """"blstm", "pblstm" (LAS listener), "transformer" or "conformer"."""
    hidden: int = 256
    """LSTM units per direction (blstm, pblstm) or d_model (transformer, conformer)."""
    layers: int = 4
    heads: int = 4
    """Attention heads (transformer, conformer); must divide ``hidden``."""
    ff: int = 1024
    """Feed-forward inner size (transformer, conformer)."""
    dropout: float = 0.1
    subsampling: int = 4
    """Time reduction: frames stacked per output frame for blstm (any positive number); of
    the Conv2d front (1, 2, 4, 6 or 8) for transformer and conformer; for pblstm the total
    reduction, ``stack_frames`` times 2 per pyramidal layer (a power of 2)."""
    stack_frames: int = 1
    """pblstm: feature frames put side by side before the first BLSTM (a power of 2 that
    divides ``subsampling``); the pyramid does the rest of the reduction. Stacking 2 frames
    halves the cost of the first layer, the one that runs at the highest frame rate."""
    conv_kernel: int = 15
    """Depthwise convolution kernel of the conformer (odd)."""
    conv_channels: int | None = None
    """Channels of the Conv2d front (transformer, conformer); ``None``: ``hidden``."""
    positions: str = "absolute"
    """Transformer encoder: "absolute" (sinusoids added to the input, Vaswani et al. 2017) or
    "relative" (relative-position self-attention, Transformer-XL, as in the conformer, whose
    attention is always relative)."""
    chunk_size: int = 0
    """Conformer for streaming: self-attention sees the frames of its own chunk of this many
    (output) frames and of the chunks before it, and the convolutions look back only; the
    output of a frame then never depends on audio after its chunk. 0: full context."""

    def validate(self) -> None:
        _check_choice("encoder", "type", self.type, ENCODER_TYPES)
        _check_choice("encoder", "positions", self.positions, POSITION_TYPES)
        if self.positions != "absolute" and self.type != "transformer":
            raise OptionError(
                f"encoder.positions: for the transformer only, got {self.positions!r} for "
                f"{self.type}"
            )
        if self.chunk_size < 0 or (self.chunk_size and self.type != "conformer"):
            raise OptionError(
                "encoder.chunk_size: a positive number of frames, for the conformer only "
                f"(got {self.chunk_size} for {self.type})"
            )
        _check_positive("encoder", self, ("hidden", "layers", "heads", "ff", "subsampling"))
        if self.stack_frames != 1 and self.type != "pblstm":
            raise OptionError(
                "encoder.stack_frames: for pblstm only (blstm stacks encoder.subsampling "
                f"frames), got {self.stack_frames} for {self.type}"
            )
        _check_dropout("encoder", self.dropout)
        if self.conv_channels is not None and self.conv_channels < 1:
            raise OptionError(f"encoder.conv_channels: must be positive, got {self.conv_channels}")
        if self.conv_kernel < 1 or self.conv_kernel % 2 == 0:
            raise OptionError(
                f"encoder.conv_kernel: must be odd and positive, got {self.conv_kernel}"
            )
        if self.type in ("transformer", "conformer"):
            _check_heads("encoder", self.hidden, self.heads)
        if self.type == "pblstm":
            if self.subsampling & (self.subsampling - 1):
                raise OptionError(
                    "encoder.subsampling: pblstm halves the frame rate per pyramidal layer, "
                    f"so this must be a power of 2, got {self.subsampling}"
                )
            if self.stack_frames < 1 or self.subsampling % self.stack_frames:
                raise OptionError(
                    "encoder.stack_frames: must divide encoder.subsampling "
                    f"({self.subsampling}), got {self.stack_frames}"
                )
            needed = pyramid_layers(self.subsampling // self.stack_frames) + 1
            if self.layers < needed:
                raise OptionError(
                    f"encoder.layers: pblstm with subsampling {self.subsampling} needs at least "
                    f"{needed} layers (one BLSTM, then the pyramid), got {self.layers}"
                )
        elif self.type != "blstm" and self.subsampling not in CONV_SUBSAMPLING:
            raise OptionError(
                f"encoder.subsampling: must be one of {', '.join(map(str, CONV_SUBSAMPLING))}, "
                f"got {self.subsampling}"
            )


@dataclass
class DecoderConfig:
    type: str = "transformer"
    """"lstm" (LAS speller) or "transformer"."""
    hidden: int = 256
    """LSTM units or d_model."""
    layers: int = 2
    heads: int = 4
    ff: int = 1024
    dropout: float = 0.1
    embed: int = 128
    """Token embedding size of the LSTM speller."""
    attention: str = "location"
    """Attention of the LSTM speller: "bahdanau" or "location" (location-aware)."""
    attention_dim: int = 256

    def validate(self) -> None:
        _check_choice("decoder", "type", self.type, DECODER_TYPES)
        _check_choice("decoder", "attention", self.attention, ATTENTION_TYPES)
        _check_positive(
            "decoder", self, ("hidden", "layers", "heads", "ff", "embed", "attention_dim")
        )
        _check_dropout("decoder", self.dropout)
        if self.type == "transformer":
            _check_heads("decoder", self.hidden, self.heads)


@dataclass
class TransducerConfig:
    embed: int = 128
    hidden: int = 256
    """Prediction-network LSTM units."""
    layers: int = 1
    joint: int = 256
    """Joint-network inner size."""
    dropout: float = 0.1

    def validate(self) -> None:
        _check_positive("transducer", self, ("embed", "hidden", "layers", "joint"))
        _check_dropout("transducer", self.dropout)


def pyramid_layers(subsampling: int) -> int:
    """Pyramidal layers that reduce time by ``subsampling`` (a power of 2)."""
    return subsampling.bit_length() - 1


def _check_choice(section: str, name: str, value: str, choices: Iterable[str]) -> None:
    if value not in choices:
        raise OptionError(f"{section}.{name}: unknown {name} {value!r} (use {', '.join(choices)})")


def _check_positive(section: str, config: object, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(config, name)
        if value < 1:
            raise OptionError(f"{section}.{name}: must be at least 1, got {value}")


def _check_dropout(section: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise OptionError(f"{section}.dropout: must be in [0, 1), got {value}")


def _check_heads(section: str, hidden: int, heads: int) -> None:
    if hidden % heads:
        raise OptionError(
            f"{section}.heads: hidden ({hidden}) must be divisible by heads ({heads})"
        )
