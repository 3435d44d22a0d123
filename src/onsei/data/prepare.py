"""Corpus preparers: turn a corpus folder into train/dev/test JSONL manifests.

Each preparer lists the corpus's utterances with their official split where it has one (AN4,
FSDD, yesno); LJSpeech, Kaldi data directories and plain folders of audio with same-named .txt
transcripts are split deterministically by speaker (or by utterance when speakers are unknown).
Every audio file is opened to measure its duration; unreadable files are errors unless
``skip_bad`` is set, in which case they are reported and left out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from onsei.audio import audio_duration
from onsei.data.manifest import ManifestError, Utterance, read_manifest, write_manifest
from onsei.errors import AudioError, OnseiError
from onsei.inputs import is_audio_path

SPLITS = ("train", "dev", "test")
_DIGITS = "zero one two three four five six seven eight nine".split()


@dataclass
class Entry:
    """An utterance found in a corpus, before its audio is checked and measured."""

    id: str
    audio: Path
    text: str
    speaker: str | None = None
    split: str | None = None
    """The corpus's own split, or None to let the fractions decide."""


@dataclass
class PrepareReport:
    counts: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def prepare(
    corpus: str,
    source: str | Path,
    destination: str | Path,
    *,
    dev_fraction: float = 0.1,
    test_fraction: float = 0.1,
    skip_bad: bool = False,
    on_skip: Callable[[str], None] | None = None,
) -> PrepareReport:
    """Write ``destination/{train,dev,test}.jsonl`` for ``corpus`` found at ``source``."""
    if corpus not in PREPARERS:
        raise OnseiError(f"unknown corpus {corpus!r}: use one of {', '.join(PREPARERS)}")
    source = Path(source)
    if not source.is_dir():
        raise OnseiError(f"{source}: no such corpus directory")
    entries = list(PREPARERS[corpus](source))
    if not entries:
        raise OnseiError(f"{source}: no utterances found for corpus {corpus!r}")
    splits: dict[str, list[Utterance]] = {name: [] for name in SPLITS}
    report = PrepareReport()
    for entry in entries:
        try:
            duration = audio_duration(entry.audio)
        except AudioError as error:
            if not skip_bad:
                raise ManifestError(f"{error} (use --skip-bad to leave it out)") from None
            report.skipped.append(str(error))
            if on_skip is not None:
                on_skip(str(error))
            continue
        split = entry.split or _assign_split(entry.speaker or entry.id, dev_fraction, test_fraction)
        splits[split].append(
            Utterance(entry.id, str(entry.audio.resolve()), duration, entry.text, entry.speaker)
        )
    destination = Path(destination)
    for name, utterances in splits.items():
        write_manifest(destination / f"{name}.jsonl", utterances)
        report.counts[name] = len(utterances)
        report.hours[name] = sum(u.duration for u in utterances) / 3600
    return report


def _assign_split(key: str, dev_fraction: float, test_fraction: float) -> str:
    """A stable split for a speaker or utterance: the same key always lands in the same split."""
    position = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    if position < test_fraction:
        return "test"
    if position < test_fraction + dev_fraction:
        return "dev"
    return "train"


def an4(source: Path) -> Iterator[Entry]:
    """CMU AN4: the layout of ../shared/data/an4 (train.jsonl, test.jsonl) or the original one
    (etc/an4_{train,test}.transcription with wav/an4_clstk and wav/an4test_clstk). Every tenth
    training speaker (sorted) is held out as dev, so dev speakers are unseen in training."""
    if (source / "train.jsonl").is_file():
        records = [("train", u) for u in read_manifest(source / "train.jsonl")]
        records += [("test", u) for u in read_manifest(source / "test.jsonl")]
        found = [(split, u.id, Path(u.audio), u.text, u.speaker) for split, u in records]
    else:
        found = list(_an4_original(source))
    train_speakers = sorted({speaker for split, *_, speaker in found if split == "train"})
    dev_speakers = set(train_speakers[5::10])
    for split, utterance_id, audio, text, speaker in found:
        if split == "train" and speaker in dev_speakers:
            split = "dev"
        yield Entry(utterance_id, audio, text, speaker, split)


def _an4_original(source: Path) -> Iterator[tuple[str, str, Path, str, str]]:
    line_pattern = re.compile(r"^<s>\s*(.*?)\s*</s>\s*\((\S+)\)\s*$")
    for split, transcription, folder in (
        ("train", "an4_train.transcription", "an4_clstk"),
        ("test", "an4_test.transcription", "an4test_clstk"),
    ):
        path = source / "etc" / transcription
        if not path.is_file():
            raise OnseiError(
                f"{source}: not an AN4 folder (no train.jsonl, no etc/{transcription})"
            )
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = line_pattern.match(line.strip())
            if not match:
                raise ManifestError(f"{path}:{number}: not an AN4 transcription line")
            text, utterance_id = match.groups()
            speaker = utterance_id.split("-")[1]
            audio = next(
                (
                    p
                    for ext in (".sph", ".wav", ".flac")
                    if (p := source / "wav" / folder / speaker / f"{utterance_id}{ext}").exists()
                ),
                source / "wav" / folder / speaker / f"{utterance_id}.sph",
            )
            yield split, utterance_id, audio, text, speaker


def fsdd(source: Path) -> Iterator[Entry]:
    """Free Spoken Digit Dataset: recordings/{digit}_{speaker}_{index}.wav. Official split:
    index 0-4 test; of the rest, index 5-9 dev and 10-49 train."""
    folder = source / "recordings" if (source / "recordings").is_dir() else source
    for path in sorted(folder.glob("*.wav")):
        parts = path.stem.split("_")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
            continue
        digit, speaker, index = int(parts[0]), parts[1], int(parts[2])
        split = "test" if index < 5 else "dev" if index < 10 else "train"
        yield Entry(path.stem, path, _DIGITS[digit], speaker, split)


def yesno(source: Path) -> Iterator[Entry]:
    """OpenSLR yesno: waves_yesno/0_1_..._1.wav, 1 = YES. Kaldi's split: the first 31 files
    (sorted) train, the other 29 test; the last 4 of those 31 are dev here."""
    folder = source / "waves_yesno" if (source / "waves_yesno").is_dir() else source
    paths = sorted(p for p in folder.glob("*.wav") if re.fullmatch(r"[01](_[01])+", p.stem))
    for number, path in enumerate(paths):
        text = " ".join("YES" if bit == "1" else "NO" for bit in path.stem.split("_"))
        split = "test" if number >= 31 else "dev" if number >= 27 else "train"
        yield Entry(path.stem, path, text, None, split)


def ljspeech(source: Path) -> Iterator[Entry]:
    """LJSpeech: metadata.csv (id|text|normalized text) and wavs/<id>.wav; one speaker, so it
    is split by utterance. The normalised text (numbers spelled out) is the transcript."""
    metadata = source / "metadata.csv"
    if not metadata.is_file():
        raise OnseiError(f"{source}: not an LJSpeech folder (no metadata.csv)")
    for number, line in enumerate(metadata.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split("|")
        if len(fields) < 2:
            raise ManifestError(f"{metadata}:{number}: expected id|text|normalized text")
        text = fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]
        yield Entry(fields[0], source / "wavs" / f"{fields[0]}.wav", text.strip())


def kaldi(source: Path) -> Iterator[Entry]:
    """A Kaldi data directory: wav.scp and text, utt2spk when present (no segments file)."""
    if (source / "segments").exists():
        raise OnseiError(f"{source}: Kaldi 'segments' files are not supported yet")
    wav_scp = _read_kaldi_table(source / "wav.scp")
    speakers = _read_kaldi_table(source / "utt2spk") if (source / "utt2spk").exists() else {}
    for utterance_id, text in _read_kaldi_table(source / "text").items():
        location = wav_scp.get(utterance_id)
        if location is None:
            raise ManifestError(f"{source / 'text'}: {utterance_id} is not in wav.scp")
        if location.endswith("|"):
            raise ManifestError(
                f"{source / 'wav.scp'}: {utterance_id} is a command pipe; only file paths work"
            )
        audio = Path(location)
        yield Entry(
            utterance_id,
            audio if audio.is_absolute() else source / audio,
            text,
            speakers.get(utterance_id),
        )


def _read_kaldi_table(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise OnseiError(f"{path.parent}: not a Kaldi data directory (no {path.name})")
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            key, _, value = line.strip().partition(" ")
            table[key] = value.strip()
    return table


def folder(source: Path) -> Iterator[Entry]:
    """Any folder of audio files, each with a same-named .txt transcript beside it. The
    speaker is the name of the audio file's parent folder when files are in subfolders."""
    for path in sorted(p for p in source.rglob("*") if p.is_file() and is_audio_path(p)):
        transcript = path.with_suffix(".txt")
        if not transcript.is_file():
            continue
        relative = path.relative_to(source)
        speaker = relative.parts[0] if len(relative.parts) > 1 else None
        utterance_id = str(relative.with_suffix("")).replace("/", "-")
        text = " ".join(transcript.read_text(encoding="utf-8").split())
        yield Entry(utterance_id, path, text, speaker)


PREPARERS: dict[str, Callable[[Path], Iterator[Entry]]] = {
    "an4": an4,
    "fsdd": fsdd,
    "yesno": yesno,
    "ljspeech": ljspeech,
    "kaldi": kaldi,
    "folder": folder,
}
