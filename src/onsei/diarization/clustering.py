"""Clustering speaker embeddings into speakers, with the number of speakers given, bounded, or
found: agglomerative clustering (average linkage on cosine distance, cut at a threshold) or
spectral clustering (the number of speakers from the largest eigengap); a count found
outside the bounds given is moved to the nearest bound."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from onsei.errors import OptionError

METHODS = ("agglomerative", "spectral")
LEAST_NEIGHBOURS = 3
"""Spectral: each window keeps at least this many other windows as neighbours, which the
share kept does not give a recording of fewer than 14 windows (about 6 s of speech): with
one or two, a few seconds each of two voices fell apart into four to six speakers (2 s of
each of two AMI speakers made four, 3 s each five; two each now)."""
MOST_CLUSTERED = 2000
"""Embeddings clustered at once (13 minutes of speech in 0.4-s steps): both methods take time
and memory that grow as the square of the number (spectral: its cube), so a 3-hour meeting's
27,000 would need tens of gigabytes."""


@dataclass
class ClusteringOptions:
    method: str = "spectral"
    """Spectral with the GE2E embeddings was best on the AMI train excerpts
    (benchmarks/diarization.py tune)."""
    threshold: float = 0.4
    """Agglomerative: cosine distance at which clusters stop merging (tuned on the AMI train
    excerpts with the GE2E embeddings; 0.6 was best with the voicefilter d-vector)."""
    pruning: float = 0.3
    """Spectral: the share of each window's strongest affinities kept, its own among them
    (p-pruning; tuned on the AMI train excerpts), and at least ``LEAST_NEIGHBOURS`` others."""
    one_speaker_distance: float = 0.3
    """Spectral: when no two embeddings are further apart than this cosine distance, there is
    one speaker (the eigengap of a few windows finds speakers where there is one voice: a
    4-s clip of one synthetic voice, whose windows are at most 0.25 apart, gave four). In
    each AMI excerpt with more than one window, some two are 0.43 to 0.68 apart."""

    def validate(self) -> None:
        if self.method not in METHODS:
            raise OptionError(
                f"clustering: expected one of {', '.join(METHODS)}, got {self.method!r}"
            )


def cluster(
    embeddings: np.ndarray,
    num_speakers: int | None = None,
    min_speakers: int = 1,
    max_speakers: int | None = None,
    options: ClusteringOptions | None = None,
) -> np.ndarray:
    """Speaker index of each of ``embeddings`` ``(N, D)`` (L2-normalised), 0, 1, ...

    ``num_speakers`` fixes the count; otherwise it is found and kept within
    ``[min_speakers, max_speakers]`` (never more than there are embeddings). Of more than
    ``MOST_CLUSTERED`` embeddings, that many spread evenly are clustered and each of the
    others takes the speaker whose mean vector is nearest.
    """
    options = options or ClusteringOptions()
    options.validate()
    count = len(embeddings)
    if count > MOST_CLUSTERED:
        chosen = np.linspace(0, count - 1, MOST_CLUSTERED).round().astype(int)
        sample = embeddings[chosen]
        found = cluster(sample, num_speakers, min_speakers, max_speakers, options)
        centroids = np.stack([sample[found == k].mean(axis=0) for k in range(found.max() + 1)])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True) + 1e-12
        labels = (embeddings @ centroids.T).argmax(axis=1)
        labels[chosen] = found
        return _renumber(labels)
    if count == 0:
        return np.zeros(0, dtype=int)
    high = min(count, max_speakers or count)
    low = min(max(1, min_speakers), high)
    if num_speakers is not None:
        low = high = min(num_speakers, count)
    if count == 1 or high == 1:
        return np.zeros(count, dtype=int)
    if options.method == "spectral":
        return _spectral(embeddings, low, high, options.pruning, options.one_speaker_distance)
    return _agglomerative(embeddings, low, high, options.threshold)


def _agglomerative(embeddings: np.ndarray, low: int, high: int, threshold: float) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(embeddings, method="average", metric="cosine")
    labels = fcluster(tree, t=threshold, criterion="distance")
    found = len(set(labels))
    if not low <= found <= high:
        labels = fcluster(tree, t=min(max(found, low), high), criterion="maxclust")
    return _renumber(labels)


def _spectral(
    embeddings: np.ndarray, low: int, high: int, pruning: float, one_speaker_distance: float
) -> np.ndarray:
    from sklearn.cluster import KMeans

    similarity = embeddings @ embeddings.T
    if low == 1 and similarity.min() >= 1 - one_speaker_distance:
        return np.zeros(len(embeddings), dtype=int)
    affinity = np.clip(similarity, 0.0, 1.0)
    np.fill_diagonal(affinity, 0.0)  # neighbours are chosen among the other windows
    count = len(affinity)
    keep = max(int(round(pruning * count)) - 1, min(count - 1, LEAST_NEIGHBOURS))
    threshold = -np.sort(-affinity, axis=1)[:, keep - 1 : keep]
    affinity = np.where(affinity >= threshold, affinity, 0.0)
    np.fill_diagonal(affinity, 1.0)  # and each window keeps its own affinity
    affinity = (affinity + affinity.T) / 2
    degree = affinity.sum(axis=1)
    laplacian = np.diag(degree) - affinity
    scale = 1.0 / np.sqrt(np.maximum(degree, 1e-12))
    normalized = scale[:, None] * laplacian * scale[None, :]
    values, vectors = np.linalg.eigh(normalized)
    gaps = np.diff(values[: high + 1])
    speakers = int(np.clip(np.argmax(gaps) + 1, low, high))
    points = vectors[:, :speakers]
    points = points / (np.linalg.norm(points, axis=1, keepdims=True) + 1e-12)
    labels = KMeans(speakers, n_init=10, random_state=0).fit_predict(points)
    return _renumber(labels)


def _renumber(labels: np.ndarray) -> np.ndarray:
    """Speakers numbered 0, 1, ... in order of first appearance."""
    order: dict[int, int] = {}
    return np.array([order.setdefault(int(x), len(order)) for x in labels], dtype=int)
