"""CTC decoding: batched greedy search, and prefix beam search with n-gram LM shallow fusion,
hotword boosting, word time offsets and n-best lists (Graves 2012; Hannun et al. 2014).

The prefix beam search keeps, for every distinct label prefix, the probability of all the
alignments that end in blank (``pb``) and in its last label (``pnb``), so prefixes reached by
different alignments are merged exactly; a repeated label extends the prefix only after a
blank. Prefixes live in a trie (one node per prefix, shared by every hypothesis that has it),
so extending, merging and scoring a prefix costs the same at frame 10 and at frame 100,000.

Per frame, only tokens (blank included) at least ``token_min_logp`` likely are tried, and
always the likeliest (the pruning pyctcdecode uses too). Two things then make the search fast
without changing what it finds: a frame that tries one token only, the same as the frame
before (most frames of a peaky CTC model), adds that token's probability to every beam, so a
run of them costs one step per beam; and a 1-best search drops a beam as soon as another with
the same future (last token, word in progress, LM state) has both higher blank- and
label-ending scores: it can never win.

Scores are natural logs. A hypothesis ranks by ``acoustic + lm_weight * lm + word_bonus *
words + hotword bonuses``. The LM is either a token LM (its symbols are the model's tokens, as
``onsei lm train --unit char`` writes for a character model), applied at every token, or a word
LM, applied when a word is complete (words end at ``▁``-initial tokens and at the end); a word
in progress that no LM word starts with is penalised at once (``partial_word_penalty``, more
the longer it grows past ``partial_word_length`` characters), so misspelled prefixes and
words run together leave the beam early.

The search runs compiled (``onsei.decoding.ctc_compiled``, numba) whenever no hotwords are
given and the LM, if any, is an ARPA model; otherwise in Python. Both find the same
hypotheses with the same scores (tests/test_ctc_compiled.py).
"""

from __future__ import annotations

import heapq
import math
import operator
from collections.abc import Sequence
from dataclasses import astuple, dataclass, field

import numpy as np
import torch

from onsei.decoding import ctc_compiled
from onsei.decoding.ctc_compiled import spelling_trie
from onsei.decoding.log_space import NEG_INF, logaddexp
from onsei.errors import OptionError
from onsei.lm.arpa import BOS, EOS, UNK, LanguageModelError, NgramLM
from onsei.lm.model import LanguageModel
from onsei.lm.tables import ngram_tables
from onsei.text.tokenizers import WORD_BOUNDARY


def ctc_greedy(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path, repeats merged, blanks removed, batched: ``(B, T, V)`` -> token ids."""
    best = log_probs.argmax(-1)  # (B, T)
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != blank
    keep &= torch.arange(best.shape[1], device=best.device)[None, :] < lengths[:, None]
    return [row[mask].tolist() for row, mask in zip(best, keep, strict=True)]


@dataclass
class CTCBeamOptions:
    beam_size: int = 10
    lm_weight: float = 0.5
    """Weight (alpha) of the LM's natural-log probability."""
    word_bonus: float = 1.0
    """With an LM: added per word (beta; per token with a token LM), against the LM's bias
    towards short output."""
    unk_penalty: float = -10.0 * math.log(10.0)
    """Added (times ``lm_weight``) for a word the word LM does not know, and (unless
    ``partial_word_penalty`` is set) as soon as a word in progress is no LM word's beginning.
    The default is pyctcdecode's ``unk_score_offset`` (-10 in log10 units, about -23 in
    natural log). On AN4 dev with the word 3-gram (two Conformer-CTC models, beam 10), -10 was
    0.6 and 1.2 points worse, -15 to -30 alike."""
    partial_word_penalty: float | None = None
    """Added (not weighted) while a word in progress is no LM word's beginning, and replaced
    by the word's own score once it is complete; None: ``lm_weight * unk_penalty``.
    pyctcdecode's convention is -10, whatever the LM weight."""
    partial_word_length: int = 6
    """A word in progress longer than this many characters that is no LM word's beginning is
    penalised in proportion to its length (pyctcdecode's rule), so that words run together
    cost more the longer they grow."""
    token_min_logp: float = -10.0
    """Per frame, tokens less likely than this (natural log; blank included) are not tried,
    neither to grow a prefix nor to continue one, except the frame's likeliest token."""
    top_k: int = 0
    """Per frame, at most this many labels (besides blank) are tried (0: no limit besides
    ``token_min_logp``)."""
    beam_prune_logp: float = -20.0
    """Hypotheses this far below the best are dropped, even if the beam has room."""
    hotwords: tuple[str, ...] = ()
    """Words or phrases to favour (in the model's spelling and case)."""
    hotword_weight: float = 5.0
    """Bonus for a complete hotword; a hotword in progress gets the share it has matched."""
    nbest: int = 1

    def partial_penalty(self) -> float:
        """What a word in progress that begins no LM word adds to a prefix's score."""
        if self.partial_word_penalty is None:
            return self.lm_weight * self.unk_penalty
        return self.partial_word_penalty

    def validate(self) -> None:
        if self.beam_size < 1:
            raise OptionError(f"beam_size: must be at least 1, got {self.beam_size}")
        if not 1 <= self.nbest <= self.beam_size:
            raise OptionError(f"nbest: must be between 1 and beam_size, got {self.nbest}")
        if self.partial_word_length < 1:
            raise OptionError(
                f"partial_word_length: must be at least 1, got {self.partial_word_length}"
            )
        if self.top_k < 0:
            raise OptionError(f"top_k: must be 0 (no limit) or positive, got {self.top_k}")


@dataclass
class WordTiming:
    word: str
    start_frame: int
    end_frame: int
    """Exclusive: the frame after the word's last token."""
    log_prob: float = 0.0
    """Sum of its tokens' log posteriors at the frames they were first emitted."""
    tokens: int = 0

    @property
    def probability(self) -> float:
        """Geometric mean of its tokens' posteriors: a confidence in [0, 1]."""
        return math.exp(self.log_prob / max(self.tokens, 1))


@dataclass
class Hypothesis:
    tokens: list[int]
    text: str
    score: float
    """Total: acoustic + LM, bonuses and penalties."""
    acoustic: float
    """log P(tokens | audio) summed over alignments (of the alignments the beam kept)."""
    words: list[WordTiming] = field(default_factory=list)


class _Node:
    """One label prefix in the trie, with its (cached) language-model bookkeeping."""

    __slots__ = (
        "token",
        "parent",
        "depth",
        "frame",
        "logp",
        "entry",
        "children",
        "word",
        "lm_state",
        "words",
        "fixed",
        "partial",
        "future",
        "future_hash",
    )

    def __init__(self, token, parent, word, lm_state, words, fixed, partial, future):
        self.token: int | None = token
        self.parent: _Node | None = parent
        self.depth: int = 0 if parent is None else parent.depth + 1
        self.frame: int = -1
        """The likeliest frame for this prefix's last token to be first emitted at."""
        self.logp: float = 0.0
        """The token's log posterior at that frame."""
        self.entry: float = NEG_INF
        """log P(prefix, last token first emitted at ``frame``): the best such frame so far."""
        self.children: dict[int, _Node] = {}
        self.word: str = word
        """The word in progress (text since the last word boundary)."""
        self.lm_state: tuple[str, ...] = lm_state
        self.words: tuple[str, ...] = words
        """The last complete words, as many as the longest hotword phrase."""
        self.fixed: float = fixed
        """Score of everything complete: LM, bonuses, finished hotwords."""
        self.partial: float = partial
        """Score of the word in progress: unknown-prefix penalty, hotword share."""
        self.future: tuple = future
        """All that the scores of this prefix's continuations depend on (besides its own
        probabilities): prefixes with the same ``future`` can be recombined."""
        self.future_hash: int = hash(future)


class CTCPrefixBeamSearch:
    """Prefix beam search over one utterance's CTC log-probabilities ``(T, V)``.

    Args:
        symbols: the model's token strings by id (``tokenizer.symbols()``).
        blank: the blank id; ids whose symbol is ``<sos/eos>`` are never emitted.
        lm: an n-gram LM over the model's tokens, or over words.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        options: CTCBeamOptions,
        lm: LanguageModel | None = None,
        blank: int = 0,
    ):
        options.validate()
        self.symbols = list(symbols)
        self.options = options
        self.blank = blank
        self.emittable = np.array(
            [i != blank and s not in ("<sos/eos>", "<blank>") for i, s in enumerate(self.symbols)]
        )
        self.lm = lm
        self.token_lm = lm is not None and is_token_lm(lm, self.symbols)
        self.word_lm = lm is not None and not self.token_lm
        self.word_prefixes: set[str] = set()
        """The beginnings of the word LM's words (none if it cannot list them)."""
        if self.word_lm and lm.vocabulary is not None:
            words = lm.vocabulary - {BOS, EOS, UNK}
            _check_word_lm(words, self.symbols)
            self.word_prefixes = {w[:i] for w in words for i in range(1, len(w) + 1)}
        self.hotwords = [tuple(h.split()) for h in options.hotwords if h.split()]
        _check_hotwords(self.hotwords, self.symbols)
        self.hotword_memory = max((len(h) for h in self.hotwords), default=0)
        self.compiled = self._compiled_arguments()
        """The arguments of ``ctc_compiled.search`` after the plan and posteriors, or None
        when only the Python search can do it (hotwords, a KenLM binary model)."""

    def _compiled_arguments(self) -> tuple | None:
        lm, options = self.lm, self.options
        if self.hotwords or not (lm is None or isinstance(lm, NgramLM)):
            return None
        tables = ngram_tables(lm) if lm is not None else None
        if lm is not None and tables is None:
            return None
        boundary = np.array([s.startswith(WORD_BOUNDARY) for s in self.symbols])
        empty_ints, empty_floats = np.zeros(0, dtype=np.int64), np.zeros(0)
        if tables is None:
            arrays = (empty_ints, empty_floats, empty_ints, empty_floats, empty_ints)
            arrays += (np.array([1, 2], dtype=np.int64),)
            token_ids, fusion = empty_ints, [0.0] * 9
        else:
            arrays = tables.arrays
            token_ids = np.array([tables.id(s) for s in self.symbols], dtype=np.int64)
            fusion = [options.lm_weight, options.word_bonus, options.unk_penalty]
            fusion += [tables.unk_log10, len(tables.ids), tables.start(), tables.end]
            fusion += [options.partial_penalty(), options.partial_word_length]
        if self.word_lm:
            words = {w: tables.id(w) for w in lm.vocabulary - {BOS, EOS, UNK}}
            trie = astuple(spelling_trie(words, self.symbols))
        else:
            trie = (empty_ints, empty_ints, empty_ints, 0, empty_ints, empty_ints, empty_ints)
        kind = ctc_compiled.WORD_LM if self.word_lm else ctc_compiled.TOKEN_LM
        return (
            self.blank,
            boundary,
            token_ids,
            kind if lm is not None else ctc_compiled.NO_LM,
            arrays,
            trie,
            np.array(fusion, dtype=np.float64),
            options.beam_size,
            options.nbest,
            options.beam_prune_logp,
        )

    # -- scoring of prefixes -------------------------------------------------------------------

    def _root(self) -> _Node:
        lm_state: tuple[str, ...] = self.lm.start() if self.lm is not None else ()
        return _Node(None, None, "", lm_state, (), 0.0, 0.0, (None, "", lm_state, ()))

    def _new_child(self, node: _Node, token: int) -> _Node:
        """Create (and score, and link) the prefix ``node`` + ``token``."""
        symbol = self.symbols[token]
        fixed, lm_state, words, word = node.fixed, node.lm_state, node.words, node.word
        if self.token_lm:
            log_prob, lm_state = self.lm.score(lm_state, symbol)
            fixed += self.options.lm_weight * log_prob + self.options.word_bonus
        if symbol.startswith(WORD_BOUNDARY):
            if word:
                fixed, lm_state, words = self._finish_word(word, fixed, lm_state, words)
            word = symbol[len(WORD_BOUNDARY) :]
        else:
            word += symbol
        partial = self._partial_score(word, words)
        # the word in progress matters to a word LM and to hotwords only
        future = (token, self._future_word(word), lm_state, words)
        child = _Node(token, node, word, lm_state, words, fixed, partial, future)
        node.children[token] = child
        return child

    def _future_word(self, word: str) -> str | int:
        """What of the word in progress the scores of a prefix's continuations depend on: all
        of it with hotwords; with a word LM, which LM word's beginning it is, or, if it begins
        none, its length; nothing otherwise."""
        if self.hotwords:
            return word
        if not self.word_lm:
            return ""
        if self.word_prefixes and word and word not in self.word_prefixes:
            return len(word)
        return word

    def _finish_word(
        self, word: str, fixed: float, lm_state: tuple[str, ...], words: tuple[str, ...]
    ) -> tuple[float, tuple[str, ...], tuple[str, ...]]:
        """Score a complete ``word``: word LM and bonus, finished hotword phrases."""
        options = self.options
        if self.word_lm:
            log_prob, lm_state = self.lm.score(lm_state, word)
            if not self.lm.knows(word):
                log_prob += options.unk_penalty
            fixed += options.lm_weight * log_prob + options.word_bonus
        if self.hotwords:
            words = (*words, word)[-self.hotword_memory :]
            for phrase in self.hotwords:
                if words[-len(phrase) :] == phrase:
                    fixed += options.hotword_weight
        return fixed, lm_state, words

    def _partial_score(self, word: str, words: tuple[str, ...]) -> float:
        """Score of the word in progress: recomputed for every prefix, never accumulated."""
        if not word:
            return 0.0
        score = 0.0
        if self.word_prefixes and word not in self.word_prefixes:
            score += self.options.partial_penalty() * max(
                1.0, len(word) / self.options.partial_word_length
            )
        best = 0.0
        for phrase in self.hotwords:
            for k in range(len(phrase)):  # phrase[:k] complete, and word begins phrase[k]
                if phrase[k].startswith(word) and (k == 0 or words[-k:] == phrase[:k]):
                    done = sum(map(len, phrase[:k])) + len(word)
                    best = max(best, done / sum(map(len, phrase)))
        return score + self.options.hotword_weight * best

    def _end_score(self, node: _Node) -> float:
        """Score at the end of the utterance: the last word, and the LM's end of sentence."""
        fixed, lm_state = node.fixed, node.lm_state
        if node.word:
            fixed, lm_state, _ = self._finish_word(node.word, fixed, lm_state, node.words)
        if self.lm is not None:
            fixed += self.options.lm_weight * self.lm.score(lm_state, EOS)[0]
        return fixed

    # -- search ------------------------------------------------------------------------------

    def decode(self, log_probs: np.ndarray) -> list[Hypothesis]:
        """``(T, V)`` natural-log posteriors -> the ``nbest`` best hypotheses, best first."""
        return self.decode_batch([log_probs])[0]

    def decode_batch(self, batch: Sequence[np.ndarray]) -> list[list[Hypothesis]]:
        """``decode`` of several utterances ``(T_i, V)``, with the per-frame work of all of
        them (which tokens each frame tries, the runs) done at once in numpy.

        Most frames of a peaky CTC model try one token only: blank, or the label tried
        alone on the frame before. On such a frame no prefix is created, merged or dropped,
        and no ranking changes: every beam adds that token's log posterior (blank: to its
        total, which then all ends in blank). A run of them costs one step per beam,
        whatever its length; the other frames extend the prefixes one by one.
        """
        if not batch:
            return []
        lengths = np.array([len(x) for x in batch])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # (K,)
        ends = starts + lengths
        log_probs = np.concatenate([np.asarray(x, dtype=np.float64) for x in batch])  # (N, V)
        tried = self._tried_tokens(log_probs)  # (N, V)
        alone = np.where(tried.sum(axis=1) == 1, tried.argmax(axis=1), -1)  # (N,)
        continues = np.zeros(len(alone), dtype=bool)  # the label alone on the frame before
        continues[1:] = (alone[1:] >= 0) & (alone[1:] == alone[:-1])
        continues[starts[starts < len(alone)]] = False  # (never across utterances)
        in_run = (alone == self.blank) | continues
        frames = np.flatnonzero(~in_run)  # (F,) the frames that extend prefixes
        in_run_logp = np.where(in_run, log_probs[np.arange(len(alone)), alone], 0.0)
        before = np.concatenate([[0.0], np.cumsum(in_run_logp)])  # (N + 1,)
        # the runs: before each extending frame, and after an utterance's last one
        per_utterance = np.searchsorted(frames, ends)  # frames of utterances 0..k: [0, n_k)
        run_ends = np.insert(frames, per_utterance, ends)  # (F + K,)
        first_runs = np.concatenate([[0], per_utterance[:-1]]) + np.arange(len(batch))
        run_starts = np.concatenate([[0], run_ends[:-1] + 1])
        run_starts[first_runs] = starts
        run_nonempty = run_ends > run_starts
        run_logp = before[run_ends] - before[run_starts]
        # (one entry more, for a batch of empty utterances)
        run_blank = np.append(alone == self.blank, False)[np.maximum(run_ends - 1, 0)]
        local_frames = frames - np.repeat(starts, np.diff(per_utterance, prepend=0))
        rows = log_probs[frames]  # (F, V)
        blank_tried = tried[frames, self.blank]
        labels_tried = tried[frames] & self.emittable
        label_ids = np.nonzero(labels_tried)[1]
        offsets = np.concatenate([[0], np.cumsum(labels_tried.sum(axis=1))])
        results = []
        first = 0
        for k, last in enumerate(per_utterance.tolist()):
            runs = slice(first + k, last + k + 1)  # (before each extending frame, and after)
            plan = (
                local_frames[first:last],
                blank_tried[first:last],
                label_ids[offsets[first] : offsets[last]],
                offsets[first : last + 1] - offsets[first],
                run_nonempty[runs],
                run_logp[runs],
                run_blank[runs],
            )
            if self.compiled is not None:
                results.append(self._search_compiled(plan, rows[first:last]))
            else:
                results.append(self._search(plan, rows[first:last]))
            first = last
        return results

    def _search(self, plan: tuple[np.ndarray, ...], rows: np.ndarray) -> list[Hypothesis]:
        """The search of one utterance in Python (``ctc_compiled.search`` describes
        ``plan``)."""
        frames, blank_tried, labels, offsets, run_nonempty, run_logp, run_blank = (
            part.tolist() for part in plan
        )
        posteriors = rows.tolist()
        beams: dict[_Node, list[float]] = {self._root(): [0.0, NEG_INF]}
        for i, frame in enumerate(frames):
            if run_nonempty[i]:
                beams = _run(beams, run_logp[i], run_blank[i])
            tried = labels[offsets[i] : offsets[i + 1]]
            extended = self._extend(beams, frame, posteriors[i], tried, blank_tried[i])
            beams = self._prune(extended, beams)
        if run_nonempty[-1]:
            beams = _run(beams, run_logp[-1], run_blank[-1])
        return self._finish(beams)

    def _search_compiled(self, plan: tuple[np.ndarray, ...], rows: np.ndarray) -> list[Hypothesis]:
        """The search of one utterance, compiled (``onsei.decoding.ctc_compiled``)."""
        tokens, frames, log_probs, lengths, scores, acoustic = ctc_compiled.search(
            plan, rows, *self.compiled
        )
        hypotheses = []
        end = 0
        for i, length in enumerate(lengths.tolist()):
            start, end = end, end + length
            path = zip(
                tokens[start:end].tolist(),
                frames[start:end].tolist(),
                log_probs[start:end].tolist(),
                strict=True,
            )
            hypotheses.append(self._hypothesis(float(scores[i]), float(acoustic[i]), list(path)))
        return hypotheses

    def _tried_tokens(self, log_probs: np.ndarray) -> np.ndarray:
        """Which tokens (blank included) each frame tries ``(T, V)``: those at least
        ``token_min_logp`` likely, at most ``top_k`` labels of them, and always the likeliest."""
        options = self.options
        allowed = self.emittable.copy()
        allowed[self.blank] = True
        tried = allowed & (log_probs >= options.token_min_logp)
        if options.top_k and options.top_k < int(self.emittable.sum()):
            labels = np.where(self.emittable & tried, log_probs, NEG_INF)
            kth = -np.partition(-labels, options.top_k - 1, axis=1)[:, options.top_k - 1]
            tried &= ~self.emittable | (log_probs >= kth[:, None])
        likeliest = np.where(allowed, log_probs, NEG_INF).argmax(axis=1)
        tried[np.arange(len(log_probs)), likeliest] = True
        return tried

    def _extend(
        self,
        beams: dict[_Node, list[float]],
        frame: int,
        row: list[float],
        labels: list[int],
        blank_tried: bool,
    ) -> dict[_Node, list[float]]:
        """One frame of prefix beam search, with posteriors ``row`` ``(V,)``, trying the
        ``labels`` (and blank if ``blank_tried``): every beam stays (by blank, or by its last
        label again) or grows by a label; prefixes reached twice merge; a beam none of whose
        continuations is tried ends."""
        blank_logp = row[self.blank]
        next_beams: dict[_Node, list[float]] = {}
        for node, scores in beams.items():
            pb, pnb = scores
            total = logaddexp(pb, pnb)
            repeated = node.token in labels
            if blank_tried or repeated:
                entry = next_beams.get(node)
                stay_blank = total + blank_logp if blank_tried else NEG_INF
                stay_label = pnb + row[node.token] if repeated else NEG_INF
                if entry is None:  # (a prefix reached earlier in this frame merges)
                    next_beams[node] = [stay_blank, stay_label]
                else:
                    entry[0] = logaddexp(entry[0], stay_blank)
                    entry[1] = logaddexp(entry[1], stay_label)
            for token in labels:
                child = node.children.get(token) or self._new_child(node, token)
                logp = row[token]
                joint = (pb if token == node.token else total) + logp
                extension = next_beams.get(child)
                if extension is None:
                    next_beams[child] = [NEG_INF, joint]
                else:
                    extension[1] = logaddexp(extension[1], joint)
                if joint > child.entry:
                    child.entry, child.frame, child.logp = joint, frame, logp
        return next_beams

    def _prune(
        self, beams: dict[_Node, list[float]], previous: dict[_Node, list[float]]
    ) -> dict[_Node, list[float]]:
        """The ``beam_size`` best of ``beams``, less those ``beam_prune_logp`` below the best
        (and, for a 1-best search, less those that can never become the best); the prefixes
        dropped, and those of the ``previous`` beams that did not go on, leave the trie."""
        kept = beams
        if len(beams) > 1:
            candidates = _recombine(beams) if self.options.nbest == 1 else beams
            scored = [
                (logaddexp(pb, pnb) + node.fixed + node.partial, node)
                for node, (pb, pnb) in candidates.items()
            ]
            if len(scored) > self.options.beam_size:
                best = heapq.nlargest(self.options.beam_size, scored, key=_first)
            else:
                best = scored
            floor = max(max(scored, key=_first)[0] + self.options.beam_prune_logp, NEG_INF)
            kept = {node: beams[node] for score, node in best if score > floor}
        dropped = [n for n in beams if n not in kept]
        dropped += [n for n in previous if n not in beams]
        if dropped:
            if len(dropped) > 1:
                dropped.sort(key=_depth, reverse=True)
            _forget(dropped, kept)
        return kept

    def _finish(self, beams: dict[_Node, list[float]]) -> list[Hypothesis]:
        finals = []
        for node, (pb, pnb) in beams.items():
            acoustic = logaddexp(pb, pnb)
            finals.append((acoustic + self._end_score(node), acoustic, node))
        finals.sort(key=lambda item: item[0], reverse=True)
        return [
            self._hypothesis(score, acoustic, _path(node))
            for score, acoustic, node in finals[: self.options.nbest]
        ]

    def _hypothesis(
        self, score: float, acoustic: float, path: list[tuple[int, int, float]]
    ) -> Hypothesis:
        """The hypothesis of a prefix, from its ``path``: each token with the frame it is
        likeliest first emitted at and its log posterior there."""
        words: list[WordTiming] = []
        new_word = True
        for token, frame, log_prob in path:
            symbol = self.symbols[token]
            if symbol.startswith(WORD_BOUNDARY):
                new_word, symbol = True, symbol[len(WORD_BOUNDARY) :]
            if not symbol:
                continue
            if new_word:
                words.append(WordTiming(symbol, frame, frame + 1))
                new_word = False
            else:
                words[-1].word += symbol
                words[-1].end_frame = frame + 1
            words[-1].log_prob += log_prob
            words[-1].tokens += 1
        text = " ".join(w.word for w in words)
        return Hypothesis([token for token, _, _ in path], text, score, acoustic, words)


def _path(node: _Node) -> list[tuple[int, int, float]]:
    """The tokens of ``node``'s prefix, each with its first-emission frame and log posterior."""
    path = []
    while node.parent is not None:
        path.append((node.token, node.frame, node.logp))
        node = node.parent
    path.reverse()
    return path


_first = operator.itemgetter(0)
_depth = operator.attrgetter("depth")


def _run(beams: dict[_Node, list[float]], log_prob: float, blank: bool) -> dict[_Node, list[float]]:
    """Every beam through a run of frames of log probability ``log_prob`` that try blank
    only (``blank``), or the label that every beam ends in only."""
    if blank:
        return {node: [logaddexp(pb, pnb) + log_prob, NEG_INF] for node, (pb, pnb) in beams.items()}
    return {node: [pb + log_prob, pnb + log_prob] for node, (pb, pnb) in beams.items()}


def _recombine(beams: dict[_Node, list[float]]) -> dict[_Node, list[float]]:
    """Drop the beams that another beam with the same ``future`` dominates.

    Continuations of two such prefixes gain the same scores from the same blank-ending and
    label-ending probabilities, so if one has both (plus its score so far) at least as high
    as the other, every continuation of the other stays below the same continuation of the
    first: the other cannot end up the best. Unless it can still grow into another beam or
    be grown into by one, and add to it or be added to: a beam with a live descendant or
    ancestor stays.
    """
    groups: dict[int, list[tuple[float, float, _Node]]] = {}
    for node, (pb, pnb) in beams.items():
        offset = node.fixed + node.partial
        groups.setdefault(node.future_hash, []).append((pb + offset, pnb + offset, node))
    if len(groups) == len(beams):
        return beams
    kept: dict[_Node, list[float]] = {}
    shallowest = min(node.depth for node in beams)
    for members in groups.values():
        if len(members) > 1:
            members.sort(key=lambda member: -logaddexp(member[0], member[1]))
        leaders: list[tuple[float, float, _Node]] = []
        for pb, pnb, node in members:
            dominated = any(
                pb <= lead_pb and pnb <= lead_pnb and node.future == lead.future
                for lead_pb, lead_pnb, lead in leaders
            )
            # (a prefix with children in the trie may have live descendants: it stays)
            if dominated and not node.children and not _has_ancestor_in(node, beams, shallowest):
                continue
            leaders.append((pb, pnb, node))
            kept[node] = beams[node]
    return kept


def _has_ancestor_in(node: _Node, beams: dict[_Node, list[float]], shallowest: int) -> bool:
    """Whether one of ``node``'s ancestors is among the ``beams`` (none shallower than
    ``shallowest``)."""
    ancestor = node.parent
    while ancestor is not None and ancestor.depth >= shallowest:
        if ancestor in beams:
            return True
        ancestor = ancestor.parent
    return False


def _forget(dropped: list[_Node], kept: dict[_Node, list[float]]) -> None:
    """Unlink dropped prefixes (deepest first) from the trie, with ancestors left childless,
    so that the trie holds the live prefixes and their histories only. A prefix with a live
    descendant stays linked: re-creating it would split that descendant's merges."""
    for node in dropped:
        while node.parent is not None and not node.children and node not in kept:
            parent = node.parent
            if parent.children.get(node.token) is node:
                del parent.children[node.token]
            node = parent


def is_token_lm(lm: LanguageModel, symbols: Sequence[str]) -> bool:
    """Whether the LM's symbols are (a subset of) the model's tokens; for an LM that cannot
    list its words, whether it knows the tokens that begin a word (no word LM has those)."""
    if lm.vocabulary is None:
        return any(lm.knows(s) for s in symbols if s.startswith(WORD_BOUNDARY))
    words = lm.vocabulary - {BOS, EOS, UNK}
    return bool(words) and words <= set(symbols)


def _check_word_lm(words: set[str], symbols: Sequence[str]) -> None:
    """A word LM must be spellable with the model's tokens (for a character model: its
    characters); a mismatch (other script or case) would silently turn every word unknown."""
    characters = _spelling_characters(symbols)
    if not words:
        raise LanguageModelError("the language model has no words")
    spellable = sum(1 for w in words if set(w) <= characters)
    if spellable < 0.5 * len(words):
        example = next(w for w in sorted(words) if not set(w) <= characters)
        raise LanguageModelError(
            f"the language model's words do not match the model's tokens: only {spellable} of "
            f"{len(words)} can be spelled with them (e.g. {example!r}; check case and alphabet)"
        )


def _check_hotwords(hotwords: list[tuple[str, ...]], symbols: Sequence[str]) -> None:
    characters = _spelling_characters(symbols)
    for phrase in hotwords:
        unknown = sorted({c for word in phrase for c in word} - characters)
        if unknown:
            raise OptionError(
                f"hotword {' '.join(phrase)!r}: the model has no token for "
                f"{', '.join(map(repr, unknown))} (check case and alphabet)"
            )


def _spelling_characters(symbols: Sequence[str]) -> set[str]:
    """The characters the model's tokens can write (special symbols such as <unk> aside)."""
    real = (s for s in symbols if not (s.startswith("<") and s.endswith(">") and len(s) > 2))
    return {c for s in real for c in s.replace(WORD_BOUNDARY, "")}
