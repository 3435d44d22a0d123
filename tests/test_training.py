"""Recipes, the Trainer and trained models as recognizers, on tiny configurations (seconds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, shared

import onsei
from onsei.asr import trainer as trainer_module
from onsei.asr.models import build_model
from onsei.asr.recipe import load_recipe
from onsei.asr.recognizer import TrainedRecognizer, load_trained_model
from onsei.asr.search import Searcher, SearchOptions
from onsei.asr.trainer import Trainer
from onsei.cli import main
from onsei.data.batching import Batch
from onsei.data.prepare import prepare
from onsei.errors import OnseiError, OptionError, OutputError
from onsei.features import GlobalCMVN

FAMILIES = ("ctc", "las", "transformer", "joint_ctc_attention", "rnnt")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def yesno_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    destination = tmp_path_factory.mktemp("yesno")
    prepare("yesno", shared("yesno"), destination)
    return destination


def write_recipe(tmp_path: Path, data: Path, family: str = "ctc", **train) -> Path:
    """The repository's yesno recipe for ``family``, pointed at ``data``, train overrides."""
    recipe = yaml.safe_load((REPO / "recipes" / "yesno" / f"{family}.yaml").read_text())
    recipe["data"] = {"train": str(data / "train.jsonl"), "dev": str(data / "dev.jsonl")}
    recipe["train"].update(train)
    path = tmp_path / f"{family}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("family", FAMILIES)
def test_every_yesno_recipe_loads(family: str):
    recipe = load_recipe(REPO / "recipes" / "yesno" / f"{family}.yaml")
    assert recipe.model.family == family


@pytest.mark.parametrize(
    "path", sorted((REPO / "recipes" / "an4").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_an4_recipe_builds_a_model_that_trains_a_step(path: Path):
    recipe = load_recipe(path)
    features = recipe.features.n_mels
    cmvn = GlobalCMVN(torch.zeros(features), torch.ones(features))
    model = build_model(recipe.model, recipe.features, cmvn, vocab_size=30)
    lengths = torch.tensor([16000, 12000])
    batch = Batch(
        ["a", "b"],
        torch.randn(2, 16000) * 0.1,
        lengths,
        torch.tensor([[3, 4, 5], [6, 7, -1]]),
        torch.tensor([3, 2]),
    )
    loss = model(batch)["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    assert len(model.recognize(batch.waveforms, lengths)) == 2


def test_an_auxiliary_ctc_head_trains_the_encoder_and_joins_the_search_when_asked():
    recipe = load_recipe(REPO / "recipes" / "yesno" / "transformer.yaml")
    recipe.model.aux_ctc_weight = 0.25
    cmvn = GlobalCMVN(torch.zeros(recipe.features.n_mels), torch.ones(recipe.features.n_mels))
    model = build_model(recipe.model, recipe.features, cmvn, vocab_size=6)
    batch = Batch(
        ["a"],
        torch.randn(1, 16000) * 0.1,
        torch.tensor([16000]),
        torch.tensor([[3, 4]]),
        torch.tensor([2]),
    )
    losses = model(batch)
    expected = 0.75 * losses["attention"] + 0.25 * losses["ctc"]
    assert torch.allclose(losses["loss"], expected)
    losses["loss"].backward()
    assert model.ctc_head is not None and model.ctc_head.weight.grad is not None
    model.eval()
    encoded, _ = model.encode(batch.waveforms, batch.waveform_lengths)
    posteriors = model.ctc_log_probs_of(encoded)
    assert model.ctc_weight == 0.0 and posteriors.shape == (*encoded.shape[:2], 6)
    symbols = ["<blank>", "<unk>", "a", "b", "c", "<sos/eos>"]
    assert Searcher(model, symbols, SearchOptions()).attention_search is None  # greedy
    joint = Searcher(model, symbols, SearchOptions(beam_size=2, ctc_weight=0.3))
    assert joint.attention_search is not None and joint.attention_search.uses_ctc
    assert len(joint.recognize(batch.waveforms, batch.waveform_lengths)) == 1
    alone = Searcher(model, symbols, SearchOptions(beam_size=2)).attention_search
    assert alone is not None and not alone.uses_ctc
    recipe.model.aux_ctc_weight = 0.0
    plain = build_model(recipe.model, recipe.features, cmvn, vocab_size=6)
    with pytest.raises(OptionError, match="no CTC head"):
        Searcher(plain, symbols, SearchOptions(beam_size=2, ctc_weight=0.3))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["model"]["encoder"].update(hiden=3), "unknown key model.encoder.hiden"),
        (lambda r: r["train"].update(epochs="many"), "train.epochs: expected int"),
        (lambda r: r["model"].update(family="hmm"), "model.family: unknown family"),
        (lambda r: r.pop("data"), "data"),
        (lambda r: r["model"].update(aux_ctc_weight=0.3), "aux_ctc_weight: applies to the las"),
    ],
)
def test_bad_recipes_name_the_key(tmp_path: Path, change, message: str):
    recipe = yaml.safe_load((REPO / "recipes" / "yesno" / "ctc.yaml").read_text())
    change(recipe)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(OptionError, match=message):
        load_recipe(path)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_trains_and_recognizes(tmp_path: Path, yesno_data: Path, family: str):
    recipe = load_recipe(write_recipe(tmp_path, yesno_data, family, epochs=1))
    state = Trainer(recipe, tmp_path / "exp", device="cpu", progress=False).run()
    assert state.epoch == 1 and 0.0 <= state.scores[1]
    model = onsei.load_model(str(tmp_path / "exp"))
    transcript = model.transcribe(str(shared("yesno/waves_yesno/0_0_1_0_1_0_0_1.wav")))
    assert isinstance(transcript, onsei.Transcript) and transcript.duration > 5
    vocab = model.tokenizer.vocab_size
    searches = [{}, {"beam_size": 3}]
    if family == "joint_ctc_attention":
        searches += [{"beam_size": 3, "ctc_weight": 0.0}, {"beam_size": 3, "ctc_weight": 1.0}]
    if family == "rnnt":
        searches += [{"beam_size": 3, "transducer_search": "graves"}]
    for options in searches:
        transcript = model.transcribe(
            str(shared("yesno/waves_yesno/0_0_1_0_1_0_0_1.wav")), **options
        )
        for segment in transcript.segments:
            assert all(0 < token < vocab - 1 for token in segment.tokens)  # no blank, no sos/eos
            assert segment.text.strip() == model.tokenizer.decode(segment.tokens)


def test_joint_models_search_with_both_branches_even_with_one_beam(tmp_path, yesno_data):
    # attention alone may babble on (up to 2 tokens a frame); CTC prefix scores end it
    recipe = load_recipe(write_recipe(tmp_path, yesno_data, "joint_ctc_attention", epochs=1))
    Trainer(recipe, tmp_path / "exp", device="cpu", progress=False).run()
    model, tokenizer = load_trained_model(tmp_path / "exp")
    default = Searcher(model, tokenizer.symbols(), SearchOptions()).attention_search
    assert default is not None
    assert (default.options.beam_size, default.options.ctc_weight) == (1, model.ctc_weight)
    alone = Searcher(model, tokenizer.symbols(), SearchOptions(ctc_weight=0.0)).attention_search
    assert alone is not None and alone.options.ctc_weight == 0.0
    for other in ("ctc", "las"):
        (tmp_path / other).mkdir()
        recipe = load_recipe(write_recipe(tmp_path / other, yesno_data, other, epochs=1))
        Trainer(recipe, tmp_path / other / "exp", device="cpu", progress=False).run()
        model, tokenizer = load_trained_model(tmp_path / other / "exp")
        searcher = Searcher(model, tokenizer.symbols(), SearchOptions())
        assert searcher.attention_search is None and searcher.ctc_search is None  # greedy


def test_ctc_learns_yesno_and_works_everywhere(tmp_path: Path, yesno_data: Path, capsys):
    exp = tmp_path / "exp"
    code = main(["train", str(write_recipe(tmp_path, yesno_data, "ctc")), "--exp", str(exp)])
    assert code == 0
    for name in ("config.yaml", "tokenizer.json", "cmvn.json", "model.pt", "log.jsonl"):
        assert (exp / name).is_file(), name
    records = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    dev = [r for r in records if "wer" in r]
    assert dev[-1]["wer"] < 0.2, dev[-1]  # yesno is easy: a trained model gets it right
    speeds = [r for r in records if "audio_per_s" in r]
    assert len(speeds) == len(dev) and all(r["audio_per_s"] > 0 for r in speeds)
    train_lines = (yesno_data / "train.jsonl").read_text().splitlines()
    assert all(r["train_utterances"] == len(train_lines) for r in speeds)

    capsys.readouterr()
    assert main(["eval", str(exp), "--data", str(yesno_data / "test.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "| word | 29 | 232 |" in out and "RTF" in out
    wer = float(out.split("WER ")[1].split("%")[0])
    assert wer < 20
    assert (exp / "decode_test" / "alignments.txt").read_text().count("REF:") == 29

    wav = shared("yesno/waves_yesno/0_0_1_0_1_0_0_1.wav")
    code = main(
        [
            "transcribe",
            str(wav),
            "--model",
            str(exp),
            "-o",
            str(tmp_path),
            "-f",
            "txt",
            "--verbose",
            "False",
        ]
    )
    assert code == 0
    words = (tmp_path / "0_0_1_0_1_0_0_1.txt").read_text().split()
    assert (
        sum(a == b for a, b in zip(words, "NO NO YES NO YES NO NO YES".split(), strict=False)) >= 6
    )
    searches = []
    real_transcribe = TrainedRecognizer.transcribe

    def spy(self, audio, **options):
        searches.append(options["beam_size"])
        return real_transcribe(self, audio, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrainedRecognizer, "transcribe", spy)
        for beam in ([], ["--beam_size", "5"]):  # greedy unless a beam is asked for, even 5
            output = ["-o", str(tmp_path / "spy"), "--overwrite", "--verbose", "False"]
            assert main(["transcribe", str(wav), "--model", str(exp), *output, *beam]) == 0
    assert searches == [1, 5]
    capsys.readouterr()
    code = main(["transcribe", str(wav), "--model", str(exp), "--temperature", "0.4"])
    assert code == 2 and "applies to Whisper models only" in capsys.readouterr().err

    # beam search with a word LM from the training transcripts, through eval and transcribe
    lm = tmp_path / "words.arpa"
    assert main(["lm", "train", str(yesno_data / "train.jsonl"), "-o", str(lm)]) == 0
    capsys.readouterr()
    test = str(yesno_data / "test.jsonl")
    assert main(["eval", str(exp), "--data", test, "--beam_size", "4", "--lm", str(lm)]) == 0
    assert float(capsys.readouterr().out.split("WER ")[1].split("%")[0]) < 20
    bad_lm = tmp_path / "bad.arpa"
    bad_lm.write_text("\\data\\\nngram 1=1\n")
    lowercase_lm = tmp_path / "lower.arpa"
    assert (
        main(
            ["lm", "train", str(yesno_data / "train.jsonl"), "-o", str(lowercase_lm), "--lowercase"]
        )
        == 0
    )
    for arguments, message in [
        (["--beam_size", "0"], "beam_size: must be at least 1"),
        (["--beam_size", "4", "--lm", str(bad_lm)], "not a complete ARPA file"),
        (["--beam_size", "4", "--lm", str(lowercase_lm)], "do not match the model's tokens"),
        (["--beam_size", "4", "--hotwords", "yes"], "hotword 'yes': the model has no token"),
        (["--ctc_weight", "0.5"], "ctc_weight applies to attention models"),
    ]:
        capsys.readouterr()
        assert main(["eval", str(exp), "--data", test, *arguments]) == 2, arguments
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
    code = main(
        [
            "transcribe",
            str(wav),
            "--model",
            str(exp),
            "--beam_size",
            "4",
            "--lm",
            str(lm),
            "--word_timestamps",
            "True",
            "-o",
            str(tmp_path),
            "-f",
            "json",
            "--overwrite",
        ]
    )
    assert code == 0
    words = json.loads((tmp_path / "0_0_1_0_1_0_0_1.json").read_text())["segments"][0]["words"]
    assert len(words) >= 6 and all(w["word"].strip() in ("YES", "NO") for w in words)
    assert all(0 <= w["start"] < w["end"] <= 6.8 for w in words)
    assert all(a["end"] <= b["start"] + 1e-6 for a, b in zip(words, words[1:], strict=False))
    assert all(0 < w["probability"] <= 1 for w in words), words


def test_resume_continues_after_the_last_checkpoint(tmp_path: Path, yesno_data: Path):
    exp = tmp_path / "exp"
    Trainer(
        load_recipe(write_recipe(tmp_path, yesno_data, epochs=1)), exp, device="cpu", progress=False
    ).run()
    longer = load_recipe(write_recipe(tmp_path, yesno_data, epochs=2))
    with pytest.raises(OnseiError, match="--resume"):
        Trainer(longer, exp, device="cpu", progress=False).run()
    first = torch.load(exp / "checkpoints" / "epoch001.pt", weights_only=False)
    state = Trainer(longer, exp, device="cpu", resume=True, progress=False).run()
    assert state.epoch == 2 and set(state.scores) == {1, 2}
    assert state.step == 2 * first["state"]["step"]
    assert (exp / "checkpoints" / "latest").read_text().strip() == "epoch002.pt"


def test_weights_of_another_architecture_or_a_broken_model_file_fail_in_one_line(
    tmp_path: Path, yesno_data: Path, capsys
):
    exp = tmp_path / "exp"
    recipe = write_recipe(tmp_path, yesno_data, epochs=1)
    assert main(["train", str(recipe), "--exp", str(exp)]) == 0
    wav = str(shared("yesno/waves_yesno/0_0_1_0_1_0_0_1.wav"))
    config = exp / "config.yaml"
    trained = config.read_text()
    config.write_text(trained.replace("layers: 2", "layers: 3"))  # as an older onsei would differ
    capsys.readouterr()
    assert main(["transcribe", wav, "--model", str(exp), "-o", str(tmp_path)]) != 0
    error = capsys.readouterr().err.strip()
    assert "do not fit" in error and "missing: encoder.blocks.2." in error, error
    assert len(error.splitlines()) == 1 and "Traceback" not in error

    config.write_text(trained)
    (exp / "model.pt").write_bytes(b"not a checkpoint")
    assert main(["transcribe", wav, "--model", str(exp), "-o", str(tmp_path)]) != 0
    error = capsys.readouterr().err.strip()
    assert "model.pt: unreadable" in error and len(error.splitlines()) == 1, error


def test_a_failed_checkpoint_write_keeps_the_previous_latest(tmp_path, yesno_data, monkeypatch):
    exp = tmp_path / "exp"
    recipe = load_recipe(write_recipe(tmp_path, yesno_data, epochs=2, average_best=2))
    real_write = trainer_module.atomic_write_bytes

    def disk_full_at_epoch_2(path, data):
        if Path(path).name == "epoch002.pt":
            raise OutputError(f"cannot write {path}: No space left on device")
        return real_write(path, data)

    monkeypatch.setattr(trainer_module, "atomic_write_bytes", disk_full_at_epoch_2)
    with pytest.raises(OutputError, match="No space left"):
        Trainer(recipe, exp, device="cpu", progress=False).run()
    assert (exp / "checkpoints" / "latest").read_text().strip() == "epoch001.pt"
    checkpoint = torch.load(exp / "checkpoints" / "epoch001.pt", weights_only=False)
    assert checkpoint["state"]["epoch"] == 1
    assert not list((exp / "checkpoints").glob("*.part"))


def test_non_finite_losses_are_skipped_and_logged(tmp_path, yesno_data, monkeypatch):
    from onsei.asr.models import CTCModel

    real_forward = CTCModel.forward
    calls = {"n": 0}

    def sometimes_nan(self, batch):
        calls["n"] += 1
        losses = real_forward(self, batch)
        if calls["n"] == 1 and self.training:
            losses["loss"] = losses["loss"] * float("nan")
        return losses

    monkeypatch.setattr(CTCModel, "forward", sometimes_nan)
    exp = tmp_path / "exp"
    state = Trainer(
        load_recipe(write_recipe(tmp_path, yesno_data, epochs=1)), exp, device="cpu", progress=False
    ).run()
    assert state.epoch == 1
    records = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    assert any(r.get("reason", "").startswith("loss nan") for r in records)


def test_missing_audio_is_reported_by_line_or_skipped(tmp_path: Path, yesno_data: Path):
    lines = (yesno_data / "train.jsonl").read_text().splitlines()
    broken = json.loads(lines[2])
    broken["audio"] = str(tmp_path / "gone.wav")
    lines[2] = json.dumps(broken)
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")
    recipe = load_recipe(write_recipe(tmp_path, yesno_data, epochs=1))
    recipe.data.train = str(tmp_path / "train.jsonl")
    with pytest.raises(OnseiError, match=r"train.jsonl:3: audio .*gone.wav does not exist"):
        Trainer(recipe, tmp_path / "exp", device="cpu", progress=False).run()
    state = Trainer(recipe, tmp_path / "exp2", device="cpu", skip_bad=True, progress=False).run()
    assert state.epoch == 1


def test_torchrun_trains_with_two_processes_and_writes_checkpoints_once(
    tmp_path: Path, yesno_data: Path
):
    exp = tmp_path / "exp"
    recipe = write_recipe(tmp_path, yesno_data, "ctc", epochs=2, max_batch_seconds=30)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node", "2", "-m", "onsei", "train", str(recipe), "--exp", str(exp)]
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoints = sorted(p.name for p in (exp / "checkpoints").iterdir())
    assert checkpoints == ["epoch001.pt", "epoch002.pt", "latest"]
    records = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if "wer" in r] == [1, 2]  # rank 0 alone validates
    speeds = [r for r in records if "audio_per_s" in r]
    # each rank trains on its share of every batch; both shares are counted
    train_size = len((yesno_data / "train.jsonl").read_text().splitlines())
    assert len(speeds) == 2 and all(r["train_utterances"] >= train_size for r in speeds)
    assert result.stdout.count("best dev WER") == 1
    model = onsei.load_model(str(exp))
    assert model.transcribe(str(shared("yesno/waves_yesno/0_0_1_0_1_0_0_1.wav"))).duration > 5


def test_a_chunked_ctc_model_streams_words_chunk_by_chunk(tmp_path: Path, yesno_data: Path):
    from onsei.recognizer import load_model
    from onsei.streaming.events import Committed, Final
    from onsei.streaming.sources import file_chunks

    exp = tmp_path / "exp"
    recipe = write_recipe(tmp_path, yesno_data, "ctc_streaming")
    assert main(["train", str(recipe), "--exp", str(exp)]) == 0
    model = load_model(str(exp))
    wav = shared("yesno/waves_yesno/0_0_1_0_1_0_0_1.wav")
    streamer = model.streamer()
    committed_at: list[tuple[float, Committed]] = []  # (audio received, event)
    for chunk in file_chunks(wav, chunk_seconds=0.1):
        for event in streamer.accept(chunk):
            if isinstance(event, Committed):
                committed_at.append((streamer.received / 16000, event))
    events = streamer.finish()
    final = events[-1]
    assert isinstance(final, Final)
    words = final.transcript.text.split()
    assert (
        sum(a == b for a, b in zip(words, "NO NO YES NO YES NO NO YES".split(), strict=False)) >= 6
    )
    # words come out while the audio is still arriving, each soon after it was spoken
    assert len(committed_at) >= 5
    assert all(received - event.end < 1.5 for received, event in committed_at)
    # the trained model's stream is the one of `onsei stream --model EXP`
    out = tmp_path / "out"
    assert main(["stream", str(wav), "--model", str(exp), "-o", str(out), "-f", "txt"]) == 0
    assert (out / "0_0_1_0_1_0_0_1.txt").read_text().split() == words
    assert main(["stream", str(wav), "--model", str(exp), "--language", "en"]) == 2
