"""onsei eval with a Whisper model: transcripts of a real manifest scored with a normaliser."""

import json
from pathlib import Path

import pytest
from conftest import shared

from onsei.cli import main
from onsei.data.manifest import read_manifest, write_manifest
from onsei.evaluation import evaluate_recognizer


@pytest.fixture(scope="module")
def an4_three(tmp_path_factory) -> Path:
    """Three AN4 test utterances of spelled letters and digits."""
    utterances = read_manifest(shared("an4/test.jsonl"))[:3]
    return write_manifest(tmp_path_factory.mktemp("an4") / "three.jsonl", utterances)


@pytest.mark.slow
def test_whisper_eval_scores_with_the_chosen_normalizer(an4_three, tmp_path, capsys):
    wers = {}
    for normalizer in ("plain", "spelled"):
        output = tmp_path / normalizer
        arguments = ["--normalizer", normalizer, "--output", str(output)]
        assert main(["eval", "--model", "tiny.en", "--data", str(an4_three), *arguments]) == 0
        out = capsys.readouterr().out
        assert "| word | 3 |" in out and f"({normalizer} normalizer)" in out
        wers[normalizer] = float(out.split("WER ")[1].split("%")[0])
        assert (output / "alignments.txt").read_text().count("REF:") == 3
        raw = (output / "hyp_raw.txt").read_text().splitlines()
        assert len(raw) == 3 and raw[0].startswith("an406-fcaw-b ")
    # Whisper writes "GMEF39" where AN4 says "G M E F THREE NINE": only the spelled
    # normaliser forgives that
    assert wers["spelled"] < wers["plain"]


@pytest.mark.slow
def test_whisper_eval_uses_each_utterances_language(tmp_path, base):
    clips = read_manifest(shared("multilingual/manifest.jsonl"))
    chosen = [u for u in clips if u.language in ("de", "es")][:2]
    manifest = write_manifest(tmp_path / "two.jsonl", chosen)
    seen = []
    real = base.transcribe

    def spy(audio, **options):
        seen.append(options["language"])
        return real(audio, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(base, "transcribe", spy)
        report = evaluate_recognizer(base, manifest, normalizer="plain", options={"beam_size": 1})
    assert seen == [u.language for u in chosen]
    assert report.words.rate < 0.5


def test_eval_reports_unreadable_audio_by_manifest_line(tmp_path, capsys):
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"not audio at all")
    line = {"id": "x", "audio": str(bad), "duration": 1.0, "text": "HELLO"}
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(line) + "\n")
    assert main(["eval", "--model", "tiny.en", "--data", str(manifest)]) == 2
    error = capsys.readouterr().err
    assert f"{manifest}:1:" in error and error.count("\n") == 1, error


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--lm_weight", "0.3"], "--lm_weight applies to models trained with `onsei train`"),
        (["--hotwords", "HELLO"], "--hotwords applies to models trained"),
        (["--beam_size", "0"], "beam_size: must be at least 1"),
    ],
)
def test_eval_rejects_bad_options_for_whisper(tmp_path, capsys, arguments, message):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("")
    assert main(["eval", "--model", "tiny.en", "--data", str(manifest), *arguments]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error


def test_eval_rejects_an_unknown_normalizer(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--model", "tiny.en", "--data", "m.jsonl", "--normalizer", "fancy"])
    assert exit_.value.code == 2
    assert "invalid choice: 'fancy'" in capsys.readouterr().err


def test_eval_needs_the_model_once(tmp_path, capsys):
    assert main(["eval", "--data", str(tmp_path / "m.jsonl")]) == 2
    assert "either as EXP or as --model" in capsys.readouterr().err
