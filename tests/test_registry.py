"""The bundled models, the one-time assembly of ``base``, and model names or paths."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from onsei.errors import ModelError
from onsei.whisper import registry
from onsei.whisper.registry import BUNDLED_MODELS, resolve_whisper_model


def test_tiny_en_ships_ready():
    path = resolve_whisper_model("tiny.en")
    assert (path / "model.bin").is_file() and (path / "tokenizer.json").is_file()


def test_base_is_joined_once_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ONSEI_CACHE", str(tmp_path))
    model = BUNDLED_MODELS["base"]
    assert not model.is_ready()
    path = resolve_whisper_model("base")
    assert path.parent == tmp_path
    weights = path / "model.bin"
    assert weights.stat().st_size == 145_217_532
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert digest == "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (path / name).is_file()
    mtime = weights.stat().st_mtime_ns
    assert resolve_whisper_model("base") == path
    assert weights.stat().st_mtime_ns == mtime  # reused, not joined again


def test_base_with_wrong_checksum_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ONSEI_CACHE", str(tmp_path))
    monkeypatch.setattr(registry, "_BASE_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="damaged"):
        resolve_whisper_model("base")
    assert not list(tmp_path.rglob("model.bin*"))  # nothing half-written is left to be trusted


def test_any_ctranslate2_whisper_directory_loads_by_path():
    tiny = resolve_whisper_model("tiny.en")
    assert resolve_whisper_model(str(tiny)) == tiny


def test_unknown_names_and_non_model_directories(tmp_path: Path):
    with pytest.raises(ModelError, match="unknown model 'large-v9'"):
        resolve_whisper_model("large-v9")
    with pytest.raises(ModelError, match="not a CTranslate2 Whisper model"):
        resolve_whisper_model(str(tmp_path))
