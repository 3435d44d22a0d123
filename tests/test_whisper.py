"""Whisper through onsei's recognizer interface, on real and synthesised speech."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jiwer
import numpy as np
import pytest
from conftest import JFK_TEXT, shared, speak, white_noise, words_of

import onsei
from onsei.errors import OptionError
from onsei.recognizer import Recognizer


def test_load_model_returns_a_recognizer(tiny_en):
    assert isinstance(tiny_en, Recognizer)
    assert tiny_en.name == "tiny.en" and tiny_en.languages == ["en"]
    assert (tiny_en.device, tiny_en.compute_type) == ("cpu", "int8")


def test_transcribes_jfk_accurately_with_word_timestamps(tiny_en, jfk_flac: Path):
    transcript = tiny_en.transcribe(str(jfk_flac), word_timestamps=True)
    assert jiwer.wer(" ".join(words_of(JFK_TEXT)), " ".join(words_of(transcript.text))) < 0.1
    assert transcript.language == "en" and transcript.duration == pytest.approx(11.0)
    words = transcript.words
    assert len(words) >= 20
    assert all(0 <= w.start <= w.end <= 11.5 for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:], strict=False))
    assert all(0 < w.probability <= 1 for w in words)
    segment = transcript.segments[0]
    assert segment.avg_logprob < 0 and 0 <= segment.no_speech_prob <= 1
    assert segment.compression_ratio > 0 and segment.temperature == 0.0


def test_same_result_as_faster_whisper_itself(tiny_en, jfk_flac: Path):
    from faster_whisper import WhisperModel

    from onsei.audio import load_audio
    from onsei.whisper.registry import resolve_whisper_model

    audio = load_audio(jfk_flac)
    peer = WhisperModel(str(resolve_whisper_model("tiny.en")), device="cpu", compute_type="int8")
    for vad_filter in (False, True):
        segments, _ = peer.transcribe(audio, word_timestamps=True, vad_filter=vad_filter)
        expected = [(s.start, s.end, s.text, [w.word for w in s.words]) for s in segments]
        ours = tiny_en.transcribe(audio, word_timestamps=True, vad_filter=vad_filter).segments
        assert [(s.start, s.end, s.text, [w.word for w in s.words]) for s in ours] == expected


def test_options_reach_the_engine(tiny_en, jfk_flac: Path):
    prefixed = tiny_en.transcribe(str(jfk_flac), prefix="Ladies and gentlemen,")
    assert prefixed.text.startswith("Ladies and gentlemen,")
    no_timestamps = tiny_en.transcribe(str(jfk_flac), without_timestamps=True)
    assert len(no_timestamps.segments) == 1  # one 30 s window, no timestamp tokens to split on
    clipped = tiny_en.transcribe(str(jfk_flac), clip_timestamps=[0.0, 3.0])
    assert clipped.segments[-1].end <= 3.5
    assert "country" not in clipped.text
    greedy = tiny_en.transcribe(str(jfk_flac), beam_size=1, temperature=0.0)
    assert "fellow Americans" in greedy.text


def test_english_only_model_refuses_other_languages_and_translation(tiny_en, jfk_flac: Path):
    with pytest.raises(OptionError, match="English-only"):
        tiny_en.transcribe(str(jfk_flac), language="ja")
    with pytest.raises(OptionError, match="translation"):
        tiny_en.transcribe(str(jfk_flac), task="translate")
    with pytest.raises(OptionError, match="unknown option"):
        tiny_en.transcribe(str(jfk_flac), beam=3)


def test_synthesised_speech(tiny_en, tmp_path: Path):
    wav = speak("hello world, this is a test of the speech recognizer", tmp_path / "s.wav")
    text = words_of(tiny_en.transcribe(str(wav)).text)
    assert {"hello", "world", "test"} <= set(text)


@pytest.mark.parametrize(
    ("clip", "expected"),
    [
        ("picovoice-leopard/test_ja.wav", "ja"),
        ("picovoice-leopard/test_de.wav", "de"),
        ("picovoice-leopard/test_fr.wav", "fr"),
        ("picovoice-leopard/test.wav", "en"),
    ],
)
def test_base_detects_languages(base, clip: str, expected: str):
    languages = base.detect_language(shared(f"multilingual/{clip}"))
    assert languages[0][0] == expected
    probabilities = [p for _, p in languages]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0.5 < probabilities[0] <= 1.0


def test_base_transcribes_and_translates_spanish(base):
    path = shared("multilingual/picovoice-leopard/test_es.wav")
    reference = next(
        json.loads(line)["text"]
        for line in (path.parents[1] / "manifest.jsonl").read_text().splitlines()
        if "test_es.wav" in line
    )
    spanish = base.transcribe(str(path))
    assert spanish.language == "es"
    assert jiwer.wer(" ".join(words_of(reference)), " ".join(words_of(spanish.text))) < 0.5
    english = base.transcribe(str(path), task="translate")
    spanish_words, english_words = set(words_of(spanish.text)), set(words_of(english.text))
    assert len(english_words & {"the", "and", "of", "to", "a", "is", "in"}) >= 2
    assert len(spanish_words & english_words) < len(english_words) / 2


def test_noise_and_silence_produce_no_words_by_default(base):
    for audio in (white_noise(30), np.zeros(30 * 16000, np.float32)):
        assert base.transcribe(audio).text == ""


def test_python_one_liner(jfk_flac: Path):
    transcript = onsei.transcribe(str(jfk_flac), model="tiny.en", device="cpu")
    assert "fellow Americans" in transcript.text


@pytest.fixture(scope="module")
def clips_joined() -> tuple[np.ndarray, str]:
    """The 25 clips of ../shared/data/clips one after another (102 s), and their transcripts."""
    from onsei.audio import load_audio

    folder = shared("clips")
    rows = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    gap = np.zeros(8000, dtype=np.float32)
    audio = np.concatenate([x for r in rows for x in (load_audio(folder / r["audio"]), gap)])
    return audio, " ".join(r["text"] for r in rows)


@pytest.mark.slow
def test_long_audio_is_decoded_as_faster_whispers_pipeline_does_cut_into_sentences(
    tiny_en, clips_joined
):
    from faster_whisper import BatchedInferencePipeline

    from onsei.text.normalizers import normalize_whisper
    from onsei.whisper.sentences import MAX_SEGMENT_SECONDS

    audio, reference = clips_joined
    batched = tiny_en.transcribe(audio, word_timestamps=True)  # 102 s: batch_size 8
    if len(os.sched_getaffinity(0)) >= 2:  # then onsei's batches run in 2 lanes at a time
        assert tiny_en._batch_engine[1] == 2
    segments, _ = BatchedInferencePipeline(tiny_en.model).transcribe(
        audio,
        batch_size=8,
        beam_size=5,
        word_timestamps=True,  # (and its default without_timestamps=True, onsei's here too)
        vad_parameters={},  # faster-whisper's VadOptions defaults, which are onsei's
    )
    segments = list(segments)
    # (no chunk of the clips fails, so none is decoded again: the pipeline's text exactly, in
    # its order though decoded in lanes, each chunk's segment cut into sentences)
    assert "".join(s.text for s in batched.segments) == "".join(s.text for s in segments)
    assert len(batched.segments) > len(segments)
    assert [s.id for s in batched.segments] == list(range(len(batched.segments)))
    assert all(
        s.end - s.start <= MAX_SEGMENT_SECONDS or len(s.words) == 1 for s in batched.segments
    )
    sequential = tiny_en.transcribe(audio, batch_size=1)
    for transcript in (batched, sequential):
        error = jiwer.wer(normalize_whisper(reference), normalize_whisper(transcript.text))
        assert error < 0.15, error
        starts = [s.start for s in transcript.segments]
        end = len(audio) / 16000 + 0.5
        assert starts == sorted(starts) and 0 <= starts[0] and transcript.segments[-1].end <= end
    assert all(s.words for s in batched.segments)
    with pytest.raises(OptionError, match="batch_size must be at least 1"):
        tiny_en.transcribe(audio, batch_size=0)
    with pytest.raises(OptionError, match="needs vad_filter on"):
        tiny_en.transcribe(audio, batch_size=4, vad_filter=False)


@pytest.mark.parametrize(
    ("chunks", "batch_size", "lanes", "bounds"),
    [
        (21, 8, 2, [0, 5, 10, 16, 21]),
        (21, 8, 1, [0, 7, 14, 21]),
        (16, 8, 2, [0, 8, 16]),
        (3, 8, 2, [0, 2, 3]),
        (1, 8, 2, [0, 1]),
        (0, 8, 2, [0]),
    ],
)
def test_chunks_are_cut_into_even_batches_a_multiple_of_the_lanes(
    chunks, batch_size, lanes, bounds
):
    from onsei.whisper.batched import batch_bounds

    assert batch_bounds(chunks, batch_size, lanes) == bounds
    sizes = np.diff(bounds)
    assert all(1 <= sizes) and all(sizes <= batch_size) and sum(sizes) == chunks
    assert len(sizes) % lanes == 0 or len(sizes) == chunks
    assert len(sizes) == 0 or max(sizes) - min(sizes) <= 1


def test_a_batched_chunk_fails_on_a_loop_short_text_or_an_early_end(tiny_en):
    from types import SimpleNamespace

    from faster_whisper.tokenizer import Tokenizer

    from onsei.whisper.batched import chunk_fails

    tokenizer = Tokenizer(tiny_en.model.hf_tokenizer, False)
    options = SimpleNamespace(
        no_speech_threshold=0.6, log_prob_threshold=-1.0, compression_ratio_threshold=2.4
    )
    speech = tokenizer.encode(" Erase C Q Q F seven. Go. Rub out N I M N one. Wood, Cindy.")
    at = lambda seconds: tokenizer.timestamp_begin + round(seconds / 0.02)  # noqa: E731

    def fails(tokens, seconds, avg_logprob=-0.2, no_speech_prob=0.1):
        output = {"tokens": tokens, "avg_logprob": avg_logprob, "no_speech_prob": no_speech_prob}
        return chunk_fails(output, tokenizer, options, seconds)

    assert not fails(speech, 6.0)
    assert fails(speech + tokenizer.encode(" F" * 60), 20.0)  # a loop: compression ratio
    assert fails(speech, 6.0, avg_logprob=-1.4)  # unlikely text
    assert not fails(speech, 6.0, avg_logprob=-1.4, no_speech_prob=0.9)  # silence
    assert fails(tokenizer.encode(" 102762."), 29.0)  # far too short for its speech
    assert not fails(tokenizer.encode(" Yes."), 1.0)  # short speech, short text
    assert not fails([at(0.0), *speech, at(5.8)], 6.2)
    assert fails([at(0.0), *speech, at(14.2)], 28.6)  # ended 14 s before its chunk


@pytest.mark.slow
def test_failed_batched_chunks_are_decoded_again_sequentially(tiny_en, clips_joined, monkeypatch):
    import onsei.whisper.batched
    from onsei.text.normalizers import normalize_whisper

    audio, reference = clips_joined
    monkeypatch.setattr(onsei.whisper.batched, "chunk_fails", lambda *args: True)
    chunked = tiny_en.transcribe(audio, batch_size=8)
    timed = tiny_en.transcribe(audio, batch_size=8, without_timestamps=False)
    for transcript in (chunked, timed):
        error = jiwer.wer(normalize_whisper(reference), normalize_whisper(transcript.text))
        assert error < 0.15, error
        starts = [s.start for s in transcript.segments]
        assert starts == sorted(starts) and transcript.segments[-1].end <= len(audio) / 16000 + 0.5
        assert all(s.end - s.start < 20 for s in transcript.segments)
    assert all(s.words is None for s in chunked.segments)  # cut by word times, not asked for
