"""``onsei finetune``: fine-tune a Whisper model on a manifest with transformers' Seq2SeqTrainer,
then export it to CTranslate2 so that every other onsei command runs it at engine speed.

The experiment directory holds::

    options.json        the FinetuneOptions of the run
    source_hf/          the starting model as transformers weights (converted from CTranslate2)
    encoder_cache/      with --freeze_encoder: the encoder's outputs of every utterance, computed
                        once (float16), so that each step runs the decoder only
    checkpoints/        Trainer checkpoints (model, optimizer, scheduler, RNG), for --resume
    log.jsonl           one line per Trainer log: loss, learning rate, eval WER/CER, ...
    hf/                 the best model by eval WER, with its processor (transformers), after
                        the interpolation with the starting weights, if asked for
    ct2/                the same model for CTranslate2: ``--model EXP`` loads it
    results.json        WER before (zero-shot) and after, the interpolation, epochs, minutes

Interpolation (WiSE-FT, Wortsman et al. 2022, "Robust fine-tuning of zero-shot models"): the
saved weights are ``(1 - a) * zero-shot + a * fine-tuned``. Fine-tuning on a narrow domain makes
Whisper forget some general speech; ``a`` below 1 gives back much of the general accuracy for a
little of the in-domain gain. ``--interpolation auto`` takes the smallest ``a`` of
INTERPOLATION_GRID whose eval WER is within ``interpolation_tolerance`` of the fine-tuned model's.

Labels are the manifest's text as given, after a space (Whisper's transcripts start with one),
between Whisper's prefix tokens (start of transcript, language and task for multilingual
models, no timestamps) and end of text; label padding is -100, so the loss ignores it.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainerCallback

from onsei.audio import SAMPLE_RATE, audio_duration, load_audio
from onsei.data.manifest import ManifestError, Utterance, read_manifest
from onsei.errors import AudioError, ModelError, OptionError, OutputError
from onsei.files import atomic_write_text
from onsei.metrics import error_counts
from onsei.text.normalizers import get_normalizer
from onsei.whisper.registry import FINETUNED_CT2_DIR

SOURCE_DIR, HF_DIR, CT2_DIR, CHECKPOINTS_DIR = "source_hf", "hf", FINETUNED_CT2_DIR, "checkpoints"
CACHE_DIR, OPTIONS_FILE, LOG_FILE, RESULTS_FILE = (
    "encoder_cache",
    "options.json",
    "log.jsonl",
    "results.json",
)
INTERPOLATION_GRID = (0.5, 0.6, 0.7, 0.8, 0.9)
"""The mixing weights ``--interpolation auto`` tries, smallest first (1.0 is the fine-tuned
model, already evaluated)."""
_CHECKPOINT_DONE = "trainer_state.json"
"""Written last into a Trainer checkpoint: a checkpoint without it is incomplete."""


@dataclass
class FinetuneOptions:
    train: str
    """JSONL manifest of the training utterances."""
    eval: str | None = None
    """Manifest scored with generate() after each epoch (and before the first): the best
    epoch by WER is kept. Without it the last epoch is kept."""
    model: str = "tiny.en"
    """Bundled name, CTranslate2 Whisper directory, transformers Whisper directory, or
    another fine-tuning experiment."""
    epochs: float = 5.0
    learning_rate: float = 1e-5
    warmup_steps: int = 50
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    eval_batch_size: int = 16
    freeze_encoder: bool = False
    """Train the decoder only; the encoder's outputs are then computed once and cached."""
    language: str | None = None
    """Multilingual models: the language of the data (default: the manifest's, if it has one)."""
    task: str = "transcribe"
    normalizer: str = "plain"
    """Applied to references and hypotheses before the eval WER (onsei.text.normalizers)."""
    max_minutes: float | None = None
    """Stop after this much training time (then evaluate and save); None: no limit."""
    generation_max_length: int = 128
    weight_decay: float = 0.0
    seed: int = 1234
    quantization: str | None = None
    """Weight type of the CTranslate2 export (default: float16, as the bundled models)."""
    device: str = "auto"
    interpolation: float | None = 1.0
    """Weight of the fine-tuned weights against the starting ones in the saved model (WiSE-FT):
    1.0 keeps the fine-tuned model; None chooses it on the eval set (``--interpolation auto``)."""
    interpolation_tolerance: float = 0.005
    """``--interpolation auto``: how much eval WER (0.005: half a point) may be given up."""

    def validate(self) -> None:
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise OptionError("epochs and learning_rate must be positive")
        if self.batch_size < 1 or self.eval_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise OptionError("batch sizes and gradient_accumulation_steps must be at least 1")
        if self.task not in ("transcribe", "translate"):
            raise OptionError(f"task: expected transcribe or translate, got {self.task!r}")
        get_normalizer(self.normalizer)
        if self.interpolation is None:
            if self.eval is None:
                raise OptionError("--interpolation auto chooses on the eval set: give --eval")
        elif not 0.0 < self.interpolation <= 1.0:
            raise OptionError(
                f"interpolation: expected auto or a weight in (0, 1], got {self.interpolation}"
            )
        if self.interpolation_tolerance < 0:
            raise OptionError("interpolation_tolerance must not be negative")


@dataclass
class FinetuneResult:
    exp_dir: str
    zero_shot_wer: float | None
    best_wer: float | None
    best_checkpoint: str | None
    interpolation: float
    """Weight of the fine-tuned weights in the saved model (1.0: not interpolated)."""
    interpolation_wers: dict[str, float]
    """Eval WER of each weight tried (keys "0.7", ...; "1.0" is the fine-tuned model)."""
    epochs: float
    train_minutes: float
    ct2_dir: str


def finetune(options: FinetuneOptions, exp_dir: str | os.PathLike, resume: bool = False):
    """Fine-tune, keep the best model, export it to CTranslate2; returns a ``FinetuneResult``.

    Raises:
        ManifestError: a manifest line names missing or unreadable audio or has no text.
        ModelError, OptionError: the model cannot be found or the options do not fit it.
        OutputError: the disk is full (the last complete checkpoint stays usable).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    options.validate()
    exp = Path(exp_dir)
    checkpoint = _prepare_experiment(exp, options, resume)
    train_set = _checked_utterances(options.train, require_text=True)
    eval_set = _checked_utterances(options.eval, require_text=False) if options.eval else None
    if eval_set is not None and not any(get_normalizer("plain")(u.text) for u in eval_set):
        raise ManifestError(f"{options.eval}: no utterance has a transcript to score against")
    try:
        return _run(options, exp, train_set, eval_set, checkpoint)
    except OSError as error:
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputError(
                f"{exp}: the disk is full ({error.strerror}); free space and rerun with "
                "--resume: training continues from the last complete checkpoint"
            ) from None
        raise


def _prepare_experiment(exp: Path, options: FinetuneOptions, resume: bool) -> Path | None:
    """Write (or, on resume, check) options.json; the checkpoint to resume from, if any."""
    saved_path = exp / OPTIONS_FILE
    if resume:
        if not saved_path.is_file():
            raise OptionError(f"--resume: {exp} holds no fine-tuning run ({OPTIONS_FILE})")
        saved = json.loads(saved_path.read_text(encoding="utf-8"))
        for key in ("model", "train", "eval", "freeze_encoder", "language", "task"):
            if saved.get(key) != getattr(options, key):
                raise OptionError(
                    f"--resume: {key} differs from the run in {exp} "
                    f"({saved.get(key)!r} there, {getattr(options, key)!r} now)"
                )
        return last_complete_checkpoint(exp / CHECKPOINTS_DIR)
    if (exp / CHECKPOINTS_DIR).is_dir() and any((exp / CHECKPOINTS_DIR).iterdir()):
        raise OptionError(f"{exp} holds a fine-tuning run: --resume it, or choose another --exp")
    atomic_write_text(saved_path, json.dumps(dataclasses.asdict(options), indent=1) + "\n")
    return None


def last_complete_checkpoint(directory: Path) -> Path | None:
    """The newest Trainer checkpoint that was written to the end; incomplete ones (a crash or a
    full disk while saving) are removed."""
    if not directory.is_dir():
        return None
    found = []
    for path in directory.glob("checkpoint-*"):
        step = path.name.split("-")[-1]
        if not step.isdigit():
            continue
        if (path / _CHECKPOINT_DONE).is_file():
            found.append((int(step), path))
        else:
            shutil.rmtree(path, ignore_errors=True)
    return max(found)[1] if found else None


def _checked_utterances(manifest: str, require_text: bool) -> list[Utterance]:
    """The manifest's utterances, each with readable audio (and a transcript if
    ``require_text``: an eval set may hold utterances without speech)."""
    utterances = read_manifest(manifest)
    if not utterances:
        raise ManifestError(f"{manifest}: no utterances")
    for u in utterances:
        where = f"{manifest}:{u.line}"
        if require_text and not u.text.strip():
            raise ManifestError(f"{where}: empty text (utterance {u.id})")
        try:
            audio_duration(u.audio)
        except AudioError as error:
            raise ManifestError(f"{where}: {error}") from None
    return utterances


# -- the model and its processor ---------------------------------------------------------------


def source_model_dir(model: str, exp: Path) -> Path:
    """A transformers Whisper directory for ``model``: as given, the ``hf/`` of another
    fine-tuning experiment, or a CTranslate2 model converted once into ``exp/source_hf``."""
    path = Path(model).expanduser()
    if (path / HF_DIR / "config.json").is_file():
        return path / HF_DIR
    if (path / "config.json").is_file() and not (path / "model.bin").is_file():
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
        if config.get("model_type") != "whisper":
            raise ModelError(
                f"{path}: a transformers {config.get('model_type')} model, not Whisper"
            )
        return path
    from onsei.whisper.convert import export_hf
    from onsei.whisper.registry import resolve_whisper_model

    target = exp / SOURCE_DIR
    if not (target / "model.safetensors").is_file():
        export_hf(resolve_whisper_model(model), target)
    return target


def _language_of(options: FinetuneOptions, utterances: list[Utterance], multilingual: bool):
    if not multilingual:
        if options.language not in (None, "en") or options.task != "transcribe":
            raise OptionError(
                f"{options.model} is English-only: it cannot be fine-tuned for language "
                f"{options.language!r} or task {options.task!r}"
            )
        return None
    if options.language:
        return options.language
    languages = {u.language for u in utterances}
    if len(languages) == 1 and None not in languages:
        return languages.pop()
    raise OptionError(
        f"{options.model} is multilingual: give the data's --language (e.g. en); "
        f"the manifest names {'several languages' if len(languages) > 1 else 'none'}"
    )


# -- data ------------------------------------------------------------------------------------


class WhisperManifestDataset:
    """Utterances as Whisper inputs: ``input_features`` ``(n_mels, 3000)`` (30 s of log-mel,
    zero-padded) or, with a cache, ``encoder_states`` ``(1500, d_model)``; and ``labels``
    (token ids with the prefix, ending in end of text)."""

    def __init__(self, utterances, processor, encoder_states: np.ndarray | None = None):
        self.utterances = utterances
        self.processor = processor
        self.encoder_states = encoder_states
        self.labels = [processor.tokenizer(" " + u.text.strip()).input_ids for u in utterances]
        limit = processor.tokenizer.model_max_length
        for u, ids in zip(utterances, self.labels, strict=True):
            if len(ids) > min(limit, 448):
                raise ManifestError(f"line {u.line}: transcript of {u.id} is too long for Whisper")

    def __len__(self) -> int:
        return len(self.utterances)

    def features(self, index: int) -> np.ndarray:
        audio = load_audio(self.utterances[index].audio)
        if len(audio) > 30 * SAMPLE_RATE:
            u = self.utterances[index]
            raise ManifestError(f"line {u.line}: {u.id} is longer than Whisper's 30 s window")
        extracted = self.processor.feature_extractor(
            audio, sampling_rate=SAMPLE_RATE, return_tensors="np"
        )
        return extracted.input_features[0]

    def __getitem__(self, index: int) -> dict[str, Any]:
        import torch

        item: dict[str, Any] = {"labels": self.labels[index]}
        if self.encoder_states is not None:
            item["encoder_states"] = torch.from_numpy(self.encoder_states[index].astype(np.float32))
        else:
            item["input_features"] = torch.from_numpy(self.features(index))
        return item


@dataclass
class SpeechSeq2SeqCollator:
    """Stacks inputs (features, or cached encoder states as ``encoder_outputs``), pads labels
    with -100 and drops the leading start-of-transcript token, which the model adds itself
    when it shifts the labels right into decoder inputs."""

    decoder_start_token_id: int

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        batch: dict[str, Any] = {}
        if "encoder_states" in items[0]:
            states = torch.stack([i["encoder_states"] for i in items])
            batch["encoder_outputs"] = BaseModelOutput(last_hidden_state=states)
        else:
            batch["input_features"] = torch.stack([i["input_features"] for i in items])
        longest = max(len(i["labels"]) for i in items)
        labels = torch.full((len(items), longest), -100, dtype=torch.long)
        for row, item in enumerate(items):
            labels[row, : len(item["labels"])] = torch.tensor(item["labels"])
        if bool((labels[:, 0] == self.decoder_start_token_id).all()):
            labels = labels[:, 1:]
        batch["labels"] = labels
        return batch


def encoder_states(model, dataset: WhisperManifestDataset, cache: Path, batch_size: int):
    """The encoder's outputs ``(N, 1500, d_model)`` of every utterance, float16, computed once
    into ``cache`` (a .npy file reused while the manifest and model are unchanged)."""
    import torch
    from tqdm import tqdm

    key = hashlib.sha256(
        json.dumps([[u.audio, u.duration] for u in dataset.utterances]).encode()
        + str(model.config.to_json_string()).encode()
    ).hexdigest()[:16]
    path = cache.with_name(f"{cache.name}-{key}.npy")
    if path.is_file():
        return np.load(path, mmap_mode="r")
    cache.parent.mkdir(parents=True, exist_ok=True)
    for stale in cache.parent.glob(f"{cache.name}-*"):
        stale.unlink()
    partial = path.with_suffix(".part")
    frames, width = model.config.max_source_positions, model.config.d_model
    states = np.lib.format.open_memmap(
        partial, mode="w+", dtype=np.float16, shape=(len(dataset), frames, width)
    )
    encoder = model.get_encoder()
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in tqdm(range(0, len(dataset), batch_size), desc=f"encoding {cache.name}"):
            stop = min(start + batch_size, len(dataset))
            features = np.stack([dataset.features(i) for i in range(start, stop)])
            hidden = encoder(torch.from_numpy(features).to(device)).last_hidden_state
            states[start:stop] = hidden.float().cpu().numpy().astype(np.float16)
    states.flush()
    del states
    os.replace(partial, path)
    return np.load(path, mmap_mode="r")


# -- training --------------------------------------------------------------------------------


def _run(options, exp, train_set, eval_set, checkpoint):
    import torch
    import transformers
    from transformers import (
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    # (its warnings here are about the tied output projection and generate()'s arguments)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()  # loading and saving weights; not training

    from onsei.whisper.convert import export_ct2

    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device cuda: torch sees no CUDA device")
    torch.manual_seed(options.seed)
    source = source_model_dir(options.model, exp)
    generation = json.loads((source / "generation_config.json").read_text(encoding="utf-8"))
    multilingual = bool(generation.get("is_multilingual", False))
    language = _language_of(options, train_set, multilingual)
    processor = WhisperProcessor.from_pretrained(source)
    model = WhisperForConditionalGeneration.from_pretrained(source)
    if multilingual:
        processor.tokenizer.set_prefix_tokens(language=language, task=options.task)
        model.generation_config.language = language
        model.generation_config.task = options.task
    model.generation_config.forced_decoder_ids = None
    model.config.use_cache = False  # training; generate() turns the cache on for itself
    if options.freeze_encoder:
        model.get_encoder().requires_grad_(False)
    model.to(device)

    def dataset(utterances, name):
        data = WhisperManifestDataset(utterances, processor)
        if options.freeze_encoder:
            states = encoder_states(model, data, exp / CACHE_DIR / name, options.eval_batch_size)
            data = WhisperManifestDataset(utterances, processor, states)
        return data

    train_data = dataset(train_set, "train")
    eval_data = dataset(eval_set, "eval") if eval_set else None
    normalize = get_normalizer(options.normalizer)
    tokenizer = processor.tokenizer

    def compute_metrics(prediction) -> dict[str, float]:
        tokens = prediction.predictions
        tokens = np.where(tokens < 0, tokenizer.pad_token_id, tokens)  # -100: padding
        hypotheses = [
            normalize(h) for h in tokenizer.batch_decode(tokens, skip_special_tokens=True)
        ]
        references = [normalize(u.text) for u in eval_set]
        return {
            "wer": error_counts(references, hypotheses, "word").rate,
            "cer": error_counts(references, hypotheses, "char").rate,
        }

    strategy = "epoch" if eval_data is not None else "no"
    arguments = Seq2SeqTrainingArguments(
        output_dir=str(exp / CHECKPOINTS_DIR),
        num_train_epochs=options.epochs,
        learning_rate=options.learning_rate,
        warmup_steps=options.warmup_steps,
        weight_decay=options.weight_decay,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.eval_batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        eval_strategy=strategy,
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=eval_data is not None,
        metric_for_best_model="wer" if eval_data is not None else None,
        greater_is_better=False if eval_data is not None else None,
        eval_on_start=eval_data is not None and checkpoint is None,
        predict_with_generate=True,
        generation_max_length=options.generation_max_length,
        fp16=device == "cuda",
        use_cpu=device == "cpu",
        seed=options.seed,
        logging_steps=10,
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    trainer = Seq2SeqTrainer(
        model=model,
        args=arguments,
        train_dataset=train_data,
        eval_dataset=eval_data,
        data_collator=SpeechSeq2SeqCollator(model.config.decoder_start_token_id),
        compute_metrics=compute_metrics if eval_data is not None else None,
        processing_class=processor.feature_extractor,
        callbacks=[_JsonlLog(exp / LOG_FILE), _TimeBudget(options.max_minutes)],
    )
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    minutes = (time.perf_counter() - started) / 60
    interpolation, interpolation_wers = 1.0, {}
    if trainer.state.best_metric is not None:
        interpolation_wers[str(1.0)] = trainer.state.best_metric
    if options.interpolation != 1.0:
        zero_shot = WhisperForConditionalGeneration.from_pretrained(source).state_dict()
        interpolation = _interpolate(trainer, zero_shot, options, interpolation_wers)
    best_dir = exp / HF_DIR
    trainer.model.config.use_cache = True  # for generate() of whoever loads it
    trainer.save_model(str(best_dir))
    processor.save_pretrained(str(best_dir))
    processor.feature_extractor.save_pretrained(str(best_dir))
    ct2 = export_ct2(best_dir, exp / CT2_DIR, options.quantization or "float16")
    history = trainer.state.log_history
    evaluations = [r for r in history if "eval_wer" in r]
    result = FinetuneResult(
        exp_dir=str(exp),
        zero_shot_wer=next((r["eval_wer"] for r in evaluations if r.get("step") == 0), None),
        best_wer=trainer.state.best_metric,
        best_checkpoint=trainer.state.best_model_checkpoint,
        interpolation=interpolation,
        interpolation_wers=interpolation_wers,
        epochs=float(trainer.state.epoch or 0.0),
        train_minutes=round(minutes, 1),
        ct2_dir=str(ct2),
    )
    atomic_write_text(exp / RESULTS_FILE, json.dumps(dataclasses.asdict(result), indent=1) + "\n")
    return result


def interpolate_weights(model, zero_shot: dict, fine_tuned: dict, weight: float) -> None:
    """Load ``(1 - weight) * zero_shot + weight * fine_tuned`` (state dicts of the same
    architecture) into ``model``; integer buffers are taken from ``fine_tuned``."""
    import torch

    mixed = {
        name: torch.lerp(zero_shot[name].to(tensor), tensor, weight)
        if tensor.is_floating_point()
        else tensor
        for name, tensor in fine_tuned.items()
    }
    model.load_state_dict(mixed)


def _interpolate(trainer, zero_shot: dict, options, wers: dict[str, float]) -> float:
    """Interpolate the trainer's (best) model with the zero-shot weights, as
    ``options.interpolation`` says; each weight evaluated (when the trainer has an eval set)
    goes into ``wers``. Returns the weight kept."""
    fine_tuned = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    scored = trainer.eval_dataset is not None

    def evaluated(weight: float) -> float | None:
        interpolate_weights(trainer.model, zero_shot, fine_tuned, weight)
        if not scored:
            return None
        prefix = f"interpolation_{weight}"
        wers[str(weight)] = wer = trainer.evaluate(metric_key_prefix=prefix)[f"{prefix}_wer"]
        return wer

    if options.interpolation is not None:
        evaluated(options.interpolation)
        return options.interpolation
    limit = wers[str(1.0)] + options.interpolation_tolerance
    for weight in INTERPOLATION_GRID:
        wer = evaluated(weight)
        if wer is not None and wer <= limit:
            return weight
    interpolate_weights(trainer.model, zero_shot, fine_tuned, 1.0)
    return 1.0


class _JsonlLog(TrainerCallback):
    """Appends every Trainer log (loss, learning rate, eval WER, ...) to a JSONL file."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"time": round(time.time(), 1), "step": state.global_step, "epoch": state.epoch}
        record.update({k: v for k, v in logs.items() if isinstance(v, (int, float, str))})
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")


class _TimeBudget(TrainerCallback):
    """Stops training after ``max_minutes`` of it, with a last evaluation and checkpoint."""

    def __init__(self, max_minutes: float | None):
        self.limit = math.inf if max_minutes is None else 60 * max_minutes
        self.started = time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self.started > self.limit:
            control.should_training_stop = True
            control.should_evaluate = args.eval_strategy != "no"
            control.should_save = True
        return control
