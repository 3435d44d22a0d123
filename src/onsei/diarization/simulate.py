"""Simulated conversations for training who-speaks-when models: utterances of a few speakers
laid out in time with pauses, turn-taking and overlapped speech, in a shared room, with the
number of people speaking at every moment as the label (Landini et al. 2022, "From simulated
mixtures to simulated conversations").

Each speaker's utterances come from a corpus with speaker labels (``Utterance.speaker``); the
speech inside each utterance is found with Silero VAD, so that labels mark speech, not the
silence around it. Or they are the stretches of real meetings where one speaker talks alone
(``solo_clips``, from the meetings' reference turns): far-field, spontaneous speech, which
read speech in a synthetic room is not.

A conversation is a sequence of turns: a speaker other than the last one (usually) starts
after a pause, or before the last turn ends (overlap); now and then a third voice talks over
the others (a backchannel). All voices are in one synthetic room: one reverberation time,
a response of exponentially decaying noise for each voice, as each stands elsewhere in it
(not for meeting speech, which has its room already); and one noise floor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from onsei.audio import SAMPLE_RATE
from onsei.diarization.overlap import runs_of
from onsei.transcript import Turn


@dataclass
class SpeechClip:
    """One utterance's audio and where speech lies in it."""

    speaker: str
    audio: np.ndarray
    """``(samples,)`` float32 at 16 kHz."""
    speech: list[tuple[int, int]]
    """``(start, end)`` samples of speech inside ``audio``."""


@dataclass
class ConversationOptions:
    seconds: float = 30.0
    speaker_counts: Sequence[int] = (1, 2, 3, 4)
    speaker_weights: Sequence[float] = (0.1, 0.4, 0.3, 0.2)
    overlap_probability: float = 0.5
    """Chance that a turn starts before the one before it ends."""
    mean_pause: float = 1.0
    """Mean of the exponential pause between turns that do not overlap (seconds)."""
    backchannel_probability: float = 0.3
    """Chance per turn of a short utterance of another speaker laid over it."""
    utterances_per_turn: tuple[int, int] = (1, 3)
    gain_db: tuple[float, float] = (-12.0, 0.0)
    """Range of each speaker's level."""
    reverb_probability: float = 0.6
    rt60: tuple[float, float] = (0.15, 0.6)
    snr_db: tuple[float, float] = (10.0, 40.0)


def speech_clips(audios: Sequence[np.ndarray], speakers: Sequence[str]) -> list[SpeechClip]:
    """Each utterance with its speech regions (Silero VAD); utterances without speech are
    left out."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    vad = VadOptions(threshold=0.5, min_silence_duration_ms=200, speech_pad_ms=30)
    clips = []
    for audio, speaker in zip(audios, speakers, strict=True):
        regions = [(c["start"], c["end"]) for c in get_speech_timestamps(audio, vad)]
        if regions:
            clips.append(SpeechClip(speaker, audio, regions))
    return clips


def solo_clips(
    audio: np.ndarray, turns: Sequence[Turn], min_seconds: float = 0.5
) -> list[SpeechClip]:
    """The stretches of at least ``min_seconds`` of a recording ``(samples,)`` where one
    speaker of its reference ``turns`` talks and nobody else does, as clips of that speaker
    that are speech from end to end."""
    step = SAMPLE_RATE // 100  # 10 ms
    frames = -(-len(audio) // step)
    speakers = sorted({t.speaker for t in turns})
    active = np.zeros((len(speakers), frames), bool)
    for turn in turns:
        active[speakers.index(turn.speaker), round(turn.start * 100) : round(turn.end * 100)] = True
    alone = active & (active.sum(axis=0) == 1)
    clips = []
    for row, speaker in zip(alone, speakers, strict=True):
        for first, end in runs_of(row):
            piece = audio[first * step : end * step]
            if len(piece) >= min_seconds * SAMPLE_RATE:
                clips.append(SpeechClip(speaker, piece, [(0, len(piece))]))
    return clips


def by_speaker(clips: Sequence[SpeechClip]) -> dict[str, list[SpeechClip]]:
    groups: dict[str, list[SpeechClip]] = {}
    for clip in clips:
        groups.setdefault(clip.speaker, []).append(clip)
    return groups


def room_response(rng: np.random.Generator, rt60: float) -> np.ndarray:
    """A synthetic room impulse response: a direct path, then noise decaying by 60 dB in
    ``rt60`` seconds; ``(samples,)``, unit direct path."""
    length = int(rt60 * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.normal(size=length) * np.exp(-6.9 * t / rt60)
    tail *= 0.3 / max(np.sqrt(np.sum(tail**2)), 1e-9)
    tail[: int(0.002 * SAMPLE_RATE)] = 0.0  # the first reflections come after the direct path
    tail[0] = 1.0
    return tail.astype(np.float32)


def conversation(
    groups: dict[str, list[SpeechClip]],
    rng: np.random.Generator,
    options: ConversationOptions | None = None,
    frame_seconds: float = 0.02,
) -> tuple[np.ndarray, np.ndarray]:
    """One simulated conversation: ``(samples,)`` float32 audio of ``options.seconds`` and
    ``(frames,)`` the number of voices speaking in each frame of ``frame_seconds``."""
    options = options or ConversationOptions()
    total = round(options.seconds * SAMPLE_RATE)
    names = sorted(groups)
    count = int(rng.choice(options.speaker_counts, p=_normalised(options.speaker_weights)))
    chosen = list(rng.choice(names, size=min(count, len(names)), replace=False))
    gains = {s: 10 ** (rng.uniform(*options.gain_db) / 20) for s in chosen}
    tracks = {s: np.zeros(total, np.float32) for s in chosen}
    active = {s: np.zeros(total, bool) for s in chosen}

    def place(speaker: str, start: int, clips: int) -> int:
        """Lay ``clips`` utterances of ``speaker`` from ``start``; returns where speech ends."""
        position, end = start, start
        for _ in range(clips):
            clip = groups[speaker][rng.integers(len(groups[speaker]))]
            first, last = clip.speech[0][0], clip.speech[-1][1]
            piece = clip.audio[first:last]
            stop = min(total, position + len(piece))
            if stop <= position:
                break
            level = gains[speaker] * 10 ** (rng.uniform(-3, 3) / 20)
            peak = np.abs(piece).max() + 1e-9
            tracks[speaker][position:stop] += piece[: stop - position] * (0.5 * level / peak)
            for a, b in clip.speech:
                active[speaker][max(0, position + a - first) : min(total, position + b - first)] = (
                    True
                )
            end = stop
            position = stop + int(rng.exponential(0.15) * SAMPLE_RATE)
        return end

    time = int(rng.uniform(0, 1.5) * SAMPLE_RATE)
    last_speaker, last_end = None, 0
    while time < total:
        others = [s for s in chosen if s != last_speaker]
        pool = others if others and rng.random() < 0.85 else chosen
        speaker = pool[rng.integers(len(pool))]
        low, high = options.utterances_per_turn
        end = place(speaker, time, int(rng.integers(low, high + 1)))
        if len(chosen) > 1 and rng.random() < options.backchannel_probability:
            listener = [s for s in chosen if s != speaker]
            at = int(rng.uniform(time, max(time + 1, end)))
            place(listener[rng.integers(len(listener))], at, 1)
        last_speaker, last_end = speaker, end
        if len(chosen) > 1 and rng.random() < options.overlap_probability:
            overlap = rng.uniform(0.3, 3.0) * SAMPLE_RATE
            time = max(time + SAMPLE_RATE // 2, int(last_end - overlap))
        else:
            time = last_end + int(rng.exponential(options.mean_pause) * SAMPLE_RATE)
    mix = np.zeros(total, np.float32)
    if rng.random() < options.reverb_probability:
        from scipy.signal import fftconvolve

        rt60 = rng.uniform(*options.rt60)
        for speaker in chosen:
            response = room_response(rng, rt60)
            mix += fftconvolve(tracks[speaker], response)[:total].astype(np.float32)
    else:
        mix = sum(tracks.values(), mix)
    power = np.mean(mix**2) + 1e-10
    snr = rng.uniform(*options.snr_db)
    mix += rng.normal(scale=np.sqrt(power / 10 ** (snr / 10)), size=total).astype(np.float32)
    mix *= 0.9 / max(np.abs(mix).max(), 1e-6) * rng.uniform(0.2, 1.0)
    return mix.astype(np.float32), frame_counts(list(active.values()), total, frame_seconds)


def frame_counts(active: list[np.ndarray], total: int, frame_seconds: float) -> np.ndarray:
    """``(frames,)`` voices speaking at the centre of each frame of ``frame_seconds``, from
    per-speaker ``(total,)`` activity."""
    step = round(frame_seconds * SAMPLE_RATE)
    centres = np.arange(step // 2, total, step)
    if not active:
        return np.zeros(len(centres), int)
    return np.sum([a[centres] for a in active], axis=0).astype(int)


def _normalised(weights: Sequence[float]) -> np.ndarray:
    array = np.asarray(weights, dtype=float)
    return array / array.sum()
