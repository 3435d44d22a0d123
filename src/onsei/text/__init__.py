"""Text: tokenizers (and, later, normalizers)."""
