"""Counting voices: conversations simulated from real speakers, the counting head on Whisper's
encoder, its training loop, and what it says of real meetings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import shared

from onsei.audio import load_audio
from onsei.diarization.counting import CLASSES, CountHead
from onsei.diarization.simulate import (
    ConversationOptions,
    by_speaker,
    conversation,
    frame_counts,
    solo_clips,
    speech_clips,
)
from onsei.transcript import Turn

SR = 16000


@pytest.fixture(scope="module")
def an4_speakers():
    """Three utterances each of four AN4 speakers, with their speech found."""
    from onsei.data.manifest import read_manifest

    utterances = read_manifest(shared("an4/train.jsonl"))
    chosen, seen = [], {}
    for utterance in utterances:
        if seen.get(utterance.speaker, 0) < 3 and (len(seen) < 4 or utterance.speaker in seen):
            seen[utterance.speaker] = seen.get(utterance.speaker, 0) + 1
            chosen.append(utterance)
    clips = speech_clips([load_audio(u.audio) for u in chosen], [u.speaker for u in chosen])
    return by_speaker(clips)


def test_frame_counts_are_the_voices_at_each_frame_centre():
    one = np.zeros(SR, bool)
    two = np.zeros(SR, bool)
    one[: SR // 2] = True
    two[SR // 4 :] = True
    counts = frame_counts([one, two], SR, 0.02)
    assert len(counts) == 50
    assert counts[:12].tolist() == [1] * 12  # 0 to 0.24 s: one voice
    assert counts[13:25].tolist() == [2] * 12  # 0.26 to 0.5 s: both
    assert counts[26:].tolist() == [1] * 24
    assert frame_counts([], SR, 0.02).tolist() == [0] * 50


def test_simulated_conversations_have_turns_pauses_and_overlaps(an4_speakers):
    rng = np.random.default_rng(0)
    options = ConversationOptions(seconds=20.0, reverb_probability=0.0, snr_db=(60.0, 60.0))
    seen = np.zeros(CLASSES + 2)
    for _ in range(6):
        audio, counts = conversation(an4_speakers, rng, options)
        assert audio.dtype == np.float32 and len(audio) == 20 * SR
        assert len(counts) == 1000 and np.abs(audio).max() <= 0.9 + 1e-6
        seen[: counts.max() + 1] += np.bincount(counts)
        # labelled speech is loud, labelled silence is not (noise 60 dB below the speech)
        frames = audio[: len(counts) * 320].reshape(len(counts), 320)
        energy = (frames**2).mean(axis=1)
        if (counts == 0).any() and (counts > 0).any():
            assert np.median(energy[counts > 0]) > 100 * np.median(energy[counts == 0])
    assert seen[0] > 0 and seen[1] > 0 and seen[2] > 0  # pauses, one voice, overlaps


def test_solo_clips_are_the_stretches_where_one_speaker_talks_alone():
    audio = np.arange(10 * SR, dtype=np.float32)
    turns = [Turn(0.0, 4.0, "A"), Turn(3.0, 6.0, "B"), Turn(6.2, 6.5, "A"), Turn(7.0, 9.0, "A")]
    clips = solo_clips(audio, turns, min_seconds=0.5)
    found = sorted((c.speaker, c.audio[0] / SR, len(c.audio) / SR) for c in clips)
    assert found == [("A", 0.0, 3.0), ("A", 7.0, 2.0), ("B", 4.0, 2.0)]  # 6.2-6.5 s is short
    assert all(c.speech == [(0, len(c.audio))] for c in clips)


def test_a_room_response_starts_with_the_direct_path_and_decays():
    from onsei.diarization.simulate import room_response

    response = room_response(np.random.default_rng(0), rt60=0.4)
    assert len(response) == int(0.4 * SR) and response[0] == 1.0
    early = np.abs(response[100:1600]).mean()
    late = np.abs(response[-1600:]).mean()
    assert late < early / 100  # 60 dB over rt60


def test_the_count_head_saves_in_half_precision_and_loads_back(tmp_path):
    torch.manual_seed(0)
    head = CountHead(dim=16, hidden=8, layers=1).eval()
    head.mean.normal_()
    head.std.uniform_(0.5, 2.0)
    head.save(tmp_path / "head.npz")
    loaded = CountHead.load(tmp_path / "head.npz")
    assert loaded.config == {"dim": 16, "hidden": 8, "layers": 1}
    x = torch.randn(2, 30, 16)
    with torch.inference_mode():
        assert torch.allclose(head(x).softmax(-1), loaded(x).softmax(-1), atol=2e-3)
        assert loaded(x).shape == (2, 30, CLASSES)


def test_training_learns_to_count_from_the_features(one_torch_thread):
    from onsei.diarization.train_counter import Example, frame_scores, train

    # features in which the count is plain to see: the head must learn to read it
    rng = np.random.default_rng(0)

    def example() -> Example:
        counts = np.repeat(rng.integers(0, CLASSES, size=20), 10)
        features = rng.normal(size=(200, 8)).astype(np.float32)
        features[:, 0] += 3 * counts
        return Example(features, counts)

    head = train(
        [example() for _ in range(16)],
        [example() for _ in range(4)],
        epochs=12,
        chunk_frames=100,
        batch_size=8,
        learning_rate=1e-2,
    )
    assert frame_scores(head, [example() for _ in range(4)])["accuracy"] > 0.9


def test_out_of_fold_groups_are_meetings_with_no_speaker_in_common():
    from onsei.diarization.train_counter import meeting_groups
    from onsei.writers.rttm import read_rttm

    folder = shared("diarization/ami")
    groups = meeting_groups(folder)
    assert sorted(u for g in groups for u in g) == [f"trn0{i}" for i in range(10)]
    assert ["trn07", "trn08"] in groups  # the same four people
    turns = read_rttm(folder / "debug.train.rttm")
    voices = [{t.speaker for u in group for t in turns[u]} for group in groups]
    assert all(not a & b for i, a in enumerate(voices) for b in voices[i + 1 :])


@pytest.mark.slow
def test_meeting_conversations_are_made_of_the_train_excerpts_voices(one_torch_thread):
    from onsei.diarization.counting import FRAME_SECONDS, _encoder
    from onsei.diarization.train_counter import meeting_conversations

    folder = shared("diarization/ami")
    others = [f"trn0{i}" for i in range(1, 10)]  # trn00 only: three speakers
    examples = meeting_conversations(folder, 3, _encoder(), seed=1, leave_out=others)
    for example in examples:
        frames = len(example.counts)
        assert 8 / FRAME_SECONDS - 1 <= frames <= 30 / FRAME_SECONDS  # 8 to 30 s
        assert example.features.shape == (frames, 384)
        assert example.counts.max() <= CLASSES - 1
    counts = np.concatenate([e.counts for e in examples])
    assert np.mean(counts >= 1) > 0.5 and np.any(counts >= 2)  # talk, some of it overlapped


@pytest.mark.slow
def test_the_shipped_counter_hears_overlap_in_a_real_meeting():
    from onsei.diarization.counting import FRAME_SECONDS, speaker_counts
    from onsei.writers.rttm import read_rttm

    folder = shared("diarization/ami")
    audio = load_audio(folder / "tst00.wav")  # four people, half the time two or more at once
    turns = read_rttm(folder / "debug.test.rttm")["tst00"]
    probabilities = speaker_counts(audio)
    assert probabilities.shape == (1500, CLASSES)  # 30 s (and a sample) in 20-ms frames
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    times = (np.arange(len(probabilities)) + 0.5) * FRAME_SECONDS
    truth = sum(((times >= t.start) & (times < t.end)).astype(int) for t in turns)
    guess = probabilities.argmax(axis=1)
    overlap = (truth >= 2) & (guess >= 2)
    assert overlap.sum() / max(1, (guess >= 2).sum()) > 0.6  # precision
    assert overlap.sum() / max(1, (truth >= 2).sum()) > 0.4  # recall
    speech = (truth >= 1) & (guess >= 1)
    assert speech.sum() / (truth >= 1).sum() > 0.85


def test_a_counter_of_ones_own_takes_the_place_of_the_bundled_one(tmp_path):
    from onsei.diarization.counting import load_counter, speaker_counts
    from onsei.errors import ModelError

    audio = np.random.default_rng(0).normal(scale=0.1, size=SR).astype(np.float32)
    copy = tmp_path / "copy.npz"
    load_counter().save(copy)
    assert np.array_equal(speaker_counts(audio, copy), speaker_counts(audio))
    torch.manual_seed(0)
    other = tmp_path / "other.npz"
    CountHead().save(other)  # untrained
    assert not np.allclose(speaker_counts(audio, other), speaker_counts(audio), atol=0.05)
    bad = tmp_path / "bad.npz"
    bad.write_text("not weights")
    with pytest.raises(ModelError, match="not a voice counter written by"):
        speaker_counts(audio, bad)


def test_overlapped_frames_get_the_speakers_nearest_in_time():
    from onsei.diarization.overlap import overlapping_turns

    # speaker 0 talks, then 1, then 2; two voices are heard around the change from 0 to 1,
    # three at the end of 1's turn
    labels = np.array([0] * 10 + [1] * 10 + [-1] * 5 + [2] * 10)
    voices = np.ones(len(labels), int)
    voices[8:12] = 2
    voices[18:20] = 3
    voices[20:25] = 2  # nobody speaks there: nothing to add
    turns = overlapping_turns(labels, voices, 0.1, min_seconds=0.0)
    spans = sorted((t.speaker, round(t.start, 1), round(t.end, 1)) for t in turns)
    assert spans == [
        ("SPEAKER_1", 1.0, 1.2),  # frames 10-11 (speaker 1's) also have 0, just before
        ("SPEAKER_1", 1.8, 2.0),  # and 18-19, with 2 further on
        ("SPEAKER_2", 0.8, 1.0),  # frames 8-9 (speaker 0's) also have 1, just after
        ("SPEAKER_3", 1.8, 2.0),
    ]
    assert overlapping_turns(labels, voices, 0.1, min_seconds=0.25) == []
    assert overlapping_turns(np.zeros(10, int), np.full(10, 2), 0.1, 0.0) == []  # one speaker


def test_overlap_long_enough_sets_the_least_number_of_speakers():
    from onsei.diarization.overlap import least_speakers

    voices = np.array([1] * 100 + [2] * 60 + [3] * 30)
    assert least_speakers(voices, 0.02, seconds=0.5) == 3  # 0.6 s of three voices
    assert least_speakers(voices, 0.02, seconds=1.0) == 2  # 1.8 s of two or more
    assert least_speakers(voices, 0.02, seconds=2.0) == 1
    assert least_speakers(np.zeros(0, int), 0.02, seconds=1.0) == 1


def _windows(groups: list[int], voices: np.ndarray, speech_frames: int):
    """Speaker windows every 0.4 s over one region of speech, each window's vector that of
    its group (near-orthogonal groups, a little noise), with the voices counted."""
    from onsei.diarization.pipeline import SpeakerWindows

    rng = np.random.default_rng(0)
    basis = np.eye(256)[: max(groups) + 1]
    embeddings = basis[groups] + 0.05 * rng.normal(size=(len(groups), 256))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    centres = 20 + 40 * np.arange(len(groups), dtype=float)
    return SpeakerWindows(
        [(0, speech_frames)], centres, np.zeros(len(groups), int), embeddings, voices
    )


def test_diarization_gives_overlapped_speech_its_other_speaker():
    from onsei.diarization.pipeline import DiarizationOptions, speaker_turns

    voices = np.ones(400, int)
    voices[150:170] = 2  # 0.2 s of two voices around the change of speaker at 1.6 s
    windows = _windows([0] * 4 + [1] * 6, voices, 400)
    turns = speaker_turns(windows, options=DiarizationOptions())
    spans = {t.speaker: (round(t.start, 2), round(t.end, 2)) for t in turns}
    assert len(turns) == 2 and spans == {"SPEAKER_1": (0.0, 1.7), "SPEAKER_2": (1.5, 4.0)}
    single = speaker_turns(windows, options=DiarizationOptions(overlap=False))
    assert [(t.start, t.end) for t in single] == [(0.0, 1.6), (1.6, 4.0)]


def test_voices_heard_set_the_least_speakers_within_the_bounds_given():
    from onsei.diarization.pipeline import DiarizationOptions, speaker_turns

    options = DiarizationOptions()
    voices = np.ones(800, int)
    voices[100:400] = 2  # 3 s of two voices: at least two speakers
    one_voice = _windows([0] * 20, voices, 800)
    assert len({t.speaker for t in speaker_turns(one_voice, options=options)}) == 2
    assert len({t.speaker for t in speaker_turns(one_voice, max_speakers=1)}) == 1
    assert len({t.speaker for t in speaker_turns(one_voice, min_speakers=3)}) == 3
    outside = np.ones(1600, int)
    outside[800:] = 2  # what the counter hears outside the speech found does not count
    alone = _windows([0] * 20, outside, 800)
    assert len({t.speaker for t in speaker_turns(alone, options=options)}) == 1


@pytest.mark.slow
def test_one_reader_is_one_speaker():
    import json

    from onsei.diarization import diarize

    manifest = shared("clips/manifest.jsonl")
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    pause = np.zeros(SR // 2, np.float32)
    audio = np.concatenate(
        [
            np.concatenate([load_audio(manifest.parent / row["audio"]), pause])
            for row in rows
            if row["id"].startswith("librispeech-1089-")  # one LibriSpeech reader, 23 s
        ]
    )
    assert len({t.speaker for t in diarize(audio)}) == 1
