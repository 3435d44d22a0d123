"""Train the speaker counting head (``onsei.diarization.counting``) on simulated conversations
and real meetings, and write ``speaker_count.npz``.

Data: conversations simulated from a corpus with speaker labels (AN4 train: 74 speakers,
42 minutes, read speech in synthetic rooms); conversations simulated from the stretches of the
AMI training excerpts where one speaker talks alone (14 speakers, 2.2 minutes of far-field,
spontaneous speech; 8 to 30 s long, so that the head also sees Whisper's padding); and the
AMI training excerpts themselves with their RTTM (10 x 30 s), each seen several times per
epoch since they are the only real meetings. The meeting conversations made the head count
the dev excerpts' overlapped frames with precision 0.64 (0.53 without them) at the same
recall (0.42). The two AMI development excerpts choose the epoch (their counts are never
trained on; the test excerpts are never seen). Held-out simulated conversations chose worse:
a head trained on 540 AN4 conversations and picked on 60 others counted the dev excerpts'
overlapped frames with precision 0.43 and recall 0.31 (the simulation is not a meeting
room). Whisper's encoder is frozen: its outputs are computed once, and only the head is
trained.

Usage (the shipped head; about 20 minutes for the AN4 conversations' features and 3 for the
meeting ones, then about half a minute per epoch on a 2-core CPU; the best epoch was the
third; ``--out-of-fold benchmarks/work/diarization/out_of_fold.npz`` also trains five heads
without one of the five meetings of the AMI train excerpts each (their meeting
conversations made without it too), for ``benchmarks/diarization.py tune``, about 30
minutes more):

    python -m onsei.diarization.train_counter ../shared/data/an4/train.jsonl \\
        ../shared/data/diarization/ami --out src/onsei/diarization/speaker_count.npz \\
        --features benchmarks/work/diarization/simulated.npz --conversations 400 \\
        --meeting-conversations 300 --epochs 8
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from onsei.audio import SAMPLE_RATE, load_audio
from onsei.diarization.counting import CLASSES, FRAME_SECONDS, CountHead, encoder_features
from onsei.diarization.simulate import (
    ConversationOptions,
    by_speaker,
    conversation,
    frame_counts,
    solo_clips,
    speech_clips,
)


@dataclass
class Example:
    features: np.ndarray
    """``(frames, dim)`` encoder output."""
    counts: np.ndarray
    """``(frames,)`` voices per frame, capped at ``CLASSES - 1``."""


def meeting_examples(folder: Path, split: str, whisper_model) -> dict[str, Example]:
    """The AMI excerpts of ``split`` (train, development, test) with their frame counts, by
    name."""
    from onsei.writers.rttm import read_rttm

    examples = {}
    for uri, turns in sorted(read_rttm(folder / f"debug.{split}.rttm").items()):
        audio = load_audio(folder / f"{uri}.wav")
        active = []
        for speaker in sorted({t.speaker for t in turns}):
            mask = np.zeros(len(audio), bool)
            for turn in (t for t in turns if t.speaker == speaker):
                mask[round(turn.start * SAMPLE_RATE) : round(turn.end * SAMPLE_RATE)] = True
            active.append(mask)
        features = encoder_features(whisper_model, audio)
        examples[uri] = _example(features, frame_counts(active, len(audio), FRAME_SECONDS))
    return examples


def meeting_groups(folder: Path, split: str = "train") -> list[list[str]]:
    """The excerpts of ``split`` grouped by meeting: those that share a speaker, directly or
    through others, are one group (the AMI train excerpts make five)."""
    from onsei.writers.rttm import read_rttm

    speakers = {
        u: {t.speaker for t in turns}
        for u, turns in read_rttm(folder / f"debug.{split}.rttm").items()
    }
    groups: list[tuple[set[str], list[str]]] = []
    for uri in sorted(speakers):
        voices, names = set(speakers[uri]), [uri]
        for group in [g for g in groups if g[0] & voices]:
            groups.remove(group)
            voices |= group[0]
            names += group[1]
        groups.append((voices, sorted(names)))
    return sorted(names for _, names in groups)


def simulated_examples(manifest: Path, count: int, whisper_model, seed: int = 0) -> list[Example]:
    """``count`` conversations of 30 s simulated from the utterances of ``manifest``."""
    from onsei.data.manifest import read_manifest

    utterances = read_manifest(manifest)
    clips = speech_clips([load_audio(u.audio) for u in utterances], [u.speaker for u in utterances])
    groups = by_speaker(clips)
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(count):
        audio, counts = conversation(groups, rng, ConversationOptions(), FRAME_SECONDS)
        examples.append(_example(encoder_features(whisper_model, audio), counts))
    return examples


MEETING_CONVERSATIONS = ConversationOptions(
    reverb_probability=0.0, snr_db=(20.0, 50.0), backchannel_probability=0.5
)
"""Conversations of meeting speech, which has its room and its noise already; with more
backchannels, for as much speech of three voices as in the AMI train excerpts (3 %)."""


def meeting_conversations(
    folder: Path,
    count: int,
    whisper_model,
    seed: int = 0,
    leave_out: Sequence[str] = (),
    seconds: tuple[float, float] = (8, 30),
) -> list[Example]:
    """``count`` conversations of ``seconds`` (uniform: shorter ones are padded by Whisper's
    encoder, as the end of a recording is) simulated from the stretches of the AMI train
    excerpts (but those named in ``leave_out``) where one speaker talks alone."""
    from onsei.writers.rttm import read_rttm

    clips = []
    for uri, turns in sorted(read_rttm(folder / "debug.train.rttm").items()):
        if uri not in leave_out:
            clips += solo_clips(load_audio(folder / f"{uri}.wav"), turns)
    groups = by_speaker(clips)
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(count):
        options = replace(MEETING_CONVERSATIONS, seconds=float(rng.uniform(*seconds)))
        audio, counts = conversation(groups, rng, options, FRAME_SECONDS)
        examples.append(_example(encoder_features(whisper_model, audio), counts))
    return examples


def _example(features: np.ndarray, counts: np.ndarray) -> Example:
    frames = min(len(features), len(counts))
    return Example(features[:frames], np.minimum(counts[:frames], CLASSES - 1))


def frame_scores(head: CountHead, examples: list[Example]) -> dict[str, float]:
    """Accuracy of the count, and precision/recall of speech (count > 0) and of overlapped
    speech (count > 1), over all frames of ``examples``."""
    truth, guess = [], []
    with torch.inference_mode():
        for example in examples:
            logits = head(torch.from_numpy(example.features)[None])[0]
            guess.append(logits.argmax(-1).numpy())
            truth.append(example.counts)
    t, g = np.concatenate(truth), np.concatenate(guess)
    scores = {"accuracy": float(np.mean(t == g))}
    for name, level in (("speech", 1), ("overlap", 2)):
        hit = np.sum((t >= level) & (g >= level))
        scores[f"{name}_precision"] = float(hit / max(1, np.sum(g >= level)))
        scores[f"{name}_recall"] = float(hit / max(1, np.sum(t >= level)))
    return scores


def train(
    examples: list[Example],
    validation: list[Example],
    epochs: int = 30,
    chunk_frames: int = 500,
    batch_size: int = 16,
    learning_rate: float = 2e-3,
    seed: int = 0,
) -> CountHead:
    """Train a head on random ``chunk_frames`` (10 s) crops of ``examples``; keep the epoch
    with the best count accuracy on ``validation``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dim = examples[0].features.shape[1]
    head = CountHead(dim)
    features = np.concatenate([e.features for e in examples])
    head.mean.copy_(torch.from_numpy(features.mean(0)))
    head.std.copy_(torch.from_numpy(features.std(0) + 1e-5))
    optimizer = torch.optim.AdamW(head.parameters(), lr=learning_rate, weight_decay=1e-2)
    best, best_state = -1.0, None
    for epoch in range(epochs):
        head.train()
        order = rng.permutation(len(examples))
        losses = []
        for first in range(0, len(order), batch_size):
            crops_x, crops_y = [], []
            for index in order[first : first + batch_size]:
                example = examples[index]
                start = int(rng.integers(0, max(1, len(example.counts) - chunk_frames + 1)))
                crops_x.append(example.features[start : start + chunk_frames])
                crops_y.append(example.counts[start : start + chunk_frames])
            length = min(len(c) for c in crops_y)
            x = torch.from_numpy(np.stack([c[:length] for c in crops_x]))
            y = torch.from_numpy(np.stack([c[:length] for c in crops_y])).long()
            logits = head(x)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, CLASSES), y.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 5.0)
            optimizer.step()
            losses.append(loss.item())
        head.eval()
        scores = frame_scores(head, validation)
        print(
            f"epoch {epoch + 1}: loss {np.mean(losses):.3f}, "
            f"dev accuracy {scores['accuracy']:.3f}, "
            f"overlap P/R {scores['overlap_precision']:.2f}/{scores['overlap_recall']:.2f}",
            flush=True,
        )
        if scores["accuracy"] > best:
            best = scores["accuracy"]
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_state)
    return head.eval()


def out_of_fold(
    simulated: list[Example],
    meetings: dict[str, Example],
    validation: list[Example],
    groups: list[list[str]],
    repeats: int,
    epochs: int,
    simulate_without: Callable[[list[str]], list[Example]],
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Each meeting's ``(frames, CLASSES)`` count probabilities from a head trained without
    its group (``groups``: excerpts of one meeting, ``meeting_groups``; ``simulate_without(
    held)``: conversations simulated from the other meetings): counts as the shipped head
    would give a meeting it never saw, its speakers and room unheard, for tuning the
    diarization on the same meetings."""
    probabilities = {}
    for fold, held in enumerate(groups):
        rest = [meetings[n] for n in sorted(meetings) if n not in held]
        examples = simulated + simulate_without(held) + rest * repeats
        head = train(examples, validation, epochs, seed=seed)
        with torch.inference_mode():
            for name in held:
                logits = head(torch.from_numpy(meetings[name].features)[None])[0]
                probabilities[name] = torch.softmax(logits, dim=-1).numpy()
        print(f"fold {fold + 1} of {len(groups)} ({', '.join(held)}) done", flush=True)
    return probabilities


def _cached(path: Path | None, count: int, make: Callable[[], list[Example]]) -> list[Example]:
    """The first ``count`` examples kept in ``path`` when it holds that many, else ``make()``'s
    (kept in ``path`` if given)."""
    if not count:
        return []
    if path is not None and path.exists():
        with np.load(path) as kept:
            if len(kept.files) // 2 >= count:
                return [
                    Example(kept[f"x{i}"].astype(np.float32), kept[f"y{i}"]) for i in range(count)
                ]
    examples = make()
    if path is not None:
        arrays = {f"x{i}": e.features.astype(np.float16) for i, e in enumerate(examples)}
        np.savez(path, **arrays, **{f"y{i}": e.counts for i, e in enumerate(examples)})
    return examples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("manifest", type=Path, help="utterances with speakers (AN4 train)")
    parser.add_argument("ami", type=Path, help="the AMI excerpts folder (debug.*.rttm)")
    parser.add_argument("--out", type=Path, default=Path("speaker_count.npz"))
    parser.add_argument("--conversations", type=int, default=600)
    parser.add_argument(
        "--meeting-conversations",
        type=int,
        default=0,
        help="conversations simulated from the AMI train excerpts' stretches of one voice",
    )
    parser.add_argument("--meeting-repeats", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="of the training and of the simulation (conversations kept in --features keep "
        "the seed of the run that simulated them)",
    )
    parser.add_argument(
        "--features",
        type=Path,
        default=None,
        help="a .npz file keeping the simulated conversations' encoder outputs between runs "
        "(those of the meeting conversations in the same name with .meetings.npz)",
    )
    parser.add_argument(
        "--out-of-fold",
        type=Path,
        default=None,
        help="also write each AMI train excerpt's counts from a head trained without its "
        "meeting (.npz, by name; one fold per meeting), for benchmarks/diarization.py tune",
    )
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs: at least 1")
    from onsei.recognizer import load_model

    torch.set_num_threads(1)  # (small batches: one thread is as fast, and shares the CPU)
    whisper_model = load_model("tiny.en", device="cpu").model
    started = time.monotonic()
    meetings = meeting_examples(args.ami, "train", whisper_model)
    validation = list(meeting_examples(args.ami, "development", whisper_model).values())
    simulated = _cached(
        args.features,
        args.conversations,
        lambda: simulated_examples(args.manifest, args.conversations, whisper_model, args.seed),
    )

    def simulate_without(held: list[str]) -> list[Example]:
        if not args.meeting_conversations:
            return []
        return meeting_conversations(
            args.ami, args.meeting_conversations, whisper_model, args.seed, held
        )

    from_meetings = _cached(
        args.features and args.features.with_suffix(".meetings.npz"),
        args.meeting_conversations,
        lambda: simulate_without([]),
    )
    print(
        f"features of {len(simulated) + len(from_meetings)} conversations in "
        f"{time.monotonic() - started:.0f} s"
    )
    if args.out_of_fold is not None:
        groups = meeting_groups(args.ami)
        folds = out_of_fold(
            simulated,
            meetings,
            validation,
            groups,
            args.meeting_repeats,
            args.epochs,
            simulate_without,
            args.seed,
        )
        np.savez(args.out_of_fold, **folds)
    examples = simulated + from_meetings + list(meetings.values()) * args.meeting_repeats
    head = train(examples, validation, args.epochs, seed=args.seed)
    head.save(args.out)
    print(f"wrote {args.out}: dev {frame_scores(head, validation)}")


if __name__ == "__main__":
    main()
