"""Whisper weights across formats: CTranslate2 -> transformers / openai-whisper -> CTranslate2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import shared

from onsei.cli import main
from onsei.errors import ModelError
from onsei.whisper.convert import WhisperDims, export_ct2, export_hf, openai_name
from onsei.whisper.ct2_weights import read_ct2_weights
from onsei.whisper.registry import resolve_whisper_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.en as a transformers directory, written by ``onsei convert``."""
    out = tmp_path_factory.mktemp("hf") / "tiny.en"
    assert main(["convert", "tiny.en", "--to", "hf", str(out)]) == 0
    return out


def test_reads_the_bundled_model_bin():
    weights = read_ct2_weights(resolve_whisper_model("tiny.en"))
    assert weights.spec == "WhisperSpec"
    assert weights.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert weights["decoder/projection/weight"].shape == (51864, 384)
    assert weights["encoder/conv1/weight"].dtype == np.float16
    dims = WhisperDims.of(weights)
    assert (dims.n_mels, dims.n_audio_layer, dims.n_text_layer, dims.n_audio_head) == (80, 4, 4, 6)
    assert (dims.n_audio_ctx, dims.n_text_ctx, dims.n_vocab) == (1500, 448, 51864)


def test_a_broken_model_bin_is_a_one_line_model_error(tmp_path: Path):
    original = (resolve_whisper_model("tiny.en") / "model.bin").read_bytes()
    for name, data in (("truncated", original[:100_000]), ("junk", b"\x06\x00\x00\x00junk")):
        path = tmp_path / name / "model.bin"
        path.parent.mkdir()
        path.write_bytes(data)
        with pytest.raises(ModelError, match="not a valid CTranslate2 model.bin"):
            read_ct2_weights(path.parent)
    (tmp_path / "text.bin").write_text("hello")
    with pytest.raises(ModelError, match="known version"):
        read_ct2_weights(tmp_path / "text.bin")


def test_transformers_and_back_is_lossless(tiny_hf: Path, tmp_path: Path):
    """CTranslate2 float16 -> transformers -> CTranslate2 float16 gives the same bytes."""
    original = read_ct2_weights(resolve_whisper_model("tiny.en"))
    export_ct2(tiny_hf, tmp_path / "ct2", quantization="float16")
    back = read_ct2_weights(tmp_path / "ct2")
    assert back.aliases == original.aliases
    for name, array in original.variables.items():
        assert back.variables[name].dtype == array.dtype, name
        assert np.array_equal(back.variables[name], array), name
    assert {"tokenizer.json", "preprocessor_config.json"} <= {p.name for p in tiny_hf.iterdir()}
    assert (tmp_path / "ct2" / "tokenizer.json").is_file()


def test_transformers_generates_what_ctranslate2_generates(tiny_hf: Path):
    """Greedy decoding of the converted model equals CTranslate2's on the same features."""
    import ctranslate2
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from onsei.audio import load_audio

    model = WhisperForConditionalGeneration.from_pretrained(tiny_hf).eval()
    processor = WhisperProcessor.from_pretrained(tiny_hf)
    engine = ctranslate2.models.Whisper(
        str(resolve_whisper_model("tiny.en")), compute_type="float32"
    )
    tokenizer = processor.tokenizer
    prompt = tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", "<|notimestamps|>"])
    clips = [json.loads(line)["audio"] for line in shared("clips/manifest.jsonl").open()][:3]
    for clip in clips:
        audio = load_audio(shared(f"clips/{clip}"))[: 30 * 16000]
        features = processor(audio, sampling_rate=16000, return_tensors="pt").input_features
        with torch.no_grad():
            ours = model.generate(features, num_beams=1, do_sample=False)[0].tolist()
        expected = engine.generate(
            ctranslate2.StorageView.from_array(features.numpy()), [prompt], beam_size=1
        )[0].sequences_ids[0]
        text = tokenizer.decode(ours, skip_special_tokens=True).strip()
        assert text == tokenizer.decode(expected).strip() and len(text) > 10


def test_multilingual_generation_config_names_languages_and_tasks(tmp_path: Path):
    from transformers import GenerationConfig

    out = export_hf(resolve_whisper_model("base"), tmp_path / "base")
    generation = GenerationConfig.from_pretrained(out)
    assert generation.is_multilingual
    assert generation.lang_to_id["<|en|>"] == 50259 and generation.lang_to_id["<|ja|>"] == 50266
    assert generation.task_to_id == {"transcribe": 50359, "translate": 50358}
    assert generation.no_timestamps_token_id == 50363 and generation.decoder_start_token_id == 50258


def test_openai_checkpoint_has_openai_whisper_names_and_dims(tmp_path: Path):
    import torch

    assert main(["convert", "tiny.en", "--to", "openai", str(tmp_path)]) == 0
    checkpoint = torch.load(tmp_path / "model.pt", weights_only=True)
    assert checkpoint["dims"] == {
        "n_mels": 80,
        "n_vocab": 51864,
        "n_audio_ctx": 1500,
        "n_audio_state": 384,
        "n_audio_head": 6,
        "n_audio_layer": 4,
        "n_text_ctx": 448,
        "n_text_state": 384,
        "n_text_head": 6,
        "n_text_layer": 4,
    }
    state = checkpoint["model_state_dict"]
    expected = {"encoder.positional_embedding", "decoder.positional_embedding"}
    expected |= {f"{m}.{p}" for m in ("encoder.conv1", "encoder.conv2") for p in ("weight", "bias")}
    expected |= {f"{m}.{p}" for m in ("encoder.ln_post", "decoder.ln") for p in ("weight", "bias")}
    expected.add("decoder.token_embedding.weight")
    for stack in ("encoder", "decoder"):
        for i in range(4):
            attentions = ("attn", "cross_attn") if stack == "decoder" else ("attn",)
            for attention in attentions:
                block = f"{stack}.blocks.{i}.{attention}"
                expected |= {f"{block}.{p}.weight" for p in ("query", "key", "value", "out")}
                expected |= {f"{block}.{p}.bias" for p in ("query", "value", "out")}
                expected |= {f"{block}_ln.weight", f"{block}_ln.bias"}
            for module in ("mlp.0", "mlp.2", "mlp_ln"):
                expected |= {
                    f"{stack}.blocks.{i}.{module}.weight",
                    f"{stack}.blocks.{i}.{module}.bias",
                }
    assert set(state) == expected
    assert all(t.dtype == torch.float16 for t in state.values())
    weights = read_ct2_weights(resolve_whisper_model("tiny.en"))
    query = state["decoder.blocks.1.cross_attn.query.weight"].numpy()
    assert np.array_equal(query, weights["decoder/layer_1/attention/linear_0/weight"])
    value = state["encoder.blocks.2.attn.value.weight"].numpy()
    assert np.array_equal(value, weights["encoder/layer_2/self_attention/linear_0/weight"][768:])
    assert openai_name("model.decoder.layers.3.encoder_attn.k_proj.weight") == (
        "decoder.blocks.3.cross_attn.key.weight"
    )


def test_convert_errors_are_one_line(tmp_path: Path, capsys):
    assert main(["convert", "tiny.en", "--to", "hf", str(tmp_path), "--quantization", "int8"]) != 0
    assert "--quantization applies to --to ct2 only" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "missing"), "--to", "openai", str(tmp_path)]) != 0
    assert "unknown model" in capsys.readouterr().err
    assert main(["convert", "tiny.en", "--to", "ct2", str(tmp_path / "out")]) != 0
    assert "not a transformers model directory" in capsys.readouterr().err
