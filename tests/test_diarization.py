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


@pytest.fixture(scope="module")
def resemblyzer():
    """resemblyzer itself (with librosa), to compare with; its import needs webrtcvad, which is
    never installed (only its ``trim_long_silences`` uses it): a stand-in while it imports."""
    pytest.importorskip("librosa")
    import importlib.util
    import sys
    import types
    import warnings

    if importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("needs resemblyzer (pip install --no-deps resemblyzer==0.1.4)")
    with pytest.MonkeyPatch.context() as patch:
        if importlib.util.find_spec("webrtcvad") is None:
            patch.setitem(sys.modules, "webrtcvad", types.ModuleType("webrtcvad"))
        with warnings.catch_warnings():  # its scipy.ndimage.morphology import
            warnings.simplefilter("ignore", DeprecationWarning)
            import resemblyzer

        yield resemblyzer


def test_ge2e_features_are_resemblyzers(resemblyzer):
    from onsei.diarization.ge2e import GE2EEmbedder, normalize_volume

    rng = np.random.default_rng(0)
    audio = (rng.normal(0, 0.1, SR * 2 + 37) * np.linspace(0, 1, SR * 2 + 37)).astype(np.float32)
    expected = resemblyzer.wav_to_mel_spectrogram(audio)
    ours = GE2EEmbedder.features(audio)
    assert ours.shape == (expected.shape[0], 41)
    assert np.abs(ours[:, :40] - expected).max() < 1e-5 * expected.max()
    squares = [np.mean(audio[i * 160 : (i + 1) * 160] ** 2) for i in range(10)]
    assert np.allclose(ours[:10, 40], squares)
    for scale in (1.0, 0.01, 0.0):
        quiet = audio * np.float32(scale)
        if scale:
            reference = resemblyzer.normalize_volume(quiet, -30, increase_only=True)
            assert np.allclose(normalize_volume(quiet), reference, rtol=1e-5)
        else:
            assert not normalize_volume(quiet).any()  # silence stays silence (not NaN)


def test_ge2e_features_of_a_long_recording_are_computed_in_blocks(monkeypatch):
    from onsei.diarization import ge2e

    audio = np.random.default_rng(0).normal(0, 0.1, SR * 2 + 37).astype(np.float32)
    whole = ge2e.GE2EEmbedder.features(audio)  # 201 frames: one block
    monkeypatch.setattr(ge2e, "_CHUNK", 50)  # as a recording of over 82 s is: five blocks
    blocks = ge2e.GE2EEmbedder.features(audio)
    assert blocks.shape == whole.shape == (201, 41)
    assert np.allclose(blocks, whole)


def test_ge2e_encoder_is_resemblyzers(resemblyzer):
    """The same vectors as resemblyzer's VoiceEncoder, given each window's audio normalised to
    -30 dBFS; a window too short or past the end is zero-padded."""
    import torch

    from onsei.audio import load_audio
    from onsei.diarization.ge2e import GE2EEmbedder

    audio = load_audio(shared("diarization/sample/sample.wav"))[: 6 * SR] * np.float32(0.05)
    ours = GE2EEmbedder(window_frames=120)
    features = ours.features(audio)
    starts = [0, 150, 333, len(features) - 60]
    windows = []
    for s in starts:
        segment = audio[s * 160 : (s + 120) * 160]
        loudest = np.argmax(np.abs(segment))
        louder = resemblyzer.normalize_volume(segment, -30, increase_only=True)
        window = np.zeros((120, 40), np.float32)
        window[: len(features) - s] = features[s : s + 120, :40]
        windows.append(window * (louder[loudest] / segment[loudest]) ** 2)
    encoder = resemblyzer.VoiceEncoder("cpu", verbose=False)
    with torch.no_grad():
        expected = encoder(torch.from_numpy(np.stack(windows))).numpy()
    vectors = ours.embed(features, starts)
    assert vectors.shape == (4, 256)
    assert np.abs(vectors[:3] - expected[:3]).max() < 1e-4
    assert vectors[3] @ expected[3] > 0.999  # the last 0.6 s: its volume within a frame
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert ours.embed(features, []).shape == (0, 256)


def test_ge2e_needs_no_resemblyzer_import_and_says_how_to_install(monkeypatch):
    import importlib.util
    import subprocess
    import sys

    from onsei.diarization import ge2e
    from onsei.errors import ModelError

    code = (
        "import sys; from onsei.diarization.ge2e import GE2EEmbedder; GE2EEmbedder(); "
        "print(sorted({'resemblyzer', 'librosa', 'webrtcvad'} & set(sys.modules)))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "[]", run.stderr
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(ModelError, match="pip install --no-deps resemblyzer==0.1.4"):
        ge2e.weights_path()


def test_embedder_options_are_checked():
    from onsei.diarization import DiarizationOptions

    with pytest.raises(OptionError, match="embedder: expected one of ge2e, voicefilter"):
        diarize(np.zeros(SR, np.float32), options=DiarizationOptions(embedder="x"))
    with pytest.raises(OptionError, match="0.8-s windows only"):
        DiarizationOptions(embedder="voicefilter", window_seconds=1.2).validate()
    assert DiarizationOptions(embedder="voicefilter").window_frames() == 80
    assert DiarizationOptions(window_seconds=1.25).window_frames() == 125


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


@pytest.mark.parametrize("each", [2, 3, 4, 5, 8])
def test_spectral_clustering_of_a_few_windows_of_two_voices(each):
    embeddings, truth = _speakers([each, each], seed=each)
    labels = cluster(embeddings, options=ClusteringOptions(method="spectral"))
    assert list(labels) == truth  # (with one or two neighbours each: up to six speakers)


def test_a_long_recordings_windows_are_clustered_from_a_sample(monkeypatch):
    from onsei.diarization import clustering

    monkeypatch.setattr(clustering, "MOST_CLUSTERED", 100)  # (2,000: 13 minutes of speech)
    clustered = []
    for name in ("_spectral", "_agglomerative"):
        method = getattr(clustering, name)

        def counted(embeddings, *args, method=method):
            clustered.append(len(embeddings))
            return method(embeddings, *args)

        monkeypatch.setattr(clustering, name, counted)
    embeddings, truth = _speakers([150, 90, 60])
    for method in ("spectral", "agglomerative"):
        options = ClusteringOptions(method=method)
        labels = cluster(embeddings, options=options)
        assert len(labels) == 300 and len(set(labels)) == 3
        assert len({(t, x) for t, x in zip(truth, labels, strict=True)}) == 3  # one each
        assert len(set(cluster(embeddings, num_speakers=2, options=options))) == 2
    assert clustered == [100] * 4  # never all 300 at once


def test_speaker_counts_that_contradict_each_other_are_refused():
    audio = np.zeros(SR, dtype=np.float32)
    with pytest.raises(OptionError, match="min_speakers \\(3\\) is more than max_speakers"):
        diarize(audio, min_speakers=3, max_speakers=2)
    with pytest.raises(OptionError, match="not both"):
        diarize(audio, num_speakers=2, max_speakers=3)
    with pytest.raises(OptionError, match="num_speakers: must be at least 1"):
        diarize(audio, num_speakers=0)


def test_a_short_clip_of_one_voice_is_one_speaker(tmp_path, capsys):
    text = "This is one speaker talking alone for a few seconds, nobody else is here."
    path = speak(text, tmp_path / "one.wav")  # 4.3 s: nine windows, all close together
    turns = diarize(path)
    assert len({t.speaker for t in turns}) == 1 and turns[0].start < 0.5
    assert len({t.speaker for t in diarize(path, min_speakers=2)}) >= 2  # when asked for
    # more speakers asked for than can be heard: those found, named without gaps, and a note
    assert main(["diarize", str(path), "--num_speakers", "20", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "fewer speakers than the 20 asked for" in out
    names = [t.speaker for t in read_rttm(tmp_path / "one.rttm")["one"]]
    found = list(dict.fromkeys(names))  # in order of appearance
    assert 1 < len(found) < 20 and found == [f"SPEAKER_{i + 1}" for i in range(len(found))]


def test_no_speech_no_turns():
    assert diarize(np.zeros(10 * SR, dtype=np.float32)) == []


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory) -> tuple[Path, list[Turn]]:
    """Two espeak-ng voices, male and female, taking turns, with the true turns. (The voicefilter
    d-vector hardly tells en-us from en-gb+f4: mean cosine distance 0.36 between them, 0.33
    within.)"""
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
    # A guard, not a goal: 19.0% measured with the GE2E encoder and the voice counter (23.3%
    # one speaker at a time; the voicefilter d-vector confused these two voices: 49.7%; one
    # speaker for all speech scores 51.3%).
    assert report.der < 0.3, report.lines()
    ami = read_rttm(shared("diarization/ami/debug.development.rttm"))
    uem = read_uem(shared("diarization/ami/debug.development.uem"))
    hypothesis = {"dev00": diarize(shared("diarization/ami/dev00.wav"))}
    assert score_diarization({"dev00": ami["dev00"]}, hypothesis, uem=uem).der < 0.3  # 19.3%


def test_der_of_perfect_empty_and_swapped_hypotheses():
    reference = {"f": [Turn(0, 2, "a"), Turn(2, 5, "b")]}
    assert score_diarization(reference, reference).der == 0
    assert score_diarization(reference, {}).der == 1.0
    swapped = {"f": [Turn(0, 2, "x"), Turn(2, 5, "x")]}
    report = score_diarization(reference, swapped)
    assert report.confusion == pytest.approx(2.0) and report.der == pytest.approx(0.4)
    shifted = {"f": [Turn(0, 2.1, "a"), Turn(2.1, 5, "b")]}
    assert score_diarization(reference, shifted, collar=0.5).der == 0


def test_a_speakers_overlapping_turns_count_once():
    reference = {"f": [Turn(1, 3, "a"), Turn(2, 4, "a")]}
    assert score_diarization(reference, {"f": [Turn(1, 4, "x")]}).der == 0  # as md-eval


def test_rttm_and_uem_files_are_read_strictly(tmp_path):
    from onsei.writers.rttm import RTTMError

    rttm = tmp_path / "bom.rttm"
    rttm.write_text("\ufeffSPEAKER f 1 0.5 1.0 <NA> <NA> a <NA> <NA>\n", encoding="utf-8")
    assert read_rttm(rttm) == {"f": [Turn(0.5, 1.5, "a")]}
    for values in ("0 inf", "nan 1", "-1 2"):
        rttm.write_text(f"SPEAKER f 1 {values} <NA> <NA> a <NA> <NA>\n")
        with pytest.raises(RTTMError, match="bom.rttm:1: start and duration must be finite"):
            read_rttm(rttm)
    uem = tmp_path / "f.uem"
    uem.write_text(";; scored regions\nf 1 0.0 10.5\n")
    assert read_uem(uem) == {"f": [(0.0, 10.5)]}
    uem.write_text("f 1 10 5\n")
    with pytest.raises(RTTMError, match="f.uem:1: a region must have 0 <= start < end"):
        read_uem(uem)
    with pytest.raises(RTTMError, match="cannot read"):
        read_uem(tmp_path / "none.uem")


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
    # a word in overlapped speech is the main speaker's, not the other voice's
    overlapped = [Turn(3.9, 4.8, "SPEAKER_2"), Turn(4.0, 10.0, "SPEAKER_1")]
    words = [Word(4.2, 4.6, " yes", 0.9), Word(5.0, 5.4, " well", 0.9)]
    spoken = Transcript([Segment(0, 4.2, 5.4, " yes well", words=words)])
    assert [w.speaker for w in spoken.assign_speakers(overlapped).words] == ["SPEAKER_1"] * 2
    assert len(spoken.segments) == 1


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
    one_at_a_time = tmp_path / "single"
    assert main(["diarize", str(path), "--overlap", "false", "-o", str(one_at_a_time)]) == 0
    assert "2 speakers" in capsys.readouterr().out
    assert (one_at_a_time / "meeting.rttm").exists()


def _silence(path: Path) -> Path:
    """One second of silence written to ``path`` (a wav file)."""
    import soundfile

    soundfile.write(path, np.zeros(SR, dtype=np.float32), SR)
    return path


def test_diarization_bad_input_is_one_line(tmp_path, capsys):
    silence = _silence(tmp_path / "silence.wav")
    assert main(["diarize", str(silence), "-o", str(tmp_path)]) == 0
    assert "(no speech found)" in capsys.readouterr().out
    assert (tmp_path / "silence.rttm").read_text() == ""
    bad = tmp_path / "bad.rttm"
    bad.write_text("SPEAKER f 1 zero 1.0 <NA> <NA> a <NA> <NA>\n")
    assert main(["score-diarization", str(bad), str(bad)]) == 2
    error = capsys.readouterr().err
    assert f"{bad}:1: not an RTTM SPEAKER line" in error and error.count("\n") == 1
    reference, hypothesis = tmp_path / "ref.rttm", tmp_path / "hyp.rttm"
    reference.write_text("SPEAKER dev00 1 0.0 1.0 <NA> <NA> a <NA> <NA>\n")
    hypothesis.write_text("SPEAKER DEV00 1 0.0 1.0 <NA> <NA> a <NA> <NA>\n")
    assert main(["score-diarization", str(reference), str(hypothesis)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("DER 100.0%") and "DEV00 (not scored" in captured.err
    assert main(["score-diarization", str(reference), str(reference), "--collar", "-1"]) == 2
    assert "--collar: not negative" in capsys.readouterr().err
    assert main(["diarize", str(silence), "--min_speakers", "3", "--max_speakers", "2"]) == 2
    assert "is more than max_speakers" in capsys.readouterr().err
    assert main(["transcribe", str(silence), "--num_speakers", "2"]) == 2
    assert "--num_speakers requires --diarize" in capsys.readouterr().err
    assert main(["transcribe", str(silence), "--overlap", "false"]) == 2
    assert "--overlap requires --diarize" in capsys.readouterr().err
    assert main(["diarize", str(silence), "--counter", str(tmp_path / "none.npz")]) == 2
    assert "counter: no such file" in capsys.readouterr().err
    not_a_counter = tmp_path / "weights.npz"
    not_a_counter.write_text("not weights")
    arguments = ["--diarize", "--counter", str(not_a_counter), "-o", str(tmp_path / "out")]
    assert main(["transcribe", str(silence), *arguments]) == 2  # before transcribing
    error = capsys.readouterr().err
    assert "not a voice counter written by" in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()
    arguments = ["--diarize", "--min_speakers", "3", "--max_speakers", "2"]
    assert main(["transcribe", str(silence), *arguments, "-o", str(tmp_path / "out")]) == 2
    assert "is more than max_speakers" in capsys.readouterr().err
    assert main(["transcribe", str(silence), "-f", "rttm", "-o", str(tmp_path / "out")]) == 2
    assert "--output_format rttm requires --diarize" in capsys.readouterr().err
    arguments = ["--diarize", "--max_line_width", "40", "-o", str(tmp_path / "out")]
    main(["transcribe", str(silence), *arguments])  # --diarize turns word timestamps on
    assert "requires --word_timestamps" not in capsys.readouterr().err
    assert main(["diarize", str(silence), "-o", str(silence)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_diarize_refuses_two_inputs_with_one_output(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        _silence(tmp_path / folder / "x.wav")
    inputs = [str(tmp_path / "a" / "x.wav"), str(tmp_path / "b" / "x.wav")]
    assert main(["diarize", *inputs, "-o", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "b/x.wav: its RTTM would overwrite that of" in error and error.count("\n") == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.rttm"]


def test_a_missing_embedder_is_found_before_transcribing(monkeypatch, tmp_path, capsys):
    import importlib.util

    from onsei.diarization import ge2e, pipeline

    audio = _silence(tmp_path / "a.wav")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    loaded = (pipeline._embedder, ge2e._encoder)  # (once per process: as if not yet)
    for function in loaded:
        function.cache_clear()
    try:
        arguments = ["--model", "tiny.en", "--diarize", "-o", str(tmp_path / "out")]
        assert main(["transcribe", str(audio), *arguments]) == 2
    finally:
        for function in loaded:
            function.cache_clear()
    error = capsys.readouterr().err
    assert "pip install --no-deps resemblyzer" in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


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
