"""The model families trained here, behind one small protocol: ``forward(batch)`` returns the
losses, ``recognize(waveforms, lengths)`` the greedy token sequences. One Trainer serves all.

- ``CTCModel``: encoder + linear + CTC (the BiLSTM-CTC or Conformer-CTC of the recipes).
- ``AttentionModel``: encoder + attention decoder, label-smoothed cross-entropy; with
  ``ctc_weight`` > 0 also a CTC head on the shared encoder (joint CTC-attention, Watanabe et
  al. 2017). LAS (pyramidal BiLSTM + LSTM speller) and the Transformer are configurations of it,
  whose CTC head (``aux_ctc_weight`` > 0) only trains the encoder.
- ``TransducerModel``: encoder + prediction network + joint network, RNN-T loss.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from onsei.asr.recipe import FeatureConfig, ModelConfig
from onsei.data.batching import Batch, padding_mask
from onsei.decoding.ctc import ctc_greedy
from onsei.errors import ModelError
from onsei.features import FbankOptions, GlobalCMVN, LogMelFbank, SpecAugment, SpecAugmentOptions
from onsei.losses.transducer import transducer_loss
from onsei.models.decoders import build_decoder
from onsei.models.encoders import build_encoder
from onsei.models.transducer import Joint, Predictor

BLANK = 0


class FrontEnd(nn.Module):
    """Waveforms ``(B, samples)`` -> normalised log-mel features ``(B, frames, n_mels)``;
    SpecAugment in training mode only."""

    def __init__(self, config: FeatureConfig, cmvn: GlobalCMVN):
        super().__init__()
        self.fbank = LogMelFbank(FbankOptions(n_mels=config.n_mels))
        self.cmvn = cmvn
        self.spec_augment = (
            SpecAugment(
                SpecAugmentOptions(
                    config.freq_masks,
                    config.freq_width,
                    config.time_masks,
                    config.time_width_ratio,
                    config.time_warp,
                )
            )
            if config.spec_augment
            else None
        )

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        features, frames = self.fbank(waveforms, lengths)
        features = self.cmvn(features) * padding_mask(frames, features.shape[1])[..., None]
        if self.spec_augment is not None:
            features = self.spec_augment(features, frames)
        return features, frames


class ASRModel(nn.Module):
    """Base of the families: front end, encoder, and the protocol the Trainer relies on."""

    def __init__(self, config: ModelConfig, frontend: FrontEnd, vocab_size: int):
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.sos_eos = vocab_size - 1
        self.frontend = frontend
        self.encoder = build_encoder(config.encoder, frontend.fbank.options.n_mels)

    def encode(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, samples)`` -> encoder output ``(B, T', D)`` and its lengths ``(B,)``."""
        features, frames = self.frontend(waveforms, lengths)
        return self.encoder(features, frames)

    @property
    def frame_seconds(self) -> float:
        """Duration of one encoder output frame (feature hop times the time reduction)."""
        options = self.frontend.fbank.options
        return options.hop_length / options.sample_rate * self.config.encoder.subsampling

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Losses on a batch: ``{"loss": total, ...parts}``, each averaged per utterance."""
        raise NotImplementedError

    @torch.no_grad()
    def recognize(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """Greedy token ids for each utterance of ``(B, samples)`` waveforms."""
        raise NotImplementedError


def ctc_loss(
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    targets: torch.Tensor,
    target_lengths: torch.Tensor,
) -> torch.Tensor:
    """CTC loss averaged per utterance; ``log_probs`` (B, T, V), ``targets`` (B, U) padded."""
    loss = functional.ctc_loss(
        log_probs.transpose(0, 1),
        targets.clamp(min=0),
        lengths,
        target_lengths,
        blank=BLANK,
        reduction="sum",
        zero_infinity=True,
    )
    return loss / log_probs.shape[0]


class CTCModel(ASRModel):
    def __init__(self, config: ModelConfig, frontend: FrontEnd, vocab_size: int):
        super().__init__(config, frontend, vocab_size)
        self.ctc_head = nn.Linear(self.encoder.output_dim, vocab_size)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        encoded, lengths = self.encode(batch.waveforms, batch.waveform_lengths)
        log_probs = self.ctc_head(encoded).log_softmax(-1)
        loss = ctc_loss(log_probs, lengths, batch.targets, batch.target_lengths)
        return {"loss": loss, "ctc": loss.detach()}

    def ctc_log_probs(
        self, waveforms: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC posteriors ``(B, T', V)`` (natural log) and their lengths ``(B,)``."""
        encoded, encoded_lengths = self.encode(waveforms, lengths)
        return self.ctc_head(encoded).log_softmax(-1), encoded_lengths

    @torch.no_grad()
    def recognize(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        return ctc_greedy(*self.ctc_log_probs(waveforms, lengths))


class AttentionModel(ASRModel):
    """Attention encoder-decoder; a CTC head joins in when the family's CTC weight is above 0:
    in the loss and the search for joint CTC-attention (``ctc_weight``), in the loss for las
    and transformer (``aux_ctc_weight``), whose search uses it only when asked
    (``SearchOptions.ctc_weight``)."""

    def __init__(self, config: ModelConfig, frontend: FrontEnd, vocab_size: int):
        super().__init__(config, frontend, vocab_size)
        self.decoder = build_decoder(config.decoder, vocab_size, self.encoder.output_dim)
        joint = config.family == "joint_ctc_attention"
        self.ctc_weight = config.ctc_weight if joint else 0.0  # of CTC prefix scores in search
        self.loss_ctc_weight = config.ctc_weight if joint else config.aux_ctc_weight
        self.ctc_head = (
            nn.Linear(self.encoder.output_dim, vocab_size) if self.loss_ctc_weight else None
        )

    def decoder_io(self, targets: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``[sos, y1..yn]`` inputs and ``[y1..yn, eos]`` outputs (padding -1), (B, U+1)."""
        batch = targets.shape[0]
        sos = torch.full((batch, 1), self.sos_eos, dtype=torch.long, device=targets.device)
        inputs = torch.cat([sos, targets.clamp(min=0)], dim=1)
        outputs = torch.cat([targets, torch.full_like(sos, -1)], dim=1)
        outputs[torch.arange(batch, device=targets.device), lengths] = self.sos_eos
        return inputs, outputs

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        encoded, lengths = self.encode(batch.waveforms, batch.waveform_lengths)
        inputs, outputs = self.decoder_io(batch.targets, batch.target_lengths)
        logits = self.decoder(encoded, lengths, inputs)
        attention = (
            functional.cross_entropy(
                logits.reshape(-1, self.vocab_size),
                outputs.reshape(-1),
                ignore_index=-1,
                label_smoothing=self.config.label_smoothing,
                reduction="sum",
            )
            / logits.shape[0]
        )
        valid = outputs != -1
        accuracy = (logits.argmax(-1)[valid] == outputs[valid]).float().mean()
        parts = {"attention": attention.detach(), "accuracy": accuracy.detach()}
        if self.ctc_head is None:
            return {"loss": attention, **parts}
        log_probs = self.ctc_head(encoded).log_softmax(-1)
        ctc = ctc_loss(log_probs, lengths, batch.targets, batch.target_lengths)
        loss = (1 - self.loss_ctc_weight) * attention + self.loss_ctc_weight * ctc
        return {"loss": loss, "ctc": ctc.detach(), **parts}

    def ctc_log_probs_of(self, encoded: torch.Tensor) -> torch.Tensor | None:
        """CTC posteriors ``(B, T', V)`` of encoder output, or None without a CTC head."""
        if self.ctc_head is None:
            return None
        return self.ctc_head(encoded).log_softmax(-1)

    @torch.no_grad()
    def recognize(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
        """Greedy: the most likely next token until end of sentence, batched over utterances;
        at most one token per encoder frame (as the beam search's default ``max_length_ratio``),
        which also bounds the cost of a young model that does not end its sentences yet."""
        encoded, encoded_lengths = self.encode(waveforms, lengths)
        batch = encoded.shape[0]
        state = self.decoder.init_state(encoded, encoded_lengths)
        prefix = torch.full((batch, 1), self.sos_eos, dtype=torch.long, device=encoded.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=encoded.device)
        limits = encoded_lengths.clamp(min=1)
        for step in range(int(limits.max())):
            log_probs, state = self.decoder.step(prefix, state)
            log_probs[:, BLANK] = float("-inf")  # the CTC blank is never an attention output
            token = log_probs.argmax(-1)
            finished |= (token == self.sos_eos) | (step >= limits)
            prefix = torch.cat([prefix, token.masked_fill(finished, self.sos_eos)[:, None]], 1)
            if bool(finished.all()):
                break
        results = []
        for row in prefix[:, 1:].tolist():
            tokens = []
            for token in row:
                if token == self.sos_eos:
                    break
                tokens.append(token)
            results.append(tokens)
        return results


class TransducerModel(ASRModel):
    def __init__(self, config: ModelConfig, frontend: FrontEnd, vocab_size: int):
        super().__init__(config, frontend, vocab_size)
        self.predictor = Predictor(vocab_size, config.transducer, blank=BLANK)
        self.joint = Joint(
            self.encoder.output_dim, config.transducer.hidden, config.transducer, vocab_size
        )

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        encoded, lengths = self.encode(batch.waveforms, batch.waveform_lengths)
        blank = torch.full_like(batch.targets[:, :1], BLANK)
        predicted = self.predictor(torch.cat([blank, batch.targets.clamp(min=0)], dim=1))
        logits = self.joint(encoded, predicted)
        loss = transducer_loss(logits, batch.targets, lengths, batch.target_lengths, BLANK)
        return {"loss": loss, "transducer": loss.detach()}

    @torch.no_grad()
    def recognize(
        self, waveforms: torch.Tensor, lengths: torch.Tensor, max_symbols: int = 5
    ) -> list[list[int]]:
        """Time-synchronous greedy search, batched: at each frame emit the best non-blank
        symbol (at most ``max_symbols`` per frame) until blank is the best."""
        encoded, encoded_lengths = self.encode(waveforms, lengths)
        batch = encoded.shape[0]
        device = encoded.device
        state = self.predictor.init_state(batch)
        last = torch.full((batch,), BLANK, dtype=torch.long, device=device)
        predicted, state = self.predictor.step(last, state)
        results: list[list[int]] = [[] for _ in range(batch)]
        for t in range(encoded.shape[1]):
            active = t < encoded_lengths
            for _ in range(max_symbols):
                token = self.joint.step(encoded[:, t], predicted).argmax(-1)
                emit = active & (token != BLANK)
                if not bool(emit.any()):
                    break
                new_predicted, new_state = self.predictor.step(token, state)
                predicted = torch.where(emit[:, None], new_predicted, predicted)
                state = _where_state(emit, new_state, state)
                for row in emit.nonzero().flatten().tolist():
                    results[row].append(int(token[row]))
        return results


def _where_state(mask: torch.Tensor, new, old):
    """Take ``new`` recurrent state rows where ``mask`` (B,) is True: (h, c) of (L, B, H)."""
    return tuple(torch.where(mask[None, :, None], n, o) for n, o in zip(new, old, strict=True))


FAMILY_CLASSES: dict[str, type[ASRModel]] = {
    "ctc": CTCModel,
    "las": AttentionModel,
    "transformer": AttentionModel,
    "joint_ctc_attention": AttentionModel,
    "rnnt": TransducerModel,
}


def build_model(
    config: ModelConfig, features: FeatureConfig, cmvn: GlobalCMVN, vocab_size: int
) -> ASRModel:
    return FAMILY_CLASSES[config.family](config, FrontEnd(features, cmvn), vocab_size)


def load_weights(model: ASRModel, weights: dict[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(weights)``, or a ``ModelError`` naming ``source`` and the first
    differing parameters when the weights were saved by a different architecture (an older
    onsei, or a recipe edited after training)."""
    expected = model.state_dict()
    differences = {
        "missing": [name for name in expected if name not in weights],
        "unexpected": [name for name in weights if name not in expected],
        "other shape": [
            name
            for name, tensor in weights.items()
            if name in expected and tensor.shape != expected[name].shape
        ],
    }
    problems = [
        f"{label}: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"
        for label, names in differences.items()
        if names
    ]
    if problems:
        raise ModelError(
            f"{source}: the saved weights do not fit the {type(model).__name__} its recipe builds "
            f"({'; '.join(problems)}); another onsei version or recipe trained it: retrain it"
        )
    model.load_state_dict(weights)
