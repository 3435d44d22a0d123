"""Manifests and corpus preparers, on the shared corpora and on corpora made on the fly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import shared, speak

from onsei.audio import audio_duration
from onsei.cli import main
from onsei.data.manifest import ManifestError, Utterance, read_manifest, write_manifest
from onsei.data.prepare import prepare
from onsei.errors import OnseiError


def test_manifest_round_trip_with_relative_paths(tmp_path: Path):
    audio = tmp_path / "wavs" / "a.wav"
    audio.parent.mkdir()
    soundfile.write(audio, np.zeros(8000, np.float32), 16000)
    utterances = [Utterance("a", str(audio), 0.5, "héllo", speaker="s1")]
    path = write_manifest(tmp_path / "train.jsonl", utterances)
    assert json.loads(path.read_text())["audio"] == "wavs/a.wav"
    assert read_manifest(path) == utterances


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"id": "x", "audio": "a.wav"}', "missing field"),
        ('{"id": "x", "audio": "a.wav", "duration": "long", "text": ""}', "bad value"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_manifest_lines_are_reported_with_their_number(tmp_path: Path, line, message):
    good = '{"id": "a", "audio": "a.wav", "duration": 1.0, "text": "A"}'
    path = tmp_path / "m.jsonl"
    path.write_text(f"{good}\n\n{line}\n")
    with pytest.raises(ManifestError, match=f"m.jsonl:3: {message}"):
        read_manifest(path)


def test_audio_duration_from_headers(media_dir: Path):
    for name in ("jfk.wav", "jfk.mp3", "jfk.m4a", "jfk.opus", "jfk_video.mkv"):
        assert audio_duration(media_dir / name) == pytest.approx(11.0, abs=0.1), name


def test_prepare_an4_holds_out_unseen_dev_speakers(tmp_path: Path):
    report = prepare("an4", shared("an4"), tmp_path)
    assert report.counts == {"train": 857, "dev": 91, "test": 130}
    splits = {name: read_manifest(tmp_path / f"{name}.jsonl") for name in report.counts}
    speakers = {name: {u.speaker for u in us} for name, us in splits.items()}
    assert not speakers["train"] & speakers["dev"] and not speakers["train"] & speakers["test"]
    first = splits["test"][0]
    assert first.text == "RUBOUT G M E F THREE NINE" and first.duration == pytest.approx(4.0)
    assert Path(first.audio).is_file()


def test_prepare_an4_from_the_original_sphere_layout(tmp_path: Path):
    source = tmp_path / "an4"
    (source / "etc").mkdir(parents=True)
    samples = shared("an4/sphere_samples")
    lines = {"an406-fcaw-b": "RUBOUT G M E F THREE NINE", "an416-fjlp-b": "NO"}
    for folder in ("an4_clstk", "an4test_clstk"):
        for utterance_id in lines:
            speaker = utterance_id.split("-")[1]
            (source / "wav" / folder / speaker).mkdir(parents=True, exist_ok=True)
            shutil.copy(samples / f"{utterance_id}.sph", source / "wav" / folder / speaker)
    text = "".join(f"<s> {t} </s> ({u})\n" for u, t in lines.items())
    (source / "etc" / "an4_train.transcription").write_text(text)
    (source / "etc" / "an4_test.transcription").write_text(text)
    report = prepare("an4", source, tmp_path / "out")
    assert report.counts == {"train": 2, "dev": 0, "test": 2}
    test = read_manifest(tmp_path / "out" / "test.jsonl")
    assert [(u.id, u.text, u.speaker) for u in test] == [
        ("an406-fcaw-b", "RUBOUT G M E F THREE NINE", "fcaw"),
        ("an416-fjlp-b", "NO", "fjlp"),
    ]


def test_prepare_fsdd_and_yesno_official_splits(tmp_path: Path):
    fsdd = prepare("fsdd", shared("fsdd"), tmp_path / "fsdd")
    assert fsdd.counts == {"train": 2400, "dev": 300, "test": 300}
    assert read_manifest(tmp_path / "fsdd" / "test.jsonl")[0].text in {
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
    }
    yesno = prepare("yesno", shared("yesno"), tmp_path / "yesno")
    assert yesno.counts == {"train": 27, "dev": 4, "test": 29}
    first = read_manifest(tmp_path / "yesno" / "train.jsonl")[0]
    assert first.text == "NO NO NO NO YES YES YES YES"


@pytest.fixture
def spoken(tmp_path: Path) -> dict[str, Path]:
    sentences = {
        "s1-a": "hello world",
        "s1-b": "good morning",
        "s2-a": "thank you",
        "s2-b": "see you later",
        "s3-a": "open the door",
    }
    return {key: speak(text, tmp_path / f"{key}.wav") for key, text in sentences.items()}


def test_prepare_folder_kaldi_and_ljspeech(tmp_path: Path, spoken: dict[str, Path]):
    texts = {
        "s1-a": "hello world",
        "s1-b": "good morning",
        "s2-a": "thank you",
        "s2-b": "see you later",
        "s3-a": "open the door",
    }
    folder = tmp_path / "folder"
    for key, wav in spoken.items():
        speaker, name = key.split("-")
        (folder / speaker).mkdir(parents=True, exist_ok=True)
        shutil.copy(wav, folder / speaker / f"{name}.wav")
        (folder / speaker / f"{name}.txt").write_text(texts[key] + "\n")
    report = prepare("folder", folder, tmp_path / "out_folder", dev_fraction=0.3, test_fraction=0.3)
    assert sum(report.counts.values()) == 5
    everything = [
        u
        for s in ("train", "dev", "test")
        for u in read_manifest(tmp_path / "out_folder" / f"{s}.jsonl")
    ]
    by_speaker: dict[str, set[str]] = {}
    for split in ("train", "dev", "test"):
        for u in read_manifest(tmp_path / "out_folder" / f"{split}.jsonl"):
            by_speaker.setdefault(u.speaker, set()).add(split)
    assert all(len(splits) == 1 for splits in by_speaker.values())  # speakers never straddle
    assert {u.id: u.text for u in everything}["s2-b"] == "see you later"

    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    (kaldi / "wav.scp").write_text("".join(f"{k} {w}\n" for k, w in spoken.items()))
    (kaldi / "text").write_text("".join(f"{k} {t.upper()}\n" for k, t in texts.items()))
    (kaldi / "utt2spk").write_text("".join(f"{k} {k[:2]}\n" for k in texts))
    report = prepare("kaldi", kaldi, tmp_path / "out_kaldi")
    assert sum(report.counts.values()) == 5

    lj = tmp_path / "LJSpeech"
    (lj / "wavs").mkdir(parents=True)
    for key, wav in spoken.items():
        shutil.copy(wav, lj / "wavs" / f"LJ001-{key}.wav")
    (lj / "metadata.csv").write_text(
        "".join(f"LJ001-{k}|{t.title()} 1|{t} one\n" for k, t in texts.items())
    )
    prepare("ljspeech", lj, tmp_path / "out_lj", dev_fraction=0.0, test_fraction=0.0)
    train = read_manifest(tmp_path / "out_lj" / "train.jsonl")
    assert len(train) == 5 and train[0].text.endswith(" one")


def test_prepare_bad_audio_fails_or_is_skipped(tmp_path: Path, spoken, capsys):
    folder = tmp_path / "folder"
    folder.mkdir()
    shutil.copy(spoken["s1-a"], folder / "good.wav")
    (folder / "good.txt").write_text("hello world")
    (folder / "broken.wav").write_text("not audio")
    (folder / "broken.txt").write_text("whatever")
    with pytest.raises(ManifestError, match="broken.wav.*--skip-bad"):
        prepare("folder", folder, tmp_path / "out")
    code = main(
        [
            "prepare",
            "folder",
            str(folder),
            str(tmp_path / "out"),
            "--skip-bad",
            "--dev-fraction",
            "0",
            "--test-fraction",
            "0",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0 and "skipped: " in captured.err and "broken.wav" in captured.err
    assert "train.jsonl: 1 utterances" in captured.out


def test_prepare_unknown_corpus_layout(tmp_path: Path):
    with pytest.raises(OnseiError, match="not a Kaldi data directory"):
        prepare("kaldi", tmp_path, tmp_path / "out")
    with pytest.raises(OnseiError, match="no such corpus directory"):
        prepare("an4", tmp_path / "missing", tmp_path / "out")
