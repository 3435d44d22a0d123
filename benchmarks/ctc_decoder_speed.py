"""CTC beam search speed and WER: onsei vs pyctcdecode vs flashlight-text, on the same saved
CTC outputs, side by side.

Inputs: the posteriors of the AN4 Conformer-CTC model of an4_training.py (run that first) on
AN4 test (130 utterances), and on 10 minutes of AN4 training audio, whose utterances' outputs
are joined into one long input (about 15,000 frames).

- onsei: ``CTCPrefixBeamSearch`` (its search compiled with numba), with the word 3-gram or
  the character 6-gram of the AN4 training transcripts (``onsei lm train``), or no LM; and
  the same search in Python (what onsei runs with hotwords or a KenLM binary model), which
  finds the same hypotheses.
- pyctcdecode 0.5 (pure Python; word LM through the ``kenlm`` module), same ARPA word LM.
- flashlight-text's lexicon-free decoder (C++), with the character 6-gram (a lexicon-free
  decoder needs a token LM) through its bundled KenLM, or no LM.

Pruning is set alike: tokens below log-probability -5 are not tried per frame, hypotheses 10
below the best are dropped (pyctcdecode's defaults); so is the penalty of a word (or word in
progress) the LM does not know (pyctcdecode's unk_score_offset -10 in log10 units, onsei's
default unk_penalty in natural log), and so is that of a word in progress no LM word begins
with: -10, not weighted (pyctcdecode's convention; onsei's default is lm_weight * unk_penalty,
which prunes such words at once when it exceeds the beam_prune_logp margin); LM weight and
word bonus are those
an4_decoding.py chose on dev for onsei. Each decoder gets the whole list of inputs through its
batch call where it has one (onsei ``decode_batch``, pyctcdecode ``decode_batch`` without a
process pool), one process and thread each, after one untimed call (in which numba loads the
compiled search from its cache). Times are the median of ``--runs`` runs.

Peers are installed only for this benchmark, without their dependencies:
    .venv/bin/pip install --no-deps pyctcdecode pygtrie flashlight-text kenlm

Usage: .venv/bin/python benchmarks/ctc_decoder_speed.py [--runs 3] [--beams 10 32 100]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import an4_decoding
import an4_training
import common
import numpy as np
import torch

from onsei.asr.recognizer import load_trained_model
from onsei.data.batching import BucketBatchSampler, SpeechDataset, collate
from onsei.data.manifest import read_manifest
from onsei.decoding.ctc import CTCBeamOptions, CTCPrefixBeamSearch
from onsei.lm import read_arpa

EXP = an4_training.WORK / "exp" / "conformer_ctc"
WORK = an4_training.WORK / "ctc_speed"
TOKEN_MIN_LOGP, BEAM_PRUNE_LOGP = -5.0, -10.0
PARTIAL_WORD_PENALTY = -10.0
LONG_SECONDS = 600.0


def posteriors(exp, manifest, seconds: float | None = None) -> tuple[list[np.ndarray], list[str]]:
    """CTC log posteriors ``(T, V)`` of each utterance (in manifest order) and references;
    with ``seconds``, only the first utterances that add up to that much audio."""
    model, tokenizer = load_trained_model(exp)
    utterances = read_manifest(manifest)
    if seconds is not None:
        total, kept = 0.0, []
        for u in utterances:
            if total >= seconds:
                break
            kept.append(u)
            total += u.duration
        utterances = kept
    dataset = SpeechDataset(utterances, tokenizer.encode)
    outputs: dict[str, np.ndarray] = {}
    for indices in BucketBatchSampler([u.duration for u in utterances], 60.0, shuffle=False):
        batch = collate([dataset[i] for i in indices])
        with torch.no_grad():
            log_probs, frames = model.ctc_log_probs(batch.waveforms, batch.waveform_lengths)
        for utterance_id, row, length in zip(batch.ids, log_probs, frames.tolist(), strict=True):
            outputs[utterance_id] = row[:length].numpy().astype(np.float32)
    return [outputs[u.id] for u in utterances], [u.text for u in utterances]


class OnseiDecoder:
    name = "onsei"

    def __init__(self, symbols, beam, lm_path, lm_weight, word_bonus):
        options = CTCBeamOptions(
            beam_size=beam,
            lm_weight=lm_weight,
            word_bonus=word_bonus,
            token_min_logp=TOKEN_MIN_LOGP,
            beam_prune_logp=BEAM_PRUNE_LOGP,
            partial_word_penalty=PARTIAL_WORD_PENALTY,
        )
        self.search = CTCPrefixBeamSearch(symbols, options, read_arpa(lm_path) if lm_path else None)

    def decode_all(self, inputs: list[np.ndarray]) -> list[str]:
        return [hypotheses[0].text for hypotheses in self.search.decode_batch(inputs)]


class OnseiPythonDecoder(OnseiDecoder):
    name = "onsei, Python search"

    def __init__(self, symbols, beam, lm_path, lm_weight, word_bonus):
        super().__init__(symbols, beam, lm_path, lm_weight, word_bonus)
        self.search.compiled = None


class PyctcdecodeDecoder:
    name = "pyctcdecode"

    def __init__(self, symbols, beam, lm_path, lm_weight, word_bonus):
        from pyctcdecode import build_ctcdecoder

        labels = [_label(s, i) for i, s in enumerate(symbols)]
        self.beam = beam
        self.decoder = build_ctcdecoder(
            labels, kenlm_model_path=lm_path, alpha=lm_weight, beta=word_bonus
        )

    def decode_all(self, inputs: list[np.ndarray]) -> list[str]:
        texts = self.decoder.decode_batch(
            None,  # no multiprocessing pool: one process, as the others
            inputs,
            beam_width=self.beam,
            beam_prune_logp=BEAM_PRUNE_LOGP,
            token_min_logp=TOKEN_MIN_LOGP,
        )
        return [" ".join(text.split()) for text in texts]


class FlashlightDecoder:
    """Lexicon-free beam search; the LM (if any) must be over the model's tokens."""

    name = "flashlight-text"

    def __init__(self, symbols, beam, lm_path, lm_weight, word_bonus):
        from flashlight.lib.text.decoder import (
            CriterionType,
            LexiconFreeDecoder,
            LexiconFreeDecoderOptions,
            ZeroLM,
        )
        from flashlight.lib.text.dictionary import Dictionary

        self.symbols = symbols
        options = LexiconFreeDecoderOptions(
            beam_size=beam,
            beam_size_token=len(symbols),
            beam_threshold=-BEAM_PRUNE_LOGP,
            lm_weight=lm_weight,
            sil_score=word_bonus,
            log_add=True,
            criterion_type=CriterionType.CTC,
        )
        if lm_path:
            from flashlight.lib.text.decoder.kenlm import KenLM

            dictionary = Dictionary()
            for symbol in symbols:
                dictionary.add_entry("</s>" if symbol == "<sos/eos>" else symbol)
            lm = KenLM(lm_path, dictionary)
        else:
            lm = ZeroLM()
        self.decoder = LexiconFreeDecoder(options, lm, symbols.index("▁"), 0, [])

    def decode_all(self, inputs: list[np.ndarray]) -> list[str]:
        return [self.decode(x) for x in inputs]  # (no batch call in flashlight-text)

    def decode(self, log_probs: np.ndarray) -> str:
        emissions = np.ascontiguousarray(log_probs, dtype=np.float32)
        frames, vocab = emissions.shape
        best = self.decoder.decode(emissions.ctypes.data, frames, vocab)[0]
        tokens = [
            t for i, t in enumerate(best.tokens) if t != 0 and (i == 0 or t != best.tokens[i - 1])
        ]
        return " ".join("".join(self.symbols[t] for t in tokens).replace("▁", " ").split())


def _label(symbol: str, index: int) -> str:
    """pyctcdecode's label for a symbol: "" for blank, " " for the word boundary."""
    if index == 0:
        return ""
    if symbol == "▁":
        return " "
    if symbol == "<unk>":
        return "⁇"
    if symbol == "<sos/eos>":
        return "§"
    return symbol


def timed(decoder, inputs: list[np.ndarray], runs: int) -> tuple[float, list[str]]:
    decoder.decode_all(inputs[:1])
    times, texts = [], []
    for _ in range(runs):
        started = time.perf_counter()
        texts = decoder.decode_all(inputs)
        times.append(time.perf_counter() - started)
    return common.median(times), texts


def speedups(times: dict[tuple[str, int, str], tuple[float, float]]) -> list[list]:
    rows = []
    for (lm_name, beam, name), (seconds, long_seconds) in times.items():
        if name == "onsei":
            continue
        ours, ours_long = times[lm_name, beam, "onsei"]
        rows.append(
            [lm_name, beam, name, f"{seconds / ours:.1f}x", f"{long_seconds / ours_long:.1f}x"]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--beams", type=int, nargs="+", default=[10, 32, 100])
    parser.add_argument(
        "--exp",
        default=str(EXP),
        help="the CTC model whose outputs are decoded (default: "
        "an4_training's Conformer-CTC; its torchrun run's model works too)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    lms = an4_decoding.train_lms()
    tuned = json.loads((an4_decoding.FIGURES / "conformer_ctc.json").read_text())
    weights = tuned["rows"]["beam + LM"]["options"]
    _, tokenizer = load_trained_model(args.exp)
    symbols = tokenizer.symbols()
    test, references = posteriors(args.exp, an4_training.DATA / "test.jsonl")
    long_parts, _ = posteriors(args.exp, an4_training.DATA / "train.jsonl", LONG_SECONDS)
    long_input = [np.concatenate(long_parts)]
    cases = [
        ("no LM", None, (OnseiDecoder, OnseiPythonDecoder, PyctcdecodeDecoder, FlashlightDecoder)),
        ("word 3-gram", lms["word"], (OnseiDecoder, OnseiPythonDecoder, PyctcdecodeDecoder)),
        ("char 6-gram", lms["char"], (OnseiDecoder, OnseiPythonDecoder, FlashlightDecoder)),
    ]
    rows, times = [], {}
    for lm_name, lm_path, decoders in cases:
        weight = weights["lm_weight"] if lm_path else 0.0
        bonus = weights["word_bonus"] if lm_path else 0.0
        for beam in args.beams:
            for kind in decoders:
                decoder = kind(symbols, beam, lm_path, weight, bonus)
                seconds, texts = timed(decoder, test, args.runs)
                long_seconds, _ = timed(decoder, long_input, args.runs)
                wer = common.corpus_wer(references, texts)
                times[lm_name, beam, kind.name] = (seconds, long_seconds)
                rows.append(
                    [
                        lm_name,
                        beam,
                        kind.name,
                        f"{wer:.2%}",
                        f"{seconds:.2f}",
                        f"{long_seconds:.2f}",
                    ]
                )
                print(" | ".join(map(str, rows[-1])), flush=True)
    headers = ["LM", "Beam", "Decoder", "AN4 test WER", "AN4 test s", "10-min input s"]
    body = (
        "## CTC beam search speed: onsei vs pyctcdecode vs flashlight-text (issue 4)\n\n"
        + common.header(common.this_command())
        + f"- Inputs: the posteriors of `{Path(args.exp).name}` on AN4 test "
        f"({len(test)} utterances, {sum(len(x) for x in test)} frames) and of "
        f"{LONG_SECONDS / 60:.0f} minutes of AN4 "
        f"training audio joined into one input ({len(long_input[0])} frames); 1 thread.\n"
        f"- LM weight {weights['lm_weight']}, word bonus {weights['word_bonus']} (chosen on dev "
        "for onsei by an4_decoding.py); token_min_logp -5, beam_prune_logp -10; unknown-word "
        "penalty -10 in log10 units (pyctcdecode's default, and onsei's since 2026-12-01); "
        "a word in progress that begins no LM word: -10 (pyctcdecode's; onsei's default is "
        "the LM weight times the unknown-word penalty), times its length / 6 past 6 "
        "characters (both decoders' rule).\n\n"
        + common.markdown_table(headers, rows)
        + "\n\nonsei's speed-up (peer's time / onsei's time):\n\n"
        + common.markdown_table(["LM", "Beam", "Peer", "AN4 test", "10-min input"], speedups(times))
    )
    common.write_section("ctc_decoder_speed", body)


if __name__ == "__main__":
    main()
