"""Search for the trained models: CTC greedy and prefix beam search (with LM fusion, hotwords)."""
