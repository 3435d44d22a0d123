"""LocalAgreement-2 (Macháček et al. 2023, whisper_streaming): a word is committed once two
consecutive decodings of the growing audio buffer agree on it and on every word before it.

Committed words are final. A hypothesis holds only the words after the committed ones (the
streamer forces the decoder through the committed text).
"""

from __future__ import annotations

from onsei.text.normalizers import normalize_plain
from onsei.transcript import Word


def same_word(a: Word, b: Word) -> bool:
    """Two decodings of one word: the same text, but for case and punctuation."""
    return normalize_plain(a.word) == normalize_plain(b.word)


class LocalAgreement:
    """The committed words of a stream and the tentative ones after them."""

    def __init__(self) -> None:
        self.committed: list[Word] = []
        self.tentative: list[Word] = []
        """The last hypothesis's words after the committed ones."""

    @property
    def committed_end(self) -> float:
        return self.committed[-1].end if self.committed else 0.0

    def update(self, hypothesis: list[Word], until: float = float("inf")) -> list[Word]:
        """Take a new hypothesis (stream times) of the words after the committed ones;
        return the words it commits: its longest prefix that the last hypothesis also had,
        of words that end by ``until``."""
        agreed = 0
        while (
            agreed < len(hypothesis)
            and agreed < len(self.tentative)
            and hypothesis[agreed].end <= until
            and same_word(hypothesis[agreed], self.tentative[agreed])
        ):
            agreed += 1
        commit, self.tentative = hypothesis[:agreed], hypothesis[agreed:]
        self.committed += commit
        return commit

    def flush(self) -> list[Word]:
        """Commit the tentative words (the speech ended, or the stream did)."""
        commit, self.tentative = self.tentative, []
        self.committed += commit
        return commit
