"""Building blocks of the end-to-end models trained here: encoders (BLSTM, pyramidal BLSTM,
Transformer, Conformer), attention, attention decoders (LSTM speller, Transformer) and the
transducer's prediction and joint networks, configured by the dataclasses of ``config``."""
