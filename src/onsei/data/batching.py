"""Length-bucketed batches with a cap on total (padded) audio per batch, and a dataset that
loads, perturbs and tokenizes utterances from a manifest."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from onsei.audio import SAMPLE_RATE, load_audio
from onsei.data.manifest import Utterance
from onsei.errors import AudioError
from onsei.features import speed_perturb


def duration_batches(durations: Sequence[float], max_batch_seconds: float) -> list[list[int]]:
    """Group utterance indices, shortest first, so that ``len(batch) * longest <= max``.

    Counting padded seconds (every item as long as the longest) bounds the memory of a batch.
    An utterance longer than the cap gets a batch of its own.
    """
    order = sorted(range(len(durations)), key=lambda i: durations[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = durations[index]  # sorted: the newcomer is the longest so far
        if current and (len(current) + 1) * longest > max_batch_seconds:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


class BucketBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Yields the batches of ``duration_batches`` in a shuffled order that depends only on
    ``seed`` and the epoch.

    ``max_batch_seconds`` is the batch of one update whatever the number of processes: with
    ``world_size`` > 1 every rank takes its share of each batch (items ``rank::world_size``), so
    a torchrun run makes the same updates on the same data as a single process. A batch with
    fewer items than ranks is given whole to the ranks left without an item; DDP's average of
    identical gradients is that batch's gradient.

    ``state_dict``/``load_state_dict`` record the epoch and how many batches were consumed, so
    a resumed run continues with the next batch of the same epoch.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        *,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.batches = duration_batches(durations, max_batch_seconds)
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.consumed = 0

    def _epoch_batches(self) -> list[list[int]]:
        batches = list(self.batches)
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(batches)
        if self.world_size == 1:
            return batches
        return [batch[self.rank :: self.world_size] or batch for batch in batches]

    def __len__(self) -> int:
        return len(self._epoch_batches())

    def __iter__(self) -> Iterator[list[int]]:
        batches = self._epoch_batches()
        while self.consumed < len(batches):
            batch = batches[self.consumed]
            self.consumed += 1
            yield batch

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its first batch."""
        self.epoch = epoch
        self.consumed = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = state["epoch"]
        self.consumed = state["consumed"]


@dataclass
class Batch:
    """Padded waveforms and token targets; padding beyond each length is zero / -1."""

    ids: list[str]
    waveforms: torch.Tensor
    """(batch, samples) float32 at 16 kHz."""
    waveform_lengths: torch.Tensor
    """(batch,) int64."""
    targets: torch.Tensor
    """(batch, max_tokens) int64, padded with -1."""
    target_lengths: torch.Tensor
    """(batch,) int64."""

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            self.ids,
            self.waveforms.to(device),
            self.waveform_lengths.to(device),
            self.targets.to(device),
            self.target_lengths.to(device),
        )


class SpeechDataset(torch.utils.data.Dataset):
    """Utterances of a manifest -> ``(id, waveform (samples,), token ids (tokens,))``.

    ``speeds`` lists speed-perturbation factors drawn uniformly per item (training only), from
    torch's generator: seeded by the trainer in the main process, and afresh each epoch in
    DataLoader workers, so each epoch draws new speeds, reproducibly.
    An unreadable file raises ``AudioError`` naming the utterance; the training loop decides
    whether that stops training or skips the utterance.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        encode: Callable[[str], list[int]],
        speeds: Sequence[float] = (1.0,),
    ):
        self.utterances = list(utterances)
        self.encode = encode
        self.speeds = tuple(speeds)

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[str, torch.Tensor, torch.Tensor]:
        utterance = self.utterances[index]
        try:
            audio = load_audio(utterance.audio)
        except AudioError as error:
            where = f"manifest line {utterance.line}, " if utterance.line else ""
            raise AudioError(f"{where}utterance {utterance.id}: {error}") from None
        speed = self.speeds[int(torch.randint(len(self.speeds), ()))]
        audio = speed_perturb(audio, speed, SAMPLE_RATE)
        tokens = torch.tensor(self.encode(utterance.text), dtype=torch.long)
        return utterance.id, torch.from_numpy(audio.copy()), tokens


def collate(items: Sequence[tuple[str, torch.Tensor, torch.Tensor]]) -> Batch:
    """Pad a list of dataset items into a ``Batch``."""
    ids = [item[0] for item in items]
    waveform_lengths = torch.tensor([len(item[1]) for item in items], dtype=torch.long)
    target_lengths = torch.tensor([len(item[2]) for item in items], dtype=torch.long)
    waveforms = torch.zeros(len(items), int(waveform_lengths.max()))
    targets = torch.full((len(items), max(1, int(target_lengths.max()))), -1, dtype=torch.long)
    for row, (_, audio, tokens) in enumerate(items):
        waveforms[row, : len(audio)] = audio
        targets[row, : len(tokens)] = tokens
    return Batch(ids, waveforms, waveform_lengths, targets, target_lengths)


def padding_mask(lengths: torch.Tensor, max_length: int | None = None) -> torch.Tensor:
    """``(batch,)`` lengths -> ``(batch, max_length)`` bool mask, True on real positions."""
    max_length = int(lengths.max()) if max_length is None else max_length
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]
