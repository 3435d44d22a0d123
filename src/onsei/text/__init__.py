"""Text: tokenizers, and the normalisers applied before scoring."""
