"""Overlapped speech in a diarization: where the speaker counter (``counting``) hears two or
more voices, the speakers besides the one the embeddings chose are those who spoke nearest in
time (Bullock et al. 2020, "Overlap-aware diarization: resegmentation using neural end-to-end
overlapped speech detection"); and a recording in which several voices are heard at once for
long enough has at least that many speakers, whatever the clustering finds.
"""

from __future__ import annotations

import numpy as np

from onsei.transcript import Turn


def least_speakers(voices: np.ndarray, frame_seconds: float, seconds: float) -> int:
    """The largest ``k`` such that ``k`` or more voices are heard in at least ``seconds`` of
    ``voices`` ``(frames,)`` (each frame's count), at least 1."""
    most = int(voices.max(initial=1))
    for k in range(most, 1, -1):
        if np.sum(voices >= k) * frame_seconds >= seconds:
            return k
    return 1


def overlapping_turns(
    labels: np.ndarray, voices: np.ndarray, frame_seconds: float, min_seconds: float
) -> list[Turn]:
    """The turns of the other voices in overlapped speech.

    Args:
        labels: ``(frames,)`` the speaker of each frame (-1: nobody speaks).
        voices: ``(frames,)`` voices heard in each frame.
        frame_seconds: the frames' length.
        min_seconds: shorter turns are left out.

    Each frame where ``voices`` is ``k`` > 1 and someone speaks gets ``k - 1`` more speakers:
    those other than its own whose nearest frame is closest, speakers named as ``Turn``
    speakers ``SPEAKER_<label + 1>``.
    """
    speakers = [int(s) for s in np.unique(labels) if s >= 0]
    overlapped = np.flatnonzero((voices > 1) & (labels >= 0))
    if len(speakers) < 2 or not len(overlapped):
        return []
    frames = np.arange(len(labels))
    distance = np.stack([_distance_to(labels == s, frames) for s in speakers], axis=1)
    extra = np.zeros((len(labels), len(speakers)), bool)
    for frame in overlapped:
        order = [i for i in np.argsort(distance[frame]) if speakers[i] != labels[frame]]
        extra[frame, order[: voices[frame] - 1]] = True
    turns = []
    for column, speaker in enumerate(speakers):
        for start, end in runs_of(extra[:, column]):
            if (end - start) * frame_seconds >= min_seconds:
                turns.append(
                    Turn(start * frame_seconds, end * frame_seconds, f"SPEAKER_{speaker + 1}")
                )
    return turns


def _distance_to(mask: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """``(frames,)`` frames from each frame to the nearest frame of ``mask`` (inf: none)."""
    where = np.flatnonzero(mask)
    if not len(where):
        return np.full(len(frames), np.inf)
    after = np.clip(np.searchsorted(where, frames), 0, len(where) - 1)
    before = np.clip(after - 1, 0, len(where) - 1)
    return np.minimum(np.abs(frames - where[before]), np.abs(frames - where[after])).astype(float)


def runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` of each run of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))
