"""The models a server offers, loaded on first use and kept in a least-recently-used cache
within a memory budget: the bundled Whisper models, and the fine-tuned and trained models
found in a models directory (``onsei finetune`` and ``onsei train`` experiments)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onsei.errors import ModelError

ALIASES = {"whisper-1": None}
"""OpenAI's model name: the server's default model."""


@dataclass(frozen=True)
class ModelInfo:
    id: str
    """The name clients use (``model`` field; the web UI's choices)."""
    path: str
    """What ``load_model`` takes."""
    kind: str
    """"whisper", "finetuned" or "trained"."""
    size_bytes: int


def _directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def discover_models(models_dir: str | None) -> list[ModelInfo]:
    """The bundled models, then every experiment under ``models_dir`` (its folder name, or
    its path relative to ``models_dir``, is the model's id)."""
    from onsei.recognizer import is_trained_experiment
    from onsei.whisper.registry import BUNDLED_MODELS, FINETUNED_CT2_DIR, is_whisper_model_dir

    found = [
        ModelInfo(name, name, "whisper", model.size_bytes())
        for name, model in BUNDLED_MODELS.items()
    ]
    if models_dir is None or not Path(models_dir).is_dir():
        return found
    root = Path(models_dir)
    for config in sorted(root.rglob("*.json")) + sorted(root.rglob("config.yaml")):
        folder = config.parent
        name = str(folder.relative_to(root)) if folder != root else folder.name
        if config.name == "config.yaml" and is_trained_experiment(str(folder)):
            found.append(ModelInfo(name, str(folder), "trained", _directory_size(folder)))
        elif config.name == "results.json" and is_whisper_model_dir(folder / FINETUNED_CT2_DIR):
            size = _directory_size(folder / FINETUNED_CT2_DIR)
            found.append(ModelInfo(name, str(folder), "finetuned", size))
    unique: dict[str, ModelInfo] = {}
    for info in found:
        unique.setdefault(info.id, info)
    return list(unique.values())


class ModelPool:
    """``get(id)`` loads a model once and keeps it while the models kept fit in
    ``memory_limit_bytes`` (the least recently used leave first; the one asked for always
    stays). Thread-safe; loading happens outside the lock of other models."""

    def __init__(
        self,
        models: list[ModelInfo],
        default: str,
        memory_limit_bytes: int = 2 << 30,
        **load_options: Any,
    ):
        self.models = {m.id: m for m in models}
        if default not in self.models:
            raise ModelError(f"default model {default!r}: not one of {', '.join(self.models)}")
        self.default_model = default
        self.memory_limit = memory_limit_bytes
        self.load_options = load_options
        self._loaded: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def resolve(self, name: str | None) -> ModelInfo:
        """The model a request names (None or an alias: the default)."""
        if name in ALIASES:
            name = ALIASES[name]
        name = name or self.default_model
        if name not in self.models:
            raise ModelError(f"unknown model {name!r}: use one of {', '.join(self.models)}")
        return self.models[name]

    def get(self, name: str | None):
        from onsei.recognizer import load_model

        info = self.resolve(name)
        with self._lock:
            if info.id in self._loaded:
                self._loaded.move_to_end(info.id)
                return self._loaded[info.id]
            loading = self._loading.setdefault(info.id, threading.Lock())
        with loading:  # one load per model, even when requests for it arrive together
            with self._lock:
                if info.id in self._loaded:
                    return self._loaded[info.id]
            model = load_model(info.path, **self.load_options)
            with self._lock:
                self._loaded[info.id] = model
                self._evict(keep=info.id)
            return model

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def _evict(self, keep: str) -> None:
        while len(self._loaded) > 1 and self._used() > self.memory_limit:
            oldest = next(name for name in self._loaded if name != keep)
            del self._loaded[oldest]

    def _used(self) -> int:
        # int8 on CPU holds about half of the float16 weights; counted at full size, safely
        return sum(self.models[name].size_bytes for name in self._loaded)
