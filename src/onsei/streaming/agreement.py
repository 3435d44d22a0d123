"""LocalAgreement-2 (Macháček et al. 2023, whisper_streaming): a word is committed once two
consecutive decodings of the growing audio buffer agree on it and on every word before it.

Committed words are final. Each new hypothesis is first aligned with what is committed: its
words that end before the committed ones do are dropped, and so are leading words that repeat
the last committed ones (Whisper re-transcribes the audio it has already committed, and its
timestamps move by a few tens of milliseconds between decodings).
"""

from __future__ import annotations

from onsei.text.normalizers import normalize_plain
from onsei.transcript import Word

_OVERLAP_TOLERANCE = 0.1
"""A hypothesis word starting this close before the committed end may still be new."""
_MAX_REPEAT = 5
"""The longest run of committed words a hypothesis may repeat at its start."""


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

    def update(self, hypothesis: list[Word]) -> list[Word]:
        """Take a new hypothesis (stream times) of the whole buffer; return the words it
        commits: the longest prefix of its new words that the last hypothesis also had."""
        new = self._new_words(hypothesis)
        agreed = 0
        while (
            agreed < len(new)
            and agreed < len(self.tentative)
            and same_word(new[agreed], self.tentative[agreed])
        ):
            agreed += 1
        commit, self.tentative = new[:agreed], new[agreed:]
        self.committed += commit
        return commit

    def flush(self) -> list[Word]:
        """Commit the tentative words (the speech ended, or the stream did)."""
        commit, self.tentative = self.tentative, []
        self.committed += commit
        return commit

    def _new_words(self, hypothesis: list[Word]) -> list[Word]:
        end = self.committed_end
        new = [w for w in hypothesis if w.start > end - _OVERLAP_TOLERANCE]
        if not new or not self.committed or abs(new[0].start - end) > 1.0:
            return new
        # leading words that repeat the last committed ones (the longest such run)
        for n in range(min(_MAX_REPEAT, len(self.committed), len(new)), 0, -1):
            tail = self.committed[-n:]
            if all(same_word(a, b) for a, b in zip(tail, new[:n], strict=True)):
                return new[n:]
        return new
