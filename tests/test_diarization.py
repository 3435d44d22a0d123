"""Diarization: the embedder's features, clustering, turns, DER scoring, speakers on
transcripts, and the commands, on real recordings and on voices made with espeak-ng."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import shared, speak

from onsei.cli import main
from onsei.diarization import diarize
from onsei.diarization.clustering import ClusteringOptions, cluster
from onsei.diarization.scoring import read_uem, score_diarization
from onsei.errors import OptionError
from onsei.transcript import Segment, Transcript, Turn, Word
from onsei.writers.rttm import read_rttm

SR = 16000


def test_features_are_those_the_embedder_was_trained_on():
    librosa = pytest.importorskip("librosa")
    from onsei.diarization.embedder import SpeakerEmbedder

    audio = np.random.default_rng(0).normal(0, 0.1, SR * 2).astype(np.float32)
    expected = librosa.feature.melspectrogram(
        y=audio,
        sr=SR,
        n_fft=512,
        win_length=400,
        hop_length=160,
        n_mels=40,
        window="hamming",
        center=False,
        power=2.0,
    )
    ours = SpeakerEmbedder.features(audio)
    assert ours.shape == expected.T.shape
    assert np.abs(ours - np.log10(expected.T + 1e-10)).max() < 1e-4


def _speakers(counts: list[int], seed: int = 0, spread: float = 0.25) -> tuple[np.ndarray, list]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(counts), 32))
    points, truth = [], []
    for speaker, count in enumerate(counts):
        points.append(centres[speaker] + spread * rng.normal(size=(count, 32)))
        truth += [speaker] * count
    points = np.concatenate(points)
    return points / np.linalg.norm(points, axis=1, keepdims=True), truth


@pytest.mark.parametrize("method", ["spectral", "agglomerative"])
def test_clustering_finds_the_speakers_or_takes_the_count_given(method):
    embeddings, truth = _speakers([20, 12, 8])
    options = ClusteringOptions(method=method)
    labels = cluster(embeddings, options=options)
    assert len(set(labels)) == 3
    assert all(labels[i] == labels[j] for i in range(40) for j in range(40) if truth[i] == truth[j])
    assert len(set(cluster(embeddings, num_speakers=2, options=options))) == 2
    assert len(set(cluster(embeddings, max_speakers=2, options=options))) == 2
    assert len(set(cluster(embeddings, min_speakers=4, options=options))) == 4
    assert list(cluster(embeddings[:1], options=options)) == [0]
    assert len(set(cluster(embeddings[:3], num_speakers=5, options=options))) <= 3


def test_speaker_counts_that_contradict_each_other_are_refused():
    audio = np.zeros(SR, dtype=np.float32)
    with pytest.raises(OptionError, match="min_speakers \\(3\\) is more than max_speakers"):
        diarize(audio, min_speakers=3, max_speakers=2)
    with pytest.raises(OptionError, match="not both"):
        diarize(audio, num_speakers=2, max_speakers=3)
    with pytest.raises(OptionError, match="num_speakers: must be at least 1"):
        diarize(audio, num_speakers=0)


def test_no_speech_no_turns():
    assert diarize(np.zeros(10 * SR, dtype=np.float32)) == []


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory) -> tuple[Path, list[Turn]]:
    """Two espeak-ng voices, male and female, taking turns, with the true turns. (The d-vector
    hardly tells en-us from en-gb+f4: mean cosine distance 0.36 between them, 0.33 within.)"""
    import soundfile

    from onsei.audio import load_audio

    folder = tmp_path_factory.mktemp("voices")
    lines = [
        ("en-us", "Good morning, shall we look at the budget for the next quarter?"),
        ("en-us+f3", "Yes, I have the numbers here, the costs went up by ten percent."),
        ("en-us", "That is more than we planned, what happened with the travel?"),
        ("en-us+f3", "Two conferences were added in March, and the hotel prices rose."),
        ("en-us", "Then let us cut one of them and review it again next week."),
    ]
    pieces, turns, at = [], [], 0.0
    for index, (voice, text) in enumerate(lines):
        audio = load_audio(speak(text, folder / f"{index}.wav", voice=voice))
        pieces += [audio, np.zeros(int(0.6 * SR), dtype=np.float32)]
        turns.append(Turn(at, at + len(audio) / SR, "A" if voice == "en-us" else "B"))
        at += len(audio) / SR + 0.6
    path = folder / "meeting.wav"
    soundfile.write(path, np.concatenate(pieces), SR)
    return path, turns


def test_two_synthetic_voices_are_told_apart(two_voices):
    path, truth = two_voices
    turns = diarize(path)
    assert len({t.speaker for t in turns}) == 2
    report = score_diarization({"m": truth}, {"m": turns}, collar=0.5)
    assert report.der < 0.15, report.lines()
    assert len({t.speaker for t in diarize(path, num_speakers=1)}) == 1


@pytest.mark.slow
def test_the_two_speaker_sample_and_an_ami_excerpt():
    reference = read_rttm(shared("diarization/sample/sample.rttm"))
    turns = diarize(shared("diarization/sample/sample.wav"), num_speakers=2)
    assert {t.speaker for t in turns} == {"SPEAKER_1", "SPEAKER_2"}
    report = score_diarization(reference, {"sample": turns})
    # A guard, not a goal: 49.7% measured (one speaker for all speech scores 51.3%); the
    # d-vector confuses these two voices (benchmarks/RESULTS.md, diarization).
    assert report.der < 0.52, report.lines()
    ami = read_rttm(shared("diarization/ami/debug.development.rttm"))
    uem = read_uem(shared("diarization/ami/debug.development.uem"))
    hypothesis = {"dev00": diarize(shared("diarization/ami/dev00.wav"))}
    assert score_diarization({"dev00": ami["dev00"]}, hypothesis, uem=uem).der < 0.6


def test_der_of_perfect_empty_and_swapped_hypotheses():
    reference = {"f": [Turn(0, 2, "a"), Turn(2, 5, "b")]}
    assert score_diarization(reference, reference).der == 0
    assert score_diarization(reference, {}).der == 1.0
    swapped = {"f": [Turn(0, 2, "x"), Turn(2, 5, "x")]}
    report = score_diarization(reference, swapped)
    assert report.confusion == pytest.approx(2.0) and report.der == pytest.approx(0.4)
    shifted = {"f": [Turn(0, 2.1, "a"), Turn(2.1, 5, "b")]}
    assert score_diarization(reference, shifted, collar=0.5).der == 0


def test_assign_speakers_labels_words_and_splits_segments():
    words = [Word(i * 0.5, i * 0.5 + 0.4, f" w{i}", 0.9) for i in range(6)]
    transcript = Transcript(
        [Segment(0, 0.0, 3.0, " w0 w1 w2 w3 w4 w5", words=words), Segment(1, 4.0, 5.0, " hi")]
    )
    turns = [
        Turn(0.0, 1.45, "SPEAKER_1"),
        Turn(1.45, 3.0, "SPEAKER_2"),
        Turn(3.9, 5.0, "SPEAKER_1"),
    ]
    transcript.assign_speakers(turns)
    assert [s.speaker for s in transcript.segments] == ["SPEAKER_1", "SPEAKER_2", "SPEAKER_1"]
    assert [s.text for s in transcript.segments] == [" w0 w1 w2", " w3 w4 w5", " hi"]
    assert [s.id for s in transcript.segments] == [0, 1, 2]
    assert [w.speaker for w in transcript.words] == ["SPEAKER_1"] * 3 + ["SPEAKER_2"] * 3
    assert Transcript([Segment(0, 9.0, 9.5, " x")]).assign_speakers(turns).segments[0].speaker == (
        "SPEAKER_1"  # nobody talks then: the nearest turn's speaker
    )


def test_diarize_and_score_from_the_command_line(two_voices, tmp_path, capsys):
    path, truth = two_voices
    assert main(["diarize", str(path), "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 speakers" in out and "SPEAKER_2" in out
    hypothesis = read_rttm(tmp_path / "meeting.rttm")
    assert set(hypothesis) == {"meeting"}
    reference = tmp_path / "reference.rttm"
    reference.write_text(
        "".join(
            f"SPEAKER meeting 1 {t.start:.3f} {t.duration:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n"
            for t in truth
        )
    )
    capsys.readouterr()
    arguments = [str(reference), str(tmp_path / "meeting.rttm"), "--collar", "0.5"]
    assert main(["score-diarization", *arguments]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("DER ") and lines[0].endswith("%")
    assert float(lines[0][4:-1]) < 15
    assert "missed speech" in lines[1]


def test_diarization_bad_input_is_one_line(tmp_path, capsys):
    silence = tmp_path / "silence.wav"
    import soundfile

    soundfile.write(silence, np.zeros(SR, dtype=np.float32), SR)
    assert main(["diarize", str(silence), "-o", str(tmp_path)]) == 0
    assert "(no speech found)" in capsys.readouterr().out
    assert (tmp_path / "silence.rttm").read_text() == ""
    bad = tmp_path / "bad.rttm"
    bad.write_text("SPEAKER f 1 zero 1.0 <NA> <NA> a <NA> <NA>\n")
    assert main(["score-diarization", str(bad), str(bad)]) == 2
    error = capsys.readouterr().err
    assert f"{bad}:1: not an RTTM SPEAKER line" in error and error.count("\n") == 1
    assert main(["diarize", str(silence), "--min_speakers", "3", "--max_speakers", "2"]) == 2
    assert "is more than max_speakers" in capsys.readouterr().err
    assert main(["transcribe", str(silence), "--num_speakers", "2"]) == 2
    assert "--num_speakers requires --diarize" in capsys.readouterr().err


@pytest.mark.slow
def test_transcribe_with_speakers(two_voices, tmp_path):
    path, _ = two_voices
    output = ["-o", str(tmp_path), "-f", "all", "--verbose", "False"]
    assert main(["transcribe", str(path), "--model", "tiny.en", "--diarize", *output]) == 0
    data = json.loads((tmp_path / "meeting.json").read_text())
    speakers = {s["speaker"] for s in data["segments"]}
    assert speakers == {"SPEAKER_1", "SPEAKER_2"}
    assert all(w["speaker"] in speakers for s in data["segments"] for w in s["words"])
    assert "[SPEAKER_1]" in (tmp_path / "meeting.srt").read_text()
    assert "[SPEAKER_2]" in (tmp_path / "meeting.vtt").read_text()
    rttm = read_rttm(tmp_path / "meeting.rttm")["meeting"]
    assert {t.speaker for t in rttm} == speakers
