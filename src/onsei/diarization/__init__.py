"""Speaker diarization: who spoke when, from speech regions, speaker embeddings and
clustering (``pipeline``), with DER scoring (``scoring``)."""

from onsei.diarization.pipeline import DiarizationOptions, diarize

__all__ = ["DiarizationOptions", "diarize"]
