"""Speech corpora: JSONL manifests and the preparers that write them."""
