"""N-gram language models for decoding: ARPA files (read, write, query), their estimation
with interpolated modified Kneser-Ney, and KenLM binaries through the kenlm module."""

from onsei.lm.arpa import LanguageModelError, NgramLM, read_arpa, write_arpa
from onsei.lm.kneser_ney import kneser_ney
from onsei.lm.model import LanguageModel, load_language_model

__all__ = [
    "LanguageModel",
    "LanguageModelError",
    "NgramLM",
    "kneser_ney",
    "load_language_model",
    "read_arpa",
    "write_arpa",
]
