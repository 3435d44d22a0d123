"""Log-mel filterbanks, normalisation, SpecAugment and speed perturbation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from onsei.audio import load_audio
from onsei.features import (
    FbankOptions,
    GlobalCMVN,
    LogMelFbank,
    SpecAugment,
    SpecAugmentOptions,
    hz_to_mel,
    log_mel_spectrogram,
    mel_filterbank,
    speed_perturb,
    time_warp,
)


def test_mel_filterbank_shape_and_triangles():
    bank = mel_filterbank(80, 512, 16000, f_min=20.0)
    assert bank.shape == (257, 80)
    assert torch.all(bank >= 0) and torch.all(bank.max(0).values > 0.4)  # no empty band
    peaks = bank.argmax(0) * 16000 / 512
    assert torch.all(peaks[1:] >= peaks[:-1])  # centres rise with the band index
    mel_peaks = hz_to_mel(peaks[10:].double())
    spacing = mel_peaks[1:] - mel_peaks[:-1]
    assert spacing.std() / spacing.mean() < 0.35  # evenly spaced on the mel scale


def test_a_tone_lights_the_band_that_holds_it():
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * torch.pi * 1000 * t)[None]
    features = log_mel_spectrogram(tone)
    assert features.shape == (1, 101, 80)
    bank = mel_filterbank(80, 512, 16000, f_min=20.0)
    expected_band = int(bank[round(1000 * 512 / 16000)].argmax())
    assert int(features[0, 50].argmax()) == expected_band


def test_padding_does_not_change_features_and_is_zeroed(jfk_flac: Path):
    audio = torch.from_numpy(load_audio(jfk_flac))[:32000]
    batch = torch.zeros(2, 48000)
    batch[0, :32000] = audio
    batch[1] = torch.from_numpy(load_audio(jfk_flac))[:48000]
    features, frames = LogMelFbank()(batch, torch.tensor([32000, 48000]))
    assert frames.tolist() == [201, 301]
    alone = log_mel_spectrogram(audio[None])[0]
    torch.testing.assert_close(features[0, :195], alone[:195])  # away from the padded edge
    assert torch.all(features[0, 201:] == 0)


def test_global_cmvn_estimate_apply_save_load(tmp_path: Path):
    rng = torch.Generator().manual_seed(0)
    matrices = [3 + 2 * torch.randn(100 + i, 4, generator=rng) for i in range(5)]
    cmvn = GlobalCMVN.estimate(matrices)
    normalised = cmvn(torch.cat(matrices))
    torch.testing.assert_close(normalised.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(normalised.std(0, unbiased=False), torch.ones(4), atol=1e-4, rtol=0)
    loaded = GlobalCMVN.load(cmvn.save(tmp_path / "cmvn.json"))
    torch.testing.assert_close(loaded.mean, cmvn.mean)
    with pytest.raises(ValueError):
        GlobalCMVN.estimate([])


def test_spec_augment_masks_only_in_training():
    torch.manual_seed(0)
    features = torch.ones(3, 200, 80)
    lengths = torch.tensor([200, 150, 100])
    augment = SpecAugment(
        SpecAugmentOptions(
            freq_masks=2, freq_width=10, time_masks=2, time_width_ratio=0.1, time_warp=5
        )
    )
    augment.eval()
    assert torch.equal(augment(features, lengths), features)
    augment.train()
    masked = augment(features, lengths)
    assert masked.shape == features.shape and torch.equal(features, torch.ones(3, 200, 80))
    zeros = (masked == 0).float()
    assert zeros.sum() > 0
    assert torch.all(masked[1, 150:] == 1)  # padding is left alone
    assert zeros[0].mean() < 0.5


def test_time_warp_keeps_shape_and_endpoints():
    torch.manual_seed(1)
    ramp = torch.arange(100, dtype=torch.float32)[:, None].repeat(1, 3)
    warped = time_warp(ramp, 10)
    assert warped.shape == ramp.shape
    assert torch.all(warped[1:, 0] >= warped[:-1, 0] - 1e-4)  # still monotonic


def test_speed_perturbation_changes_length_and_pitch():
    rate = 16000
    tone = np.sin(2 * np.pi * 500 * np.arange(rate) / rate).astype(np.float32)
    faster = speed_perturb(tone, 1.1)
    assert abs(len(faster) - rate / 1.1) < 2
    spectrum = np.abs(np.fft.rfft(faster[1000:-1000]))
    assert abs(np.argmax(spectrum) * rate / len(faster[1000:-1000]) - 550) < 3
    assert speed_perturb(tone, 1.0) is tone


def test_fbank_options_feed_the_module():
    module = LogMelFbank(FbankOptions(n_mels=40))
    features, _ = module(torch.zeros(1, 1600), torch.tensor([1600]))
    assert features.shape == (1, 11, 40)
