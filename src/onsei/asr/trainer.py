"""One Trainer for every model family: batches, optimiser and schedule, validation,
checkpoints that survive crashes (and disk-full), resume, weight averaging, and
DistributedDataParallel under torchrun.

An experiment directory holds: config.yaml, tokenizer.json (+ tokenizer.model), cmvn.json,
checkpoints/epochNNN.pt and checkpoints/latest, log.jsonl (and tensorboard/ when TensorBoard is
installed), and model.pt (the average of the best epochs), which makes the directory loadable
with ``onsei.load_model(exp_dir)``.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from onsei.asr.metric_log import MetricLog
from onsei.asr.models import ASRModel, build_model, load_weights
from onsei.asr.recipe import Recipe, TrainConfig, dump_recipe
from onsei.asr.search import Searcher, SearchOptions
from onsei.audio import SAMPLE_RATE, load_audio
from onsei.data.batching import Batch, BucketBatchSampler, SpeechDataset, collate
from onsei.data.manifest import ManifestError, Utterance, read_manifest
from onsei.errors import AudioError, OnseiError
from onsei.features import FbankOptions, GlobalCMVN, log_mel_spectrogram
from onsei.files import atomic_write_bytes, atomic_write_text
from onsei.metrics import error_counts
from onsei.text.tokenizers import (
    CharTokenizer,
    SentencePieceTokenizer,
    Tokenizer,
    load_tokenizer,
)

CONFIG_FILE = "config.yaml"
CMVN_FILE = "cmvn.json"
MODEL_FILE = "model.pt"
LOG_FILE = "log.jsonl"


@dataclass
class TrainState:
    """What a checkpoint records besides the weights."""

    epoch: int = 0
    """Epochs completed."""
    step: int = 0
    """Optimiser updates done."""
    scores: dict[int, float] = field(default_factory=dict)
    """Dev error rate (WER, else CER) of each epoch's weights."""


def learning_rate_factor(config: TrainConfig, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak learning rate after ``step`` updates."""
    warmup = max(1, config.warmup_steps)

    def factor(step: int) -> float:
        step = max(step, 1)
        if config.scheduler == "noam":
            return min(step / warmup, math.sqrt(warmup / step))
        if step < warmup:
            return step / warmup
        if config.scheduler == "cosine":
            progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
            return 0.5 * (1 + math.cos(math.pi * progress))
        return 1.0

    return factor


class Trainer:
    """Train ``recipe`` into ``exp_dir``; ``resume`` continues from the latest checkpoint."""

    def __init__(
        self,
        recipe: Recipe,
        exp_dir: str | os.PathLike,
        *,
        device: str = "auto",
        resume: bool = False,
        skip_bad: bool = False,
        progress: bool = True,
        log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
    ):
        self.recipe = recipe
        self.exp_dir = Path(exp_dir)
        self.resume = resume
        self.skip_bad = skip_bad
        self.log = log
        self.rank = int(os.environ.get("RANK", 0))
        self.world_size = int(os.environ.get("WORLD_SIZE", 1))
        self.is_main = self.rank == 0
        self.progress = progress and self.is_main and sys.stderr.isatty()
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.world_size > 1 and device == "cuda":
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}"
        self.device = torch.device(device)
        self.checkpoints = self.exp_dir / "checkpoints"
        self.metrics: MetricLog | None = None

    # -- set-up ------------------------------------------------------------------------------

    def _check_experiment(self) -> None:
        latest = self.checkpoints / "latest"
        if latest.exists() and not self.resume:
            raise OnseiError(
                f"{self.exp_dir} already holds a training run: add --resume to continue it, "
                "or choose another --exp"
            )
        if self.resume and not latest.exists():
            raise OnseiError(f"{self.exp_dir}: nothing to resume (no checkpoints/latest)")

    def _read_data(self) -> tuple[list[Utterance], list[Utterance]]:
        data = self.recipe.data
        train, dev = read_manifest(data.train), read_manifest(data.dev)
        for name, utterances in ((data.train, train), (data.dev, dev)):
            missing = [u for u in utterances if not Path(u.audio).is_file()]
            if missing and not self.skip_bad:
                first = missing[0]
                raise ManifestError(
                    f"{name}:{first.line}: audio {first.audio} does not exist "
                    f"({len(missing)} such lines; --skip-bad leaves them out)"
                )
            for utterance in missing:
                self.log(f"skipped {name}:{utterance.line}: audio {utterance.audio} is missing")
        keep = {id(u) for u in train + dev if Path(u.audio).is_file()}
        return [u for u in train if id(u) in keep], [u for u in dev if id(u) in keep]

    def _tokenizer(self, train: list[Utterance]) -> Tokenizer:
        if (self.exp_dir / "tokenizer.json").exists():
            return load_tokenizer(self.exp_dir)
        config = self.recipe.tokenizer
        texts = [u.text for u in train]
        if config.type == "char":
            tokenizer: Tokenizer = CharTokenizer.train(texts, config.lowercase)
        else:
            tokenizer = SentencePieceTokenizer.train(
                texts, config.vocab_size, config.type, config.lowercase
            )
        if self.is_main:
            tokenizer.save(self.exp_dir)
        return tokenizer

    def _cmvn(self, train: list[Utterance]) -> GlobalCMVN:
        path = self.exp_dir / CMVN_FILE
        if path.exists():
            return GlobalCMVN.load(path)
        sample = list(train)
        random.Random(self.recipe.train.seed).shuffle(sample)
        options = FbankOptions(n_mels=self.recipe.features.n_mels)
        matrices = []
        for utterance in sample[: self.recipe.features.cmvn_utterances]:
            try:
                audio = torch.from_numpy(load_audio(utterance.audio))
            except AudioError as error:
                if not self.skip_bad:
                    raise ManifestError(
                        f"{self.recipe.data.train}:{utterance.line}: {error}"
                    ) from None
                continue
            matrices.append(log_mel_spectrogram(audio[None], options)[0])
        cmvn = GlobalCMVN.estimate(matrices)
        if self.is_main:
            cmvn.save(path)
        return cmvn

    # -- training ----------------------------------------------------------------------------

    def run(self) -> TrainState:
        """Train until the recipe's epochs (or time budget) are done; return the final state."""
        self._check_experiment()
        config = self.recipe.train
        _seed_everything(config.seed + self.rank)
        if self.world_size > 1:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        if self.is_main:
            atomic_write_text(self.exp_dir / CONFIG_FILE, dump_recipe(self.recipe))
            self.metrics = MetricLog(self.exp_dir / LOG_FILE, self.exp_dir / "tensorboard")
        train, dev = self._read_data()
        tokenizer = self._tokenizer(train)
        cmvn = self._cmvn(train)
        model = build_model(self.recipe.model, self.recipe.features, cmvn, tokenizer.vocab_size).to(
            self.device
        )
        dataset = SpeechDataset(train, tokenizer.encode, self.recipe.features.speeds)
        sampler = BucketBatchSampler(
            [u.duration for u in train],
            config.max_batch_seconds,
            seed=config.seed,
            rank=self.rank,
            world_size=self.world_size,
        )
        loader = torch.utils.data.DataLoader(
            _ErrorsAsItems(dataset),
            batch_sampler=sampler,
            collate_fn=self._collate,
            num_workers=config.num_workers,
            persistent_workers=False,
        )
        optimizer = torch.optim.Adam(
            model.parameters(),
            lr=config.lr,
            betas=(0.9, 0.98),
            eps=1e-9,
            weight_decay=config.weight_decay,
        )
        total_steps = config.epochs * max(1, len(sampler) // config.accum_grad)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, learning_rate_factor(config, total_steps)
        )
        state = TrainState()
        if self.resume:
            state = self._load_checkpoint(model, optimizer, scheduler, sampler)
            self.log(f"resumed {self.exp_dir} after epoch {state.epoch}")
        wrapped: torch.nn.Module = model
        if self.world_size > 1:
            wrapped = torch.nn.parallel.DistributedDataParallel(model)
        scaler = torch.amp.GradScaler("cuda", enabled=config.amp and self.device.type == "cuda")
        started = time.monotonic()
        while state.epoch < config.epochs:
            epoch = state.epoch + 1
            sampler.set_epoch(epoch)
            self._train_epoch(wrapped, loader, optimizer, scheduler, scaler, state, epoch)
            state.epoch = epoch
            if self.is_main:
                dev_scores = self.validate(model, dev, tokenizer)
                state.scores[epoch] = dev_scores["wer"]
                self._log_json({"epoch": epoch, "step": state.step, **dev_scores}, "dev")
                self.log(
                    f"epoch {epoch}: dev loss {dev_scores['loss']:.3f}, "
                    f"WER {100 * dev_scores['wer']:.1f}%, CER {100 * dev_scores['cer']:.1f}%"
                )
                self._save_checkpoint(model, optimizer, scheduler, sampler, state)
                self._average_best(model, state)
            self._barrier()
            budget = config.max_minutes
            if budget is not None and time.monotonic() - started > 60 * budget:
                self.log(f"stopping after epoch {epoch}: the {budget} minute budget is spent")
                break
        if self.metrics is not None:
            self.metrics.close()
        if self.world_size > 1:
            torch.distributed.destroy_process_group()
        return state

    def _collate(self, items: list[Any]) -> Batch | None:
        """Collate in the main process's terms: an unreadable utterance stops training with
        its manifest line, or is logged and left out with ``skip_bad``."""
        for item in items:
            if isinstance(item, AudioError):
                if not self.skip_bad:
                    raise ManifestError(f"{item} (--skip-bad leaves such files out)")
                self.log(f"skipped {item}")
        items = [item for item in items if not isinstance(item, AudioError)]
        return collate(items) if items else None

    def _train_epoch(self, model, loader, optimizer, scheduler, scaler, state, epoch) -> None:
        config = self.recipe.train
        model.train()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(
                total=len(loader.batch_sampler),
                desc=f"epoch {epoch}",
                leave=False,
                unit="batch",
                dynamic_ncols=True,
            )
        started, utterances, samples, pending = time.monotonic(), 0, 0, 0
        optimizer.zero_grad(set_to_none=True)
        for batch in loader:
            if bar is not None:
                bar.update(1)
            losses = None
            if batch is not None:
                batch = batch.to(self.device)
                with torch.autocast(self.device.type, enabled=scaler.is_enabled()):
                    losses = model(batch)
            usable = losses is not None and bool(torch.isfinite(losses["loss"]))
            if not self._on_every_rank(usable):  # under DDP all ranks skip the step together
                if losses is not None:
                    self._log_json(
                        {
                            "epoch": epoch,
                            "step": state.step,
                            "skipped": batch.ids,
                            "reason": f"loss {losses['loss'].item()}",
                        }
                    )
                optimizer.zero_grad(set_to_none=True)
                pending = 0
                continue
            loss = losses["loss"]
            scaler.scale(loss / config.accum_grad).backward()
            pending += 1
            utterances += len(batch.ids)
            samples += int(batch.waveform_lengths.sum())
            if pending < config.accum_grad:
                continue
            pending = 0
            scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if not torch.isfinite(norm):
                self._log_json(
                    {
                        "epoch": epoch,
                        "step": state.step,
                        "skipped": batch.ids,
                        "reason": "gradient norm is not finite",
                    }
                )
                optimizer.zero_grad(set_to_none=True)
                scaler.update()
                continue
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            state.step += 1
            rate = utterances / max(time.monotonic() - started, 1e-6)
            if bar is not None:
                bar.set_postfix(loss=f"{loss.item():.3f}", utt_s=f"{rate:.1f}")
            if self.is_main and state.step % 25 == 0:
                record = {k: round(float(v.detach()), 4) for k, v in losses.items()}
                self._log_json(
                    {
                        "epoch": epoch,
                        "step": state.step,
                        **record,
                        "lr": scheduler.get_last_lr()[0],
                        "utt_per_s": round(rate, 2),
                    }
                )
        if bar is not None:
            bar.close()
        self._log_throughput(epoch, state.step, time.monotonic() - started, utterances, samples)

    def _log_throughput(
        self, epoch: int, step: int, seconds: float, utterances: int, samples: int
    ) -> None:
        """Log the epoch's training speed over all processes: seconds of (speed-perturbed)
        audio and utterances per wall-clock second."""
        totals = torch.tensor([utterances, samples], dtype=torch.float64)
        if self.world_size > 1:
            torch.distributed.all_reduce(totals)
        audio_seconds = float(totals[1]) / SAMPLE_RATE
        self._log_json(
            {
                "epoch": epoch,
                "step": step,
                "train_seconds": round(seconds, 2),
                "train_utterances": int(totals[0]),
                "train_audio_seconds": round(audio_seconds, 1),
                "audio_per_s": round(audio_seconds / max(seconds, 1e-6), 2),
            }
        )

    @torch.no_grad()
    def validate(
        self, model: ASRModel, dev: list[Utterance], tokenizer: Tokenizer
    ) -> dict[str, float]:
        """Dev loss (no augmentation) and WER/CER of the default (greedy) search."""
        model.eval()
        searcher = Searcher(model, tokenizer.symbols(), SearchOptions())
        dataset = _ErrorsAsItems(SpeechDataset(dev, tokenizer.encode))
        sampler = BucketBatchSampler(
            [u.duration for u in dev], self.recipe.train.max_batch_seconds, shuffle=False
        )
        references, hypotheses, loss_sum, count = [], [], 0.0, 0
        texts = {u.id: u.text for u in dev}
        for indices in sampler:
            batch = self._collate([dataset[i] for i in indices])
            if batch is None:
                continue
            batch = batch.to(self.device)
            loss = model(batch)["loss"]
            if torch.isfinite(loss):
                loss_sum += loss.item() * len(batch.ids)
                count += len(batch.ids)
            recognized = searcher.recognize(batch.waveforms, batch.waveform_lengths)
            for utterance_id, best in zip(batch.ids, recognized, strict=True):
                references.append(" ".join(texts[utterance_id].split()))
                hypotheses.append(tokenizer.decode(best.tokens))
        model.train()
        if self.recipe.tokenizer.lowercase:
            references = [r.lower() for r in references]
        return {
            "loss": loss_sum / max(count, 1),
            "wer": error_counts(references, hypotheses, "word").rate,
            "cer": error_counts(references, hypotheses, "char").rate,
        }

    # -- checkpoints -------------------------------------------------------------------------

    def _save_checkpoint(self, model, optimizer, scheduler, sampler, state: TrainState) -> None:
        """Write epochNNN.pt, then point ``latest`` at it; a failed write (disk full) leaves
        the previous ``latest`` and its checkpoint untouched."""
        import io

        checkpoint = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "sampler": sampler.state_dict(),
            "state": {"epoch": state.epoch, "step": state.step, "scores": state.scores},
            "rng": _rng_state(),
        }
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        name = f"epoch{state.epoch:03d}.pt"
        atomic_write_bytes(self.checkpoints / name, buffer.getvalue())
        atomic_write_text(self.checkpoints / "latest", name + "\n")
        keep = set(self._best_epochs(state)) | {state.epoch}
        for path in self.checkpoints.glob("epoch*.pt"):
            if int(path.stem[5:]) not in keep:
                path.unlink()

    def _load_checkpoint(self, model, optimizer, scheduler, sampler) -> TrainState:
        name = (self.checkpoints / "latest").read_text().strip()
        checkpoint = torch.load(
            self.checkpoints / name, map_location=self.device, weights_only=False
        )
        load_weights(model, checkpoint["model"], str(self.checkpoints / name))
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        sampler.load_state_dict(checkpoint["sampler"])
        _set_rng_state(checkpoint["rng"])
        saved = checkpoint["state"]
        scores = {int(k): float(v) for k, v in saved["scores"].items()}
        return TrainState(saved["epoch"], saved["step"], scores)

    def _best_epochs(self, state: TrainState) -> list[int]:
        ranked = sorted(state.scores, key=lambda epoch: (state.scores[epoch], -epoch))
        return ranked[: self.recipe.train.average_best]

    def _average_best(self, model: ASRModel, state: TrainState) -> None:
        """model.pt = the mean of the weights of the best epochs (integer buffers from the best)."""
        import io

        best = self._best_epochs(state)
        states = [
            torch.load(
                self.checkpoints / f"epoch{e:03d}.pt", map_location="cpu", weights_only=False
            )["model"]
            for e in best
        ]
        averaged = {}
        for key, value in states[0].items():
            if value.is_floating_point():
                averaged[key] = sum(s[key] for s in states) / len(states)
            else:
                averaged[key] = value
        buffer = io.BytesIO()
        torch.save({"model": averaged, "vocab_size": model.vocab_size, "epochs": best}, buffer)
        atomic_write_bytes(self.exp_dir / MODEL_FILE, buffer.getvalue())

    def _log_json(self, record: dict[str, Any], prefix: str = "train") -> None:
        if self.metrics is not None:
            self.metrics.write(record, prefix)

    def _on_every_rank(self, condition: bool) -> bool:
        """Whether ``condition`` holds on every process (one tiny all-reduce under DDP)."""
        if self.world_size == 1:
            return condition
        flag = torch.tensor([1.0 if condition else 0.0], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
        return bool(flag.item() == 1.0)

    def _barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()


class _ErrorsAsItems(torch.utils.data.Dataset):
    """Hands an unreadable utterance's ``AudioError`` over as the item itself, so that it
    reaches the main process as one clean line instead of a worker's traceback."""

    def __init__(self, dataset: SpeechDataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        try:
            return self.dataset[index]
        except AudioError as error:
            return error


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
