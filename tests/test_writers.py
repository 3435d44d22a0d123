"""Transcript schema and the txt/srt/vtt/tsv/json writers, byte for byte as the whisper CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from onsei.transcript import Segment, Transcript, Word
from onsei.writers import SubtitleOptions, format_timestamp, render, save_transcript


def _words(spec: list[tuple[float, float, str]]) -> list[Word]:
    return [Word(start=s, end=e, word=w, probability=0.9) for s, e, w in spec]


@pytest.fixture
def transcript() -> Transcript:
    first = _words(
        [
            (0.0, 0.5, " Hello"),
            (0.5, 1.0, " there,"),
            (1.2, 1.8, " general"),
            (1.8, 2.4, " Kenobi."),
        ]
    )
    second = _words(
        [(3725.5, 3726.0, " It's"), (3726.0, 3726.4, " a"), (3726.4, 3727.0, " trap -->")]
    )
    return Transcript(
        segments=[
            Segment(
                id=0,
                start=0.0,
                end=2.4,
                text=" Hello there, general Kenobi.",
                words=first,
                avg_logprob=-0.2,
                no_speech_prob=0.01,
                compression_ratio=1.1,
                temperature=0.0,
                tokens=[1, 2],
            ),
            Segment(id=1, start=3725.5, end=3727.0, text=" It's a\ttrap -->", words=second),
        ],
        language="en",
        language_probability=0.99,
        duration=3728.0,
    )


def _without_words(transcript: Transcript) -> Transcript:
    for segment in transcript.segments:
        segment.words = None
    return transcript


def test_format_timestamp():
    assert format_timestamp(0) == "00:00.000"
    assert format_timestamp(3725.5) == "01:02:05.500"
    assert format_timestamp(5.0004, always_include_hours=True, decimal_marker=",") == "00:00:05,000"
    assert format_timestamp(59.9996) == "01:00.000"


def test_txt(transcript: Transcript):
    assert render(transcript, "txt") == "Hello there, general Kenobi.\nIt's a\ttrap -->\n"


def test_txt_with_speakers(transcript: Transcript):
    transcript.segments[0].speaker = "SPEAKER_00"
    assert render(transcript, "txt").startswith("[SPEAKER_00] Hello there")


def test_srt_segment_level(transcript: Transcript):
    assert render(_without_words(transcript), "srt") == (
        "1\n00:00:00,000 --> 00:00:02,400\nHello there, general Kenobi.\n\n"
        "2\n01:02:05,500 --> 01:02:07,000\nIt's a\ttrap ->\n\n"
    )


def test_vtt_segment_level(transcript: Transcript):
    assert render(_without_words(transcript), "vtt") == (
        "WEBVTT\n\n"
        "00:00.000 --> 00:02.400\nHello there, general Kenobi.\n\n"
        "01:02:05.500 --> 01:02:07.000\nIt's a\ttrap ->\n\n"
    )


def test_tsv(transcript: Transcript):
    assert render(transcript, "tsv") == (
        "start\tend\ttext\n0\t2400\tHello there, general Kenobi.\n"
        "3725500\t3727000\tIt's a trap -->\n"
    )


def test_json_is_the_schema_and_round_trips(transcript: Transcript):
    data = json.loads(render(transcript, "json"))
    assert data["text"] == "Hello there, general Kenobi. It's a\ttrap -->"
    assert (data["language"], data["language_probability"], data["duration"]) == (
        "en",
        0.99,
        3728.0,
    )
    first = data["segments"][0]
    assert {
        "start",
        "end",
        "text",
        "words",
        "avg_logprob",
        "no_speech_prob",
        "compression_ratio",
        "temperature",
        "speaker",
    } <= set(first)
    assert first["words"][1] == {
        "start": 0.5,
        "end": 1.0,
        "word": " there,",
        "probability": 0.9,
        "speaker": None,
    }
    assert Transcript.from_dict(data) == transcript


def test_word_level_cues_keep_segments(transcript: Transcript):
    assert render(transcript, "vtt") == (
        "WEBVTT\n\n"
        "00:00.000 --> 00:02.400\nHello there, general Kenobi.\n\n"
        "01:02:05.500 --> 01:02:07.000\nIt's a trap -->\n\n"
    )


def test_max_line_width_and_count(transcript: Transcript):
    options = SubtitleOptions(max_line_width=16, max_line_count=1)
    assert render(transcript, "srt", options) == (
        "1\n00:00:00,000 --> 00:00:01,000\nHello there,\n\n"
        "2\n00:00:01,200 --> 00:00:02,400\ngeneral Kenobi.\n\n"
        "3\n01:02:05,500 --> 01:02:07,000\nIt's a trap -->\n\n"
    )
    options = SubtitleOptions(max_line_width=16, max_line_count=2)
    assert render(transcript, "srt", options).split("\n\n")[0] == (
        "1\n00:00:00,000 --> 00:00:02,400\nHello there,\ngeneral Kenobi."
    )


def test_max_words_per_line(transcript: Transcript):
    cues = render(transcript, "vtt", SubtitleOptions(max_words_per_line=2)).split("\n\n")[1:-1]
    assert cues == [
        "00:00.000 --> 00:01.000\nHello there,",
        "00:01.200 --> 00:02.400\ngeneral Kenobi.",
        "01:02:05.500 --> 01:02:06.400\nIt's a",
        "01:02:06.400 --> 01:02:07.000\ntrap -->",
    ]


def test_highlight_words(transcript: Transcript):
    transcript.segments = transcript.segments[:1]
    cues = render(transcript, "vtt", SubtitleOptions(highlight_words=True)).split("\n\n")[1:-1]
    assert cues[0] == "00:00.000 --> 00:00.500\n<u>Hello</u> there, general Kenobi."
    assert cues[1] == "00:00.500 --> 00:01.000\nHello <u>there,</u> general Kenobi."
    assert cues[2] == "00:01.000 --> 00:01.200\nHello there, general Kenobi."  # the gap
    assert len(cues) == 5


def test_save_is_atomic_and_replaces(tmp_path: Path, transcript: Transcript):
    target = tmp_path / "out" / "talk.srt"
    save_transcript(transcript, target, "srt")
    save_transcript(_without_words(transcript), target, "txt")
    assert target.read_text(encoding="utf-8").startswith("Hello there")
    assert [p.name for p in target.parent.iterdir()] == ["talk.srt"]  # no temporary files left


def test_empty_transcript_writes_valid_empty_files():
    empty = Transcript(segments=[], language="en", duration=3.0)
    assert render(empty, "srt") == ""
    assert render(empty, "vtt") == "WEBVTT\n\n"
    assert render(empty, "tsv") == "start\tend\ttext\n"
    assert json.loads(render(empty, "json"))["text"] == ""


def test_unwritable_output_is_a_one_line_error(tmp_path: Path, transcript: Transcript):
    from onsei.errors import OutputError

    blocker = tmp_path / "file"
    blocker.write_text("I am a file, not a directory")
    with pytest.raises(OutputError, match="cannot write"):
        save_transcript(transcript, blocker / "talk.txt", "txt")


def test_outputs_get_the_usual_file_mode(tmp_path: Path, transcript: Transcript):
    import os

    mask = os.umask(0o022)
    try:
        path = save_transcript(transcript, tmp_path / "talk.txt", "txt")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
