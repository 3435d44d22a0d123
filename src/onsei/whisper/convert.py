"""Lossless conversion of CTranslate2 Whisper weights to Hugging Face transformers and to
openai-whisper, and of a transformers Whisper directory back to CTranslate2.

CTranslate2 fuses projections that the other two keep apart: a self-attention's query, key
and value are one ``linear_0`` (rows ``[q; k; v]``; the key has no bias, stored as zeros), a
cross-attention's key and value one ``linear_1`` (rows ``[k; v]``), with its query in
``linear_0`` and its output in ``linear_2``. The output projection is tied to the token
embedding in all three formats. The names below follow ``ctranslate2.converters``'
``WhisperLoader``, which writes the same layout from transformers.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from onsei.errors import ModelError, OptionError
from onsei.languages import LANGUAGES
from onsei.whisper.ct2_weights import CT2Weights, read_ct2_weights

FORMATS = ("hf", "openai", "ct2")
OPENAI_CHECKPOINT = "model.pt"
"""The file name of an openai-whisper checkpoint inside the output directory."""


@dataclass(frozen=True)
class WhisperDims:
    """The sizes of a Whisper model, named as openai-whisper's ``ModelDimensions``."""

    n_mels: int
    n_vocab: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int

    @classmethod
    def of(cls, weights: CT2Weights) -> WhisperDims:
        def layers(stack: str) -> int:
            return len({m.group(1) for n in weights.variables if (m := _LAYER[stack].match(n))})

        audio_ctx, audio_state = weights["encoder/position_encodings/encodings"].shape
        text_ctx, text_state = weights["decoder/position_encodings/encodings"].shape
        return cls(
            n_mels=weights["encoder/conv1/weight"].shape[1],
            n_vocab=weights["decoder/embeddings/weight"].shape[0],
            n_audio_ctx=audio_ctx,
            n_audio_state=audio_state,
            n_audio_head=int(weights.scalar("encoder/num_heads")),
            n_audio_layer=layers("encoder"),
            n_text_ctx=text_ctx,
            n_text_state=text_state,
            n_text_head=int(weights.scalar("decoder/num_heads")),
            n_text_layer=layers("decoder"),
        )


_LAYER = {stack: re.compile(rf"{stack}/layer_(\d+)/") for stack in ("encoder", "decoder")}


def hf_state_dict(weights: CT2Weights) -> dict[str, np.ndarray]:
    """transformers ``WhisperForConditionalGeneration`` parameters from CTranslate2 weights
    (``proj_out.weight`` left out: it is tied to ``model.decoder.embed_tokens.weight``)."""
    dims = WhisperDims.of(weights)
    state: dict[str, np.ndarray] = {}

    def linear(target: str, source: str, rows: slice = slice(None)) -> None:
        state[f"{target}.weight"] = weights[f"{source}/weight"][rows]
        if not target.endswith("k_proj"):  # Whisper's keys have no bias
            state[f"{target}.bias"] = weights[f"{source}/bias"][rows]

    def norm(target: str, source: str) -> None:
        state[f"{target}.weight"] = weights[f"{source}/gamma"]
        state[f"{target}.bias"] = weights[f"{source}/beta"]

    def attention(target: str, source: str, cross: bool, width: int) -> None:
        parts = [slice(i * width, (i + 1) * width) for i in range(3)]
        if cross:
            linear(f"{target}.q_proj", f"{source}/linear_0")
            linear(f"{target}.k_proj", f"{source}/linear_1", parts[0])
            linear(f"{target}.v_proj", f"{source}/linear_1", parts[1])
            linear(f"{target}.out_proj", f"{source}/linear_2")
        else:
            for name, rows in zip(("q_proj", "k_proj", "v_proj"), parts, strict=True):
                linear(f"{target}.{name}", f"{source}/linear_0", rows)
            linear(f"{target}.out_proj", f"{source}/linear_1")
        norm(f"{target}_layer_norm", f"{source}/layer_norm")

    for conv in ("conv1", "conv2"):
        linear(f"model.encoder.{conv}", f"encoder/{conv}")
    for stack, count, width in (
        ("encoder", dims.n_audio_layer, dims.n_audio_state),
        ("decoder", dims.n_text_layer, dims.n_text_state),
    ):
        state[f"model.{stack}.embed_positions.weight"] = weights[
            f"{stack}/position_encodings/encodings"
        ]
        for i in range(count):
            target, source = f"model.{stack}.layers.{i}", f"{stack}/layer_{i}"
            attention(f"{target}.self_attn", f"{source}/self_attention", False, width)
            if stack == "decoder":
                attention(f"{target}.encoder_attn", f"{source}/attention", True, width)
            linear(f"{target}.fc1", f"{source}/ffn/linear_0")
            linear(f"{target}.fc2", f"{source}/ffn/linear_1")
            norm(f"{target}.final_layer_norm", f"{source}/ffn/layer_norm")
        norm(f"model.{stack}.layer_norm", f"{stack}/layer_norm")
    state["model.decoder.embed_tokens.weight"] = weights["decoder/embeddings/weight"]
    return state


_OPENAI_NAMES = [
    (r"^model\.encoder\.embed_positions\.weight$", "encoder.positional_embedding"),
    (r"^model\.decoder\.embed_positions\.weight$", "decoder.positional_embedding"),
    (r"^model\.decoder\.embed_tokens\.", "decoder.token_embedding."),
    (r"^model\.encoder\.layer_norm\.", "encoder.ln_post."),
    (r"^model\.decoder\.layer_norm\.", "decoder.ln."),
    (r"^model\.", ""),
    (r"\.layers\.", ".blocks."),
    (r"\.self_attn_layer_norm\.", ".attn_ln."),
    (r"\.encoder_attn_layer_norm\.", ".cross_attn_ln."),
    (r"\.self_attn\.", ".attn."),
    (r"\.encoder_attn\.", ".cross_attn."),
    (r"\.q_proj\.", ".query."),
    (r"\.k_proj\.", ".key."),
    (r"\.v_proj\.", ".value."),
    (r"\.out_proj\.", ".out."),
    (r"\.fc1\.", ".mlp.0."),
    (r"\.fc2\.", ".mlp.2."),
    (r"\.final_layer_norm\.", ".mlp_ln."),
]


def openai_name(hf_name: str) -> str:
    """The openai-whisper name of a transformers Whisper parameter."""
    for pattern, replacement in _OPENAI_NAMES:
        hf_name = re.sub(pattern, replacement, hf_name)
    return hf_name


class WhisperTokens:
    """The special token ids of a Whisper vocabulary (``vocabulary.txt`` of a CTranslate2
    model: one token per line, timestamps included)."""

    def __init__(self, vocabulary: list[str]):
        self.ids = {token: i for i, token in enumerate(vocabulary)}
        for token in ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"):
            if token not in self.ids:
                raise ModelError(f"not a Whisper vocabulary: no {token}")
        self.end = self.ids["<|endoftext|>"]
        self.start = self.ids["<|startoftranscript|>"]
        self.no_timestamps = self.ids["<|notimestamps|>"]
        self.previous = self.ids.get("<|startofprev|>")
        language_tokens = (f"<|{code}|>" for code in LANGUAGES)
        self.languages = {token: self.ids[token] for token in language_tokens if token in self.ids}
        self.tasks = {task: self.ids[f"<|{task}|>"] for task in ("transcribe", "translate")}

    @classmethod
    def of(cls, model_dir: Path) -> WhisperTokens:
        path = model_dir / "vocabulary.txt"
        if not path.is_file():
            raise ModelError(f"{model_dir}: no vocabulary.txt next to model.bin")
        return cls(path.read_text(encoding="utf-8").splitlines())


def _ct2_config(model_dir: Path) -> dict:
    path = model_dir / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _is_multilingual(dims: WhisperDims) -> bool:
    return dims.n_vocab >= 51865  # the English-only vocabularies have one language token less


def export_hf(model_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write a transformers ``WhisperForConditionalGeneration`` directory (float32 weights,
    config, generation config, processor: feature extractor and tokenizer) that loads and
    generates offline, from the CTranslate2 model in ``model_dir``."""
    import torch
    import transformers
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    transformers.logging.disable_progress_bar()  # "Writing model shards" of one file
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    weights = read_ct2_weights(model_dir)
    if weights.spec != "WhisperSpec":
        raise ModelError(f"{model_dir}: a CTranslate2 {weights.spec}, not a Whisper model")
    dims, tokens, ct2 = WhisperDims.of(weights), WhisperTokens.of(model_dir), _ct2_config(model_dir)
    suppress = list(ct2.get("suppress_ids", []))
    suppress_begin = list(ct2.get("suppress_ids_begin", [220, tokens.end]))
    config = WhisperConfig(
        vocab_size=dims.n_vocab,
        num_mel_bins=dims.n_mels,
        d_model=dims.n_audio_state,
        encoder_layers=dims.n_audio_layer,
        encoder_attention_heads=dims.n_audio_head,
        encoder_ffn_dim=weights["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_layers=dims.n_text_layer,
        decoder_attention_heads=dims.n_text_head,
        decoder_ffn_dim=weights["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=dims.n_audio_ctx,
        max_target_positions=dims.n_text_ctx,
        pad_token_id=tokens.end,
        bos_token_id=tokens.end,
        eos_token_id=tokens.end,
        decoder_start_token_id=tokens.start,
    )
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    state = {
        name: torch.from_numpy(array.astype(np.float32))
        for name, array in hf_state_dict(weights).items()
    }
    state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    model.tie_weights()
    multilingual = _is_multilingual(dims)
    generation = GenerationConfig(
        decoder_start_token_id=tokens.start,
        bos_token_id=tokens.end,
        eos_token_id=tokens.end,
        pad_token_id=tokens.end,
        max_length=dims.n_text_ctx,
        suppress_tokens=suppress,
        begin_suppress_tokens=suppress_begin,
        no_timestamps_token_id=tokens.no_timestamps,
        prev_sot_token_id=tokens.previous,
        is_multilingual=multilingual,
        alignment_heads=ct2.get("alignment_heads"),
        max_initial_timestamp_index=50,
        return_timestamps=False,
        # (transformers detects the language whenever the config has a lang_to_id at all)
        **({"lang_to_id": tokens.languages, "task_to_id": tokens.tasks} if multilingual else {}),
    )
    model.generation_config = generation
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer = WhisperTokenizerFast(
        tokenizer_file=str(model_dir / "tokenizer.json"),
        unk_token="<|endoftext|>",
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    features = WhisperFeatureExtractor(feature_size=dims.n_mels)
    WhisperProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(out_dir)
    features.save_pretrained(out_dir)  # preprocessor_config.json: faster-whisper reads n_mels there
    return out_dir


def export_openai(model_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write an openai-whisper checkpoint (``{"dims", "model_state_dict"}``, float16 as
    openai's own) to ``out_dir/model.pt``: ``whisper.load_model(that path)`` loads it."""
    import dataclasses

    import torch

    weights = read_ct2_weights(model_dir)
    if weights.spec != "WhisperSpec":
        raise ModelError(f"{model_dir}: a CTranslate2 {weights.spec}, not a Whisper model")
    state = {
        openai_name(name): torch.from_numpy(array.astype(np.float16))
        for name, array in hf_state_dict(weights).items()
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / OPENAI_CHECKPOINT
    checkpoint = {"dims": dataclasses.asdict(WhisperDims.of(weights)), "model_state_dict": state}
    torch.save(checkpoint, path)
    return path


def export_ct2(
    hf_dir: str | os.PathLike, out_dir: str | os.PathLike, quantization: str | None = None
) -> Path:
    """Convert a transformers Whisper directory to CTranslate2 (``ctranslate2``'s own
    converter) with its tokenizer and preprocessor files, so that faster-whisper and
    ``onsei transcribe --model out_dir`` load it."""
    from ctranslate2.converters import TransformersConverter

    hf_dir = Path(hf_dir)
    if not (hf_dir / "config.json").is_file():
        raise ModelError(f"{hf_dir}: not a transformers model directory (no config.json)")
    copied = [n for n in ("tokenizer.json", "preprocessor_config.json") if (hf_dir / n).is_file()]
    converter = TransformersConverter(str(hf_dir), copy_files=copied, load_as_float16=False)
    try:
        converter.convert(str(out_dir), quantization=quantization, force=True)
    except ValueError as error:
        raise OptionError(f"cannot convert {hf_dir} to CTranslate2: {error}") from error
    return Path(out_dir)
