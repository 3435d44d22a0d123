"""Duration-bucketed batching, the speech dataset and padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from onsei.data.batching import (
    BucketBatchSampler,
    SpeechDataset,
    collate,
    duration_batches,
    padding_mask,
)
from onsei.data.manifest import Utterance, read_manifest, write_manifest
from onsei.errors import AudioError


def test_duration_batches_respect_the_padded_cap():
    rng = np.random.default_rng(0)
    durations = list(rng.uniform(0.5, 6.0, size=300)) + [25.0]
    batches = duration_batches(durations, max_batch_seconds=20.0)
    assert sorted(i for b in batches for i in b) == list(range(301))
    for batch in batches:
        longest = max(durations[i] for i in batch)
        assert len(batch) * longest <= 20.0 or len(batch) == 1
    assert [300] in batches  # longer than the cap: alone


def test_sampler_is_deterministic_resumable_and_shards():
    durations = [float(i % 7 + 1) for i in range(100)]
    sampler = BucketBatchSampler(durations, 12.0, seed=3)
    sampler.set_epoch(2)
    epoch = list(sampler)
    sampler.set_epoch(2)
    assert list(sampler) == epoch
    sampler.set_epoch(3)
    assert list(sampler) != epoch

    sampler.set_epoch(2)
    iterator = iter(sampler)
    first = [next(iterator) for _ in range(4)]
    state = sampler.state_dict()
    resumed = BucketBatchSampler(durations, 12.0, seed=3)
    resumed.load_state_dict(state)
    assert first + list(resumed) == epoch

    ranks = [BucketBatchSampler(durations, 12.0, seed=3, rank=r, world_size=2) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(2)
    shards = [list(r) for r in ranks]
    assert len(shards[0]) == len(shards[1]) == len(epoch)
    for whole, first, second in zip(epoch, *shards, strict=True):  # an update: one process's batch
        if len(whole) == 1:
            assert first == second == whole
        else:
            assert sorted(first + second) == sorted(whole) and not set(first) & set(second)


def _manifest(tmp_path: Path) -> list[Utterance]:
    utterances = []
    for i, seconds in enumerate((0.5, 1.0)):
        path = tmp_path / f"u{i}.wav"
        soundfile.write(path, 0.1 * np.ones(int(seconds * 16000), np.float32), 16000)
        utterances.append(Utterance(f"u{i}", str(path), seconds, "AB" * (i + 1)))
    utterances.append(Utterance("broken", str(tmp_path / "missing.wav"), 1.0, "A"))
    return read_manifest(write_manifest(tmp_path / "m.jsonl", utterances))


def test_dataset_and_collate(tmp_path: Path):
    utterances = _manifest(tmp_path)
    dataset = SpeechDataset(utterances, encode=lambda t: [ord(c) - 63 for c in t])
    batch = collate([dataset[0], dataset[1]])
    assert batch.ids == ["u0", "u1"]
    assert batch.waveforms.shape == (2, 16000) and batch.waveform_lengths.tolist() == [8000, 16000]
    assert torch.all(batch.waveforms[0, 8000:] == 0)
    assert batch.targets.tolist() == [[2, 3, -1, -1], [2, 3, 2, 3]]
    assert batch.target_lengths.tolist() == [2, 4]
    with pytest.raises(AudioError, match="manifest line 3, utterance broken"):
        dataset[2]


def test_speed_perturbation_in_the_dataset(tmp_path: Path):
    utterances = _manifest(tmp_path)[:2]
    dataset = SpeechDataset(utterances, encode=lambda t: [1], speeds=(0.9, 1.1))
    lengths = {len(dataset[1][1]) for _ in range(20)}
    assert len(lengths) == 2
    assert all(min(abs(n - 16000 / 0.9), abs(n - 16000 / 1.1)) < 3 for n in lengths)


def test_padding_mask():
    mask = padding_mask(torch.tensor([1, 3]))
    assert mask.tolist() == [[True, False, False], [True, True, True]]
