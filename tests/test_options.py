"""Languages, decoding options and their mapping onto the engine's arguments."""

from __future__ import annotations

import inspect

import pytest

from onsei.errors import OptionError
from onsei.languages import LANGUAGES, language_code, language_name
from onsei.whisper.options import DecodingOptions, temperature_schedule


def test_language_code_accepts_codes_names_and_auto():
    assert language_code("ja") == "ja"
    assert language_code("Japanese") == "ja"
    assert language_code(" ENGLISH ") == "en"
    assert language_code("mandarin") == "zh"
    assert language_code("auto") is None
    assert language_code(None) is None
    assert language_name("pt") == "Portuguese"
    assert len(LANGUAGES) == 100


@pytest.mark.parametrize("bad", ["xx", "Klingon", "e n"])
def test_unknown_language_is_an_option_error(bad: str):
    with pytest.raises(OptionError, match="unknown language"):
        language_code(bad)


def test_temperature_schedule_matches_whisper_cli():
    assert temperature_schedule(0.0, 0.2) == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    assert temperature_schedule(0.5, 0.25) == (0.5, 0.75, 1.0)
    assert temperature_schedule(0.3, None) == (0.3,)


def test_unknown_option_is_rejected_not_ignored():
    with pytest.raises(OptionError, match="beamsize"):
        DecodingOptions.from_kwargs(beamsize=3)


@pytest.mark.parametrize(
    "options",
    [
        {"task": "summarise"},
        {"beam_size": 0},
        {"best_of": 0},
        {"patience": 0},
        {"temperature": (-0.1,)},
        {"vad_parameters": {"threshhold": 0.3}},
    ],
)
def test_bad_values_are_rejected(options: dict):
    with pytest.raises(OptionError):
        DecodingOptions.from_kwargs(**options)


def test_engine_kwargs_reach_faster_whisper_by_name():
    from faster_whisper import WhisperModel

    options = DecodingOptions.from_kwargs(
        language="German",
        logprob_threshold=-0.5,
        temperature=0.3,
        length_penalty=None,
        vad_filter=True,
        vad_parameters={"min_silence_duration_ms": 500},
    )
    kwargs = options.engine_kwargs()
    accepted = set(inspect.signature(WhisperModel.transcribe).parameters)
    assert set(kwargs) <= accepted, set(kwargs) - accepted
    assert kwargs["language"] == "de"
    assert kwargs["log_prob_threshold"] == -0.5
    assert kwargs["temperature"] == [0.3]
    assert kwargs["length_penalty"] == 1.0
    assert kwargs["vad_parameters"]["min_silence_duration_ms"] == 500
    assert kwargs["vad_parameters"]["speech_pad_ms"] == 400


def test_timestamps_default_to_faster_whispers_for_each_mode():
    def without_timestamps(batch_size: int, **options) -> bool:
        kwargs = DecodingOptions.from_kwargs(**options).engine_kwargs(batch_size)
        return kwargs["without_timestamps"]

    assert without_timestamps(1) is False  # Whisper's sequential decoding
    assert without_timestamps(8) is True  # as BatchedInferencePipeline.transcribe
    assert without_timestamps(8, without_timestamps=False) is False


def test_long_audio_is_decoded_in_batches_unless_an_option_needs_sequential_decoding():
    def batch_size(seconds: float, **options) -> int:
        return DecodingOptions.from_kwargs(**options).batch_size_for(seconds)

    assert batch_size(30.0) == 1 and batch_size(60.0) == 1
    assert batch_size(61.0) == 8
    assert batch_size(600.0, vad_filter=False) == 1
    assert batch_size(600.0, clip_timestamps="10,20") == 1
    assert batch_size(600.0, word_timestamps=True, hallucination_silence_threshold=2.0) == 1
    assert batch_size(600.0, batch_size=1) == 1 and batch_size(30.0, batch_size=4) == 4
