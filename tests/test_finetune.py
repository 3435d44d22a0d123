"""onsei finetune: Whisper fine-tuned on real AN4 speech with transformers, exported to
CTranslate2, resumed after an interruption; and its errors."""

import errno
import json
from pathlib import Path

import pytest
import torch
from conftest import shared

from onsei.cli import main
from onsei.data.manifest import read_manifest, write_manifest


@pytest.fixture(scope="module")
def an4_small(tmp_path_factory) -> tuple[Path, Path]:
    """Eight AN4 training utterances and three others to evaluate on (spelled letters and
    digits, which zero-shot Whisper writes its own way: "GMEF39")."""
    utterances = read_manifest(shared("an4/train.jsonl"))
    folder = tmp_path_factory.mktemp("an4_small")
    train = write_manifest(folder / "train.jsonl", utterances[:8])
    held_out = write_manifest(folder / "eval.jsonl", utterances[100:103])
    return train, held_out


def _log(exp: Path) -> list[dict]:
    return [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_finetune_learns_the_domain_and_runs_everywhere(an4_small, tmp_path, capsys):
    train, held_out = an4_small
    exp = tmp_path / "ft"
    arguments = ["--train", str(train), "--eval", str(held_out), "--exp", str(exp)]
    options = [
        "--epochs",
        "3",
        "--learning_rate",
        "1e-4",
        "--warmup_steps",
        "2",
        "--batch_size",
        "2",
    ]
    options += ["--interpolation", "auto", "--freeze_encoder"]
    code = main(["finetune", "--model", "tiny.en", *arguments, *options])
    assert code == 0
    out = capsys.readouterr().out
    assert "eval WER (plain):" in out and f"--model {exp}" in out
    results = json.loads((exp / "results.json").read_text())
    assert results["best_wer"] < results["zero_shot_wer"], results
    # auto: the smallest weight tried whose eval WER is within half a point of the fine-tuned
    chosen, wers = results["interpolation"], results["interpolation_wers"]
    assert wers["1.0"] == results["best_wer"]
    assert wers[str(chosen)] <= results["best_wer"] + 0.005, results
    tried = sorted(float(w) for w in wers)
    assert tried[-1] == 1.0 and all(
        wers[str(w)] > wers["1.0"] + 0.005 for w in tried[:-1] if w < chosen
    ), results
    evaluations = [r for r in _log(exp) if "eval_wer" in r]
    assert [r["epoch"] for r in evaluations] == [0, 1.0, 2.0, 3.0]
    for folder in ("hf", "ct2"):
        assert (exp / folder).is_dir()

    # the fine-tuned model through the normal engine: transcribe and eval
    utterance = read_manifest(held_out)[0]
    output = ["-o", str(tmp_path / "out"), "-f", "txt", "--verbose", "False"]
    assert main(["transcribe", utterance.audio, "--model", str(exp), *output]) == 0
    text = (tmp_path / "out" / f"{Path(utterance.audio).stem}.txt").read_text()
    assert text.strip()
    capsys.readouterr()
    report = ["--output", str(tmp_path / "report")]
    assert main(["eval", "--model", str(exp), "--data", str(held_out), *report]) == 0
    assert "| word | 3 |" in capsys.readouterr().out


@pytest.mark.slow
def test_finetune_resumes_from_the_last_complete_checkpoint(an4_small, tmp_path, capsys):
    train, _ = an4_small
    two = write_manifest(tmp_path / "two.jsonl", read_manifest(train)[:2])
    exp = tmp_path / "ft"
    common = ["finetune", "--model", "tiny.en", "--train", str(two), "--exp", str(exp)]
    common += ["--batch_size", "2", "--warmup_steps", "0"]  # one step per epoch, whole encoder
    assert main([*common, "--epochs", "1"]) == 0
    assert (exp / "checkpoints" / "checkpoint-1" / "trainer_state.json").is_file()
    # a checkpoint cut off while being written (a crash, a full disk) is not resumed from
    broken = exp / "checkpoints" / "checkpoint-7"
    broken.mkdir()
    (broken / "model.safetensors").write_bytes(b"half")
    assert main([*common, "--epochs", "2", "--resume"]) == 0
    assert not broken.exists()
    steps = [r["step"] for r in _log(exp) if "train_runtime" in r]
    assert steps == [1, 2], steps  # the second run took one step more, after the first
    assert (exp / "checkpoints" / "checkpoint-2" / "trainer_state.json").is_file()

    capsys.readouterr()
    assert main([*common, "--epochs", "2"]) == 2  # a run is there: --resume it or move on
    assert "--resume it, or choose another --exp" in capsys.readouterr().err
    other = write_manifest(tmp_path / "other.jsonl", read_manifest(train)[2:4])
    changed = [a if a != str(two) else str(other) for a in common]
    assert main([*changed, "--epochs", "3", "--resume"]) == 2
    assert "--resume: train differs" in capsys.readouterr().err


def test_interpolated_weights_lie_between_the_zero_shot_and_fine_tuned_ones():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from onsei.whisper.finetune import interpolate_weights

    config = WhisperConfig(
        vocab_size=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        d_model=8,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=16,
        decoder_ffn_dim=16,
        max_source_positions=10,
        max_target_positions=10,
        num_mel_bins=4,
    )
    torch.manual_seed(0)
    zero_shot = WhisperForConditionalGeneration(config).state_dict()
    fine_tuned = WhisperForConditionalGeneration(config).state_dict()
    model = WhisperForConditionalGeneration(config)
    interpolate_weights(model, zero_shot, fine_tuned, 0.7)
    for name, tensor in model.state_dict().items():
        expected = 0.3 * zero_shot[name] + 0.7 * fine_tuned[name]
        assert torch.allclose(tensor, expected, atol=1e-6), name
    interpolate_weights(model, zero_shot, fine_tuned, 1.0)
    assert all(torch.equal(t, fine_tuned[n]) for n, t in model.state_dict().items())


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--interpolation", "auto"], "--interpolation auto chooses on the eval set: give --eval"),
        (["--interpolation", "1.5"], "interpolation: expected auto or a weight in (0, 1], got 1.5"),
    ],
)
def test_finetune_bad_interpolation_is_one_line(tmp_path, capsys, option, message):
    audio = shared("an4/test/fcaw/an406-fcaw-b.flac")
    row = {"id": "a", "audio": str(audio), "duration": 4.0, "text": "RUBOUT G M E F THREE NINE"}
    train = _manifest(tmp_path / "train.jsonl", [row])
    arguments = ["finetune", "--train", str(train), "--exp", str(tmp_path / "exp"), *option]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error


def test_collator_masks_label_padding_and_drops_the_start_token():
    from onsei.whisper.finetune import SpeechSeq2SeqCollator

    start = 50257
    items = [
        {"input_features": torch.zeros(80, 3000), "labels": [start, 10, 11, 50256]},
        {"input_features": torch.ones(80, 3000), "labels": [start, 12, 50256]},
    ]
    batch = SpeechSeq2SeqCollator(start)(items)
    assert batch["input_features"].shape == (2, 80, 3000)
    assert batch["labels"].tolist() == [[10, 11, 50256], [12, 50256, -100]]
    states = [{"encoder_states": torch.zeros(1500, 4), "labels": [start, 1]}] * 3
    batch = SpeechSeq2SeqCollator(start)(states)
    assert batch["encoder_outputs"].last_hidden_state.shape == (3, 1500, 4)


def _manifest(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("missing audio", "train.jsonl:2: "),
        ("empty text", "train.jsonl:2: empty text (utterance b)"),
        ("no eval speech", "eval.jsonl: no utterance has a transcript"),
        ("unknown model", "unknown model 'tiny.xx'"),
        ("english-only language", "tiny.en is English-only"),
        ("resume nothing", "--resume: "),
    ],
)
def test_finetune_bad_input_is_one_line(tmp_path, capsys, problem, message):
    audio = shared("an4/test/fcaw/an406-fcaw-b.flac")
    good = {"id": "a", "audio": str(audio), "duration": 4.0, "text": "RUBOUT G M E F THREE NINE"}
    second = {**good, "id": "b"}
    if problem == "missing audio":
        second["audio"] = str(tmp_path / "gone.flac")
    if problem == "empty text":
        second["text"] = " "
    train = _manifest(tmp_path / "train.jsonl", [good, second])
    eval_rows = [{**good, "text": ""}] if problem == "no eval speech" else [good]
    held_out = _manifest(tmp_path / "eval.jsonl", eval_rows)
    arguments = ["finetune", "--train", str(train), "--eval", str(held_out)]
    arguments += ["--exp", str(tmp_path / "exp"), "--freeze_encoder"]
    arguments += ["--model", "tiny.xx" if problem == "unknown model" else "tiny.en"]
    if problem == "english-only language":
        arguments += ["--language", "de"]
    if problem == "resume nothing":
        arguments += ["--resume"]
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1, error


def test_finetune_full_disk_is_one_line_with_what_to_do(tmp_path, capsys, monkeypatch):
    import transformers

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(transformers.Seq2SeqTrainer, "train", full)
    audio = shared("an4/test/fcaw/an406-fcaw-b.flac")
    row = {"id": "a", "audio": str(audio), "duration": 4.0, "text": "RUBOUT G M E F THREE NINE"}
    train = _manifest(tmp_path / "train.jsonl", [row])
    arguments = ["finetune", "--model", "tiny.en", "--train", str(train)]
    assert main([*arguments, "--exp", str(tmp_path / "exp")]) == 2
    error = capsys.readouterr().err
    assert "the disk is full" in error and "--resume" in error and error.count("\n") == 1
