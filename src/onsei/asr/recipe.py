"""Training recipes: YAML files read strictly into dataclasses (unknown keys and wrong types
fail at once, naming the key)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from onsei.dataclass_io import from_dict, to_dict
from onsei.errors import OptionError
from onsei.models.config import DecoderConfig, EncoderConfig, TransducerConfig

FAMILIES = ("ctc", "las", "transformer", "joint_ctc_attention", "rnnt")


@dataclass
class DataConfig:
    train: str
    """Training manifest (JSONL), relative to the working directory."""
    dev: str
    """Validation manifest."""


@dataclass
class TokenizerConfig:
    type: str = "char"
    """"char", "bpe" or "unigram" (sentencepiece)."""
    vocab_size: int = 100
    """Pieces for bpe/unigram (ignored for char)."""
    lowercase: bool = False


@dataclass
class FeatureConfig:
    n_mels: int = 80
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)
    """Speed-perturbation factors drawn per training utterance."""
    spec_augment: bool = True
    freq_masks: int = 2
    freq_width: int = 27
    time_masks: int = 2
    time_width_ratio: float = 0.05
    time_warp: int = 0
    cmvn_utterances: int = 1000
    """Training utterances used to estimate the global mean and variance."""


@dataclass
class ModelConfig:
    family: str = "ctc"
    """"ctc", "las", "transformer", "joint_ctc_attention" or "rnnt"."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    transducer: TransducerConfig = field(default_factory=TransducerConfig)
    ctc_weight: float = 0.3
    """Share of the CTC loss in joint CTC-attention training, and of the CTC prefix score in its
    search."""
    aux_ctc_weight: float = 0.0
    """Share of an auxiliary CTC loss on the encoder of the attention-only families (las,
    transformer), as ESPnet's Transformer recipes train (Karita et al. 2019); their searches
    stay attention-only."""
    label_smoothing: float = 0.1


@dataclass
class TrainConfig:
    epochs: int = 30
    max_batch_seconds: float = 120.0
    """Padded seconds of audio per batch (before speed perturbation)."""
    lr: float = 1e-3
    """Peak learning rate."""
    scheduler: str = "noam"
    """"noam" (linear warm-up, then inverse square root), "cosine" or "constant"."""
    warmup_steps: int = 500
    weight_decay: float = 0.0
    grad_clip: float = 5.0
    accum_grad: int = 1
    average_best: int = 5
    """The final model averages the weights of the best N epochs (by dev error rate)."""
    seed: int = 1
    amp: bool = False
    """Mixed precision (CUDA only)."""
    num_workers: int = 1
    max_minutes: float | None = None
    """Stop after the epoch during which this wall-clock budget ran out."""


@dataclass
class Recipe:
    data: DataConfig
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> None:
        if self.model.family not in FAMILIES:
            raise OptionError(
                f"model.family: unknown family {self.model.family!r} (use {', '.join(FAMILIES)})"
            )
        if self.tokenizer.type not in ("char", "bpe", "unigram"):
            raise OptionError(f"tokenizer.type: unknown type {self.tokenizer.type!r}")
        if self.train.scheduler not in ("noam", "cosine", "constant"):
            raise OptionError(f"train.scheduler: unknown scheduler {self.train.scheduler!r}")
        if not 0.0 <= self.model.ctc_weight <= 1.0:
            raise OptionError("model.ctc_weight: must be between 0 and 1")
        if not 0.0 <= self.model.aux_ctc_weight < 1.0:
            raise OptionError("model.aux_ctc_weight: must be at least 0 and below 1")
        if self.model.aux_ctc_weight and self.model.family not in ("las", "transformer"):
            raise OptionError(
                "model.aux_ctc_weight: applies to the las and transformer families "
                f"(joint_ctc_attention has ctc_weight), not {self.model.family}"
            )
        for name in ("epochs", "accum_grad", "average_best"):
            if getattr(self.train, name) < 1:
                raise OptionError(f"train.{name}: must be at least 1")
        self.model.encoder.validate()
        self.model.decoder.validate()
        self.model.transducer.validate()


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Read and check a YAML recipe."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise OptionError(f"{path}: no such recipe")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise OptionError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None
    try:
        recipe = from_dict(Recipe, data or {})
        recipe.validate()
    except TypeError as error:  # a required key is missing
        raise OptionError(f"{path}: {error}") from None
    except OptionError as error:
        raise OptionError(f"{path}: {error}") from None
    return recipe


def dump_recipe(recipe: Recipe) -> str:
    """The recipe as YAML (what an experiment directory keeps as config.yaml)."""
    import yaml

    return yaml.safe_dump(to_dict(recipe), sort_keys=False)
