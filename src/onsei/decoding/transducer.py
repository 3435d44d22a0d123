"""Transducer searches over one utterance's encoder output ``(T, E)``: Graves' beam search
(Graves 2012, as in ESPnet's default search) and time-synchronous decoding (Saon et al. 2020),
which advances all hypotheses frame by frame and scores them in batches.

Both merge hypotheses with the same labels by adding their probabilities, and cache the
prediction network's output per label sequence, so each distinct prefix runs it once. An
n-gram LM over the model's tokens can be fused (shallow fusion, as in k2/icefall): each label
adds ``lm_weight * log P_lm(label | labels so far) + word_bonus``, the end ``lm_weight *
log P_lm(</s> | labels)``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import torch

from onsei.decoding.log_space import NEG_INF, logaddexp
from onsei.errors import OptionError
from onsei.lm.arpa import EOS
from onsei.lm.model import LanguageModel


@dataclass
class TransducerBeamOptions:
    beam_size: int = 4
    algorithm: str = "time_sync"
    """"time_sync" (frame by frame, batched) or "graves" (best-first within a frame)."""
    max_symbols_per_frame: int = 5
    """Labels one hypothesis may emit within a frame (before the frame's blank)."""
    nbest: int = 1
    lm_weight: float = 0.0
    """With an LM: the weight of its natural-log probabilities."""
    word_bonus: float = 0.0
    """With an LM: added per label, against the LM's bias towards short output."""

    def validate(self) -> None:
        if self.beam_size < 1:
            raise OptionError(f"beam_size: must be at least 1, got {self.beam_size}")
        if self.algorithm not in ("time_sync", "graves"):
            raise OptionError(
                f"transducer search: unknown algorithm {self.algorithm!r} (time_sync, graves)"
            )
        if not 1 <= self.nbest <= self.beam_size:
            raise OptionError(f"nbest: must be between 1 and beam_size, got {self.nbest}")


@dataclass
class TransducerHypothesis:
    tokens: tuple[int, ...]
    score: float
    """log P of the labels, summed over the alignments the search kept (plus, with an LM,
    its weighted score and the bonuses)."""


class TransducerBeamSearch:
    """Beam search with a ``Predictor`` (``init_state / step``) and a ``Joint`` (``step``),
    and optionally an LM whose words are the model's tokens ``symbols``."""

    def __init__(
        self,
        predictor,
        joint,
        options: TransducerBeamOptions,
        blank: int = 0,
        lm: LanguageModel | None = None,
        symbols: list[str] | None = None,
    ):
        options.validate()
        if lm is not None and symbols is None:
            raise ValueError("an LM needs the model's token symbols")
        self.predictor = predictor
        self.joint = joint
        self.options = options
        self.blank = blank
        self.lm = lm
        self.symbols = symbols

    @torch.no_grad()
    def search(self, encoded: torch.Tensor) -> list[TransducerHypothesis]:
        """Encoder output of one utterance ``(T, E)`` -> the n-best hypotheses."""
        self._cache: dict[tuple[int, ...], tuple[torch.Tensor, tuple]] = {}
        self._lm_states: dict[tuple[int, ...], object] = {}
        self._fusion_rows: dict[object, torch.Tensor] = {}
        if self.options.algorithm == "graves":
            found = self._graves(encoded)
        else:
            found = self._time_sync(encoded)
        if self.lm is not None:
            for hypothesis in found:
                end = self.lm.score(self._lm_state(hypothesis.tokens), EOS)[0]
                hypothesis.score += self.options.lm_weight * end
        found.sort(key=lambda h: h.score, reverse=True)
        return found[: self.options.nbest]

    def _predicted_batch(self, sequences: list[tuple[int, ...]]) -> torch.Tensor:
        """Outputs ``(N, P)`` for several label sequences; the new ones in one batched step
        from their cached parents."""
        missing = list(dict.fromkeys(s for s in sequences if s not in self._cache))
        if missing:
            for sequence in missing:  # parents first (a parent is one label shorter)
                if sequence and sequence[:-1] not in self._cache:
                    self._predicted_batch([sequence[:-1]])
            empty = [s for s in missing if not s]
            if empty:
                state = self.predictor.init_state(1)
                start = torch.full((1,), self.blank, dtype=torch.long, device=state[0].device)
                output, state = self.predictor.step(start, state)
                self._cache[()] = (output[0], state)
            rest = [s for s in missing if s]
            if rest:
                parents = [self._cache[s[:-1]][1] for s in rest]
                h = torch.cat([p[0] for p in parents], dim=1)
                c = torch.cat([p[1] for p in parents], dim=1)
                last = torch.tensor([s[-1] for s in rest], dtype=torch.long, device=h.device)
                output, (h, c) = self.predictor.step(last, (h, c))
                for i, sequence in enumerate(rest):
                    self._cache[sequence] = (output[i], (h[:, i : i + 1], c[:, i : i + 1]))
        return torch.stack([self._cache[s][0] for s in sequences])

    def _log_probs(self, frame: torch.Tensor, sequences: list[tuple[int, ...]]) -> torch.Tensor:
        """Joint log-probabilities ``(N, V)`` at encoder frame ``(E,)`` after each sequence,
        plus the LM's share of each label."""
        predicted = self._predicted_batch(sequences)
        logits = self.joint.step(frame.expand(len(sequences), -1), predicted)
        log_probs = logits.log_softmax(dim=-1).double()
        if self.lm is not None:
            log_probs = log_probs + torch.stack([self._fusion_row(s) for s in sequences])
        return log_probs

    def _lm_state(self, sequence: tuple[int, ...]):
        """The LM's state after ``sequence`` (cached per sequence)."""
        state = self._lm_states.get(sequence)
        if state is None:
            if sequence:
                parent = self._lm_state(sequence[:-1])
                state = self.lm.score(parent, self.symbols[sequence[-1]])[1]
            else:
                state = self.lm.start()
            self._lm_states[sequence] = state
        return state

    def _fusion_row(self, sequence: tuple[int, ...]) -> torch.Tensor:
        """``(V,)``: what the LM adds to each label after ``sequence`` (0 for blank); cached
        per LM state."""
        state = self._lm_state(sequence)
        row = self._fusion_rows.get(state)
        if row is None:
            weight, bonus = self.options.lm_weight, self.options.word_bonus
            values = [weight * self.lm.score(state, symbol)[0] + bonus for symbol in self.symbols]
            row = torch.tensor(values, dtype=torch.float64)
            row[self.blank] = 0.0
            self._fusion_rows[state] = row
        return row

    def _time_sync(self, encoded: torch.Tensor) -> list[TransducerHypothesis]:
        """Time-synchronous decoding (Saon et al. 2020, ESPnet's "tsd"): at every frame each
        hypothesis emits up to ``max_symbols_per_frame`` labels and then the frame's blank,
        as in the transducer lattice the model was trained on. Per round, all live
        hypotheses are scored in one batch: their blank extensions end the frame (equal label
        sequences merged), their ``beam`` best label extensions go on to the next round
        unless ``beam`` ended hypotheses already beat them. The ``beam`` best ended
        hypotheses go on to the next frame."""
        options = self.options
        beam = options.beam_size
        hypotheses: dict[tuple[int, ...], float] = {(): 0.0}
        for frame in encoded:
            ended: dict[tuple[int, ...], float] = {}
            live = hypotheses
            for emitted in range(options.max_symbols_per_frame + 1):
                sequences = list(live)
                scores = torch.tensor([live[s] for s in sequences], dtype=torch.float64)
                log_probs = self._log_probs(frame, sequences) + scores[:, None]  # (N, V)
                vocab_size = log_probs.shape[1]
                blanks = log_probs[:, self.blank].tolist()
                for sequence, value in zip(sequences, blanks, strict=True):
                    ended[sequence] = logaddexp(ended.get(sequence, NEG_INF), value)
                if emitted == options.max_symbols_per_frame:
                    break
                floor = _beam_floor(ended, beam)
                log_probs[:, self.blank] = NEG_INF
                top_scores, top = log_probs.reshape(-1).topk(min(beam, log_probs.numel()))
                live = {}
                for value, flat in zip(top_scores.tolist(), top.tolist(), strict=True):
                    if value <= floor:
                        break
                    sequence = (*sequences[flat // vocab_size], flat % vocab_size)
                    live[sequence] = logaddexp(live.get(sequence, NEG_INF), value)
                if not live:
                    break
            hypotheses = _best(ended, beam)
        return [TransducerHypothesis(s, v) for s, v in hypotheses.items()]

    def _graves(self, encoded: torch.Tensor) -> list[TransducerHypothesis]:
        """Graves (2012): per frame, repeatedly expand the best hypothesis of the frame's queue
        ``A``: its blank extension goes to the next frame's set ``B`` (merged with an equal one),
        its ``beam`` best label extensions back into ``A``; stop once ``B`` holds ``beam``
        hypotheses better than anything left in ``A``."""
        options = self.options
        beam = options.beam_size
        kept: dict[tuple[int, ...], float] = {(): 0.0}
        for frame in encoded:
            queue = dict(kept)  # A: sequence -> score
            emitted = {s: 0 for s in queue}  # labels added to each sequence in this frame
            kept = {}  # B
            while queue:
                best = max(queue, key=queue.__getitem__)
                score = queue.pop(best)
                if _beam_floor(kept, beam) >= score:
                    break
                log_probs = self._log_probs(frame, [best])[0]
                kept[best] = logaddexp(
                    kept.get(best, NEG_INF), score + float(log_probs[self.blank])
                )
                if emitted[best] >= options.max_symbols_per_frame:
                    continue
                log_probs[self.blank] = NEG_INF
                values, tokens = log_probs.topk(min(beam, log_probs.numel() - 1))
                for value, token in zip(values.tolist(), tokens.tolist(), strict=True):
                    sequence = (*best, token)
                    queue[sequence] = logaddexp(queue.get(sequence, NEG_INF), score + value)
                    emitted[sequence] = emitted[best] + 1
            kept = _best(kept, beam)
        return [TransducerHypothesis(s, v) for s, v in kept.items()]


def _beam_floor(scores: dict[tuple[int, ...], float], beam: int) -> float:
    """The ``beam``-th best of ``scores``, or -inf when there are fewer."""
    if len(scores) < beam:
        return NEG_INF
    return heapq.nlargest(beam, scores.values())[-1]


def _best(scores: dict[tuple[int, ...], float], beam: int) -> dict[tuple[int, ...], float]:
    """The ``beam`` best entries of ``scores``, best first."""
    return dict(heapq.nlargest(beam, scores.items(), key=lambda item: item[1]))
