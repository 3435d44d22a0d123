"""Pretrained Whisper: the bundled-model registry, decoding options and the CTranslate2 engine."""
