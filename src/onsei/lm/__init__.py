"""N-gram language models for decoding: ARPA files (read, write, query) and their estimation
with interpolated modified Kneser-Ney."""

from onsei.lm.arpa import LanguageModelError, NgramLM, read_arpa, write_arpa
from onsei.lm.kneser_ney import kneser_ney

__all__ = ["LanguageModelError", "NgramLM", "kneser_ney", "read_arpa", "write_arpa"]
