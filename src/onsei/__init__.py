"""onsei (音声): offline speech recognition.

    import onsei
    model = onsei.load_model("base")
    transcript = model.transcribe("talk.flac", word_timestamps=True)
    print(transcript.text)

Heavy libraries (CTranslate2, PyAV, soundfile) load only when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "onsei.recognizer",
    "Recognizer": "onsei.recognizer",
    "transcribe": "onsei.api",
    "load_audio": "onsei.audio",
    "SAMPLE_RATE": "onsei.audio",
    "Transcript": "onsei.transcript",
    "Segment": "onsei.transcript",
    "Word": "onsei.transcript",
    "Turn": "onsei.transcript",
    "diarize": "onsei.diarization",
    "OnseiError": "onsei.errors",
    "AudioError": "onsei.errors",
    "ModelError": "onsei.errors",
    "OptionError": "onsei.errors",
}

if TYPE_CHECKING:
    from onsei.api import transcribe
    from onsei.audio import SAMPLE_RATE, load_audio
    from onsei.diarization import diarize
    from onsei.errors import AudioError, ModelError, OnseiError, OptionError
    from onsei.recognizer import Recognizer, load_model
    from onsei.transcript import Segment, Transcript, Turn, Word


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'onsei' has no attribute {name!r}")


__all__ = [
    "SAMPLE_RATE",
    "AudioError",
    "ModelError",
    "OnseiError",
    "OptionError",
    "Recognizer",
    "Segment",
    "Transcript",
    "Turn",
    "Word",
    "__version__",
    "diarize",
    "load_audio",
    "load_model",
    "transcribe",
]
