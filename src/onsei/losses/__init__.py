"""Training losses that no library here provides (RNN-T without torchaudio)."""
