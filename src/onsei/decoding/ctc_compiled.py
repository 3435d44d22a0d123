"""The CTC prefix beam search of ``onsei.decoding.ctc`` compiled with numba: the same
search, step for step (prefix trie, runs of one-token frames, recombination, pruning, LM
fusion), on integer prefixes and arrays instead of Python objects.

``CTCPrefixBeamSearch`` uses it whenever it can: with no LM, a token LM or a word LM read
from ARPA (``onsei.lm.tables``), and no hotwords. The word in progress is a node of the
spelling trie of the word LM's words (``SpellingTrie``), or, once it is no LM word's
beginning, minus its length in characters: prefixes whose words in progress
are off the trie and as long have the same future, which the Python search also knows
(``CTCPrefixBeamSearch._future_word``).

The trie of prefixes holds, per node, integer fields (``_TOKEN`` .. ``_KEPT``) and float
fields (``_LOGP`` .. ``_PARTIAL``) in two arrays that double when full; unlinked nodes are
reused.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numba import types
from numba.typed import Dict

from onsei.decoding.log_space import logaddexp
from onsei.lm.tables import lm_score
from onsei.text.tokenizers import WORD_BOUNDARY

NO_LM, TOKEN_LM, WORD_LM = 0, 1, 2

# integer fields of a prefix node
_TOKEN, _PARENT, _DEPTH, _FRAME, _CHILDREN, _WORD, _LM_STATE, _SLOT, _KEPT = range(9)
# float fields of a prefix node
_LOGP, _ENTRY, _FIXED, _PARTIAL = range(4)
_NEG_INF = -math.inf
_FUTURE = types.UniTuple(types.int64, 3)
"""What a prefix's continuations depend on: (last token, word in progress, LM state)."""


@dataclass(frozen=True)
class SpellingTrie:
    """The word LM's words, character by character: node 0 is the empty word; the child of
    node ``n`` by character ``c`` is ``children[searchsorted(keys, n * characters + c)]``."""

    keys: np.ndarray
    children: np.ndarray
    word_ids: np.ndarray
    """Per node: the LM id of the word it spells, or -1 (a beginning only)."""
    characters: int
    """Size of the alphabet (the characters of the words and of the model's tokens)."""
    token_characters: np.ndarray
    """The characters each token adds to the word in progress, concatenated."""
    token_offsets: np.ndarray
    """Token ``t``'s are ``token_characters[token_offsets[t] : token_offsets[t + 1]]``."""
    depths: np.ndarray
    """Per node: how many characters it spells."""


def spelling_trie(words: dict[str, int], symbols: Sequence[str]) -> SpellingTrie:
    """The trie of ``words`` (each with its LM id), over the characters of them and of the
    tokens ``symbols`` (a token's text without its word-boundary mark)."""
    texts = [s.removeprefix(WORD_BOUNDARY) for s in symbols]
    alphabet = {c: i for i, c in enumerate(sorted({c for w in [*words, *texts] for c in w}))}
    edges: dict[tuple[int, int], int] = {}
    word_ids, depths = [-1], [0]
    for word, word_id in words.items():
        node = 0
        for character in word:
            key = (node, alphabet[character])
            if key not in edges:
                edges[key] = len(word_ids)
                word_ids.append(-1)
                depths.append(depths[node] + 1)
            node = edges[key]
        word_ids[node] = word_id
    keys = np.array([n * len(alphabet) + c for n, c in edges], dtype=np.int64)
    order = np.argsort(keys)
    children = np.array(list(edges.values()), dtype=np.int64)
    token_characters = [alphabet[c] for text in texts for c in text]
    return SpellingTrie(
        keys[order],
        children[order],
        np.array(word_ids, dtype=np.int64),
        len(alphabet),
        np.array(token_characters, dtype=np.int64),
        np.cumsum([0] + [len(t) for t in texts]).astype(np.int64),
        np.array(depths, dtype=np.int64),
    )


_logaddexp = numba.njit(cache=True)(logaddexp)
"""``onsei.decoding.log_space.logaddexp``, compiled: the same result to the last bit."""


@numba.njit(cache=True)
def _add(ints, node: int, blank: float, label: float, nodes, pb, pnb, n: int) -> int:
    """Add the probabilities of ``node`` ending in blank and in its label to the next beams
    ``nodes[:n]`` (merging with its entry if it has one); returns the new ``n``."""
    slot = ints[node, _SLOT]
    if slot < 0:
        ints[node, _SLOT] = n
        nodes[n] = node
        pb[n] = blank
        pnb[n] = label
        return n + 1
    pb[slot] = _logaddexp(pb[slot], blank)
    pnb[slot] = _logaddexp(pnb[slot], label)
    return n


@numba.njit(cache=True)
def _spell(trie, node: int, token: int) -> int:
    """The spelling-trie node after ``token``'s characters, from ``node`` (a negative
    ``node``: off the trie, minus the word's length so far)."""
    keys, children, _, characters, token_characters, token_offsets, depths = trie
    for i in range(token_offsets[token], token_offsets[token + 1]):
        if node < 0:
            node -= 1
            continue
        key = node * characters + token_characters[i]
        j = np.searchsorted(keys, key)
        node = children[j] if j < len(keys) and keys[j] == key else -(depths[node] + 1)
    return node


@numba.njit(cache=True)
def _finish_word(fusion, lm, trie, word: int, fixed: float, state: int) -> tuple[float, int]:
    """``CTCPrefixBeamSearch._finish_word`` for a word LM: score the word spelled up to
    spelling-trie node ``word``."""
    word_id = trie[2][word] if word >= 0 else -1
    log_prob, state = lm_score(lm, fusion[3], state, word_id if word_id >= 0 else int(fusion[4]))
    if word_id < 0:
        log_prob += fusion[2]
    return fixed + fusion[0] * log_prob + fusion[1], state


@numba.njit(cache=True)
def search(
    plan,
    rows: np.ndarray,
    blank: int,
    boundary: np.ndarray,
    token_lm_ids: np.ndarray,
    lm_kind: int,
    lm,
    trie,
    fusion: np.ndarray,
    beam_size: int,
    nbest: int,
    beam_prune_logp: float,
):
    """Prefix beam search over one utterance.

    Args:
        plan: ``(frames, blank_tried, labels, label_offsets, run_nonempty, run_logp,
            run_blank)``, as ``CTCPrefixBeamSearch.decode_batch`` makes it for this
            utterance: the frames that extend prefixes ``(F,)`` (indices into the
            utterance), whether each tries blank, the labels each tries
            (``labels[label_offsets[i] : label_offsets[i + 1]]``), and the runs ``(F + 1,)``
            before each of them and after the last.
        rows: the extending frames' log posteriors ``(F, V)``.
        boundary: per token, whether it begins a word ``(V,)``.
        token_lm_ids: per token, its id in a token LM ``(V,)``.
        lm_kind: ``NO_LM``, ``TOKEN_LM`` or ``WORD_LM``.
        lm: ``NgramTables.arrays`` (any, with no LM).
        trie: ``SpellingTrie``'s arrays (any, without a word LM).
        fusion: ``(lm_weight, word_bonus, unk_penalty, unk_log10, unknown id, start state,
            end id, partial-word penalty, partial-word length)``.

    Returns:
        ``(tokens, frames, log_probs, lengths, scores, acoustic)``: the ``nbest`` best
        hypotheses, best first, their paths concatenated (each token with the frame it is
        likeliest first emitted at and its log posterior there), their lengths, total scores
        and acoustic scores.
    """
    frames, blank_tried, labels, label_offsets, run_nonempty, run_logp, run_blank = plan
    lm_weight, word_bonus, unk_log10 = fusion[0], fusion[1], fusion[3]
    vocabulary = rows.shape[1]
    capacity = 64
    ints = np.full((capacity, 9), -1, dtype=np.int64)
    floats = np.zeros((capacity, 4))
    free = np.empty(capacity, dtype=np.int64)
    n_free = 0
    n_nodes = 1
    ints[0, _DEPTH] = 0
    ints[0, _CHILDREN] = 0
    ints[0, _WORD] = 0
    ints[0, _LM_STATE] = int(fusion[5]) if lm_kind != NO_LM else 0
    ints[0, _KEPT] = 0
    floats[0, _ENTRY] = _NEG_INF
    floats[0, _FIXED] = 0.0
    floats[0, _PARTIAL] = 0.0
    children = Dict.empty(key_type=types.int64, value_type=types.int64)

    beams = np.zeros(1, dtype=np.int64)
    pb = np.zeros(1)
    pnb = np.full(1, _NEG_INF)
    n_beams = 1
    for step in range(len(frames) + 1):
        if run_nonempty[step]:
            for b in range(n_beams):
                if run_blank[step]:
                    pb[b] = _logaddexp(pb[b], pnb[b]) + run_logp[step]
                    pnb[b] = _NEG_INF
                else:
                    pb[b] += run_logp[step]
                    pnb[b] += run_logp[step]
        if step == len(frames):
            break
        row = rows[step]
        tried = labels[label_offsets[step] : label_offsets[step + 1]]
        tries_blank = blank_tried[step]
        # -- extend: every beam stays, or grows by a tried label -----------------------------
        size = n_beams * (len(tried) + 1)
        next_nodes = np.empty(size, dtype=np.int64)
        next_pb = np.empty(size)
        next_pnb = np.empty(size)
        n_next = 0
        for b in range(n_beams):
            node = beams[b]
            total = _logaddexp(pb[b], pnb[b])
            last = ints[node, _TOKEN]
            repeated = False
            if last >= 0:
                for token in tried:
                    if token == last:
                        repeated = True
            if tries_blank or repeated:
                stay_blank = total + row[blank] if tries_blank else _NEG_INF
                stay_label = pnb[b] + row[last] if repeated else _NEG_INF
                n_next = _add(
                    ints, node, stay_blank, stay_label, next_nodes, next_pb, next_pnb, n_next
                )
            for token in tried:
                key = node * vocabulary + token
                child = children[key] if key in children else -1
                if child < 0:
                    # -- a new prefix: node + token, scored ------------------------------------
                    if n_free > 0:
                        n_free -= 1
                        child = free[n_free]
                    else:
                        if n_nodes == capacity:
                            capacity *= 2
                            grown_ints = np.full((capacity, 9), -1, dtype=np.int64)
                            grown_ints[:n_nodes] = ints
                            ints = grown_ints
                            grown_floats = np.zeros((capacity, 4))
                            grown_floats[:n_nodes] = floats
                            floats = grown_floats
                            grown_free = np.empty(capacity, dtype=np.int64)
                            grown_free[:n_free] = free[:n_free]
                            free = grown_free
                        child = n_nodes
                        n_nodes += 1
                    fixed = floats[node, _FIXED]
                    state = ints[node, _LM_STATE]
                    word = ints[node, _WORD]
                    if lm_kind == TOKEN_LM:
                        log_prob, state = lm_score(lm, unk_log10, state, token_lm_ids[token])
                        fixed += lm_weight * log_prob + word_bonus
                    partial = 0.0
                    if lm_kind == WORD_LM:
                        if boundary[token]:
                            if word != 0:
                                fixed, state = _finish_word(fusion, lm, trie, word, fixed, state)
                            word = _spell(trie, 0, token)
                        else:
                            word = _spell(trie, word, token)
                        if word < 0:
                            partial = fusion[7] * max(1.0, -word / fusion[8])
                    ints[child, _TOKEN] = token
                    ints[child, _PARENT] = node
                    ints[child, _DEPTH] = ints[node, _DEPTH] + 1
                    ints[child, _FRAME] = -1
                    ints[child, _CHILDREN] = 0
                    ints[child, _WORD] = word
                    ints[child, _LM_STATE] = state
                    ints[child, _SLOT] = -1
                    ints[child, _KEPT] = 0
                    floats[child, _LOGP] = 0.0
                    floats[child, _ENTRY] = _NEG_INF
                    floats[child, _FIXED] = fixed
                    floats[child, _PARTIAL] = partial
                    children[key] = child
                    ints[node, _CHILDREN] += 1
                log_prob = row[token]
                joint = (pb[b] if token == last else total) + log_prob
                n_next = _add(ints, child, _NEG_INF, joint, next_nodes, next_pb, next_pnb, n_next)
                if joint > floats[child, _ENTRY]:
                    floats[child, _ENTRY] = joint
                    ints[child, _FRAME] = frames[step]
                    floats[child, _LOGP] = log_prob
        # -- prune: recombine, keep the beam_size best above the floor -------------------------
        if n_next > 1:
            candidates = np.arange(n_next)
            if nbest == 1:
                candidates = _recombine(
                    ints, floats, next_nodes, next_pb, next_pnb, n_next, lm_kind
                )
            scores = np.empty(len(candidates))
            for i in range(len(candidates)):
                c = candidates[i]
                node = next_nodes[c]
                scores[i] = (
                    _logaddexp(next_pb[c], next_pnb[c])
                    + floats[node, _FIXED]
                    + floats[node, _PARTIAL]
                )
            floor = max(scores.max() + beam_prune_logp, _NEG_INF)
            if len(candidates) > beam_size:
                order = np.argsort(-scores, kind="mergesort")[:beam_size]
            else:
                order = np.arange(len(candidates))
            kept = np.empty(len(order), dtype=np.int64)
            n_kept = 0
            for i in order:
                if scores[i] > floor:
                    kept[n_kept] = candidates[i]
                    n_kept += 1
            kept = kept[:n_kept]
        else:
            kept = np.arange(n_next)
        for c in kept:
            ints[next_nodes[c], _KEPT] = 1
        # -- forget: dropped prefixes, and the previous beams that did not go on, leave ------
        n_dropped = 0
        dropped = np.empty(n_next + n_beams, dtype=np.int64)
        for c in range(n_next):
            if ints[next_nodes[c], _KEPT] == 0:
                dropped[n_dropped] = next_nodes[c]
                n_dropped += 1
        for b in range(n_beams):
            if ints[beams[b], _SLOT] < 0:
                dropped[n_dropped] = beams[b]
                n_dropped += 1
        if n_dropped:
            dropped = dropped[:n_dropped]
            depths = np.empty(n_dropped, dtype=np.int64)
            for i in range(n_dropped):
                depths[i] = -ints[dropped[i], _DEPTH]
            for i in np.argsort(depths, kind="mergesort"):
                node = dropped[i]
                while (
                    ints[node, _PARENT] >= 0
                    and ints[node, _CHILDREN] == 0
                    and ints[node, _KEPT] == 0
                ):
                    parent = ints[node, _PARENT]
                    key = parent * vocabulary + ints[node, _TOKEN]
                    if key in children and children[key] == node:
                        del children[key]
                        ints[parent, _CHILDREN] -= 1
                        if n_free == len(free):
                            grown_free = np.empty(2 * len(free), dtype=np.int64)
                            grown_free[:n_free] = free
                            free = grown_free
                        free[n_free] = node
                        n_free += 1
                    node = parent
        # -- the kept prefixes are the next beams -------------------------------------------
        n_beams = len(kept)
        beams = np.empty(n_beams, dtype=np.int64)
        pb = np.empty(n_beams)
        pnb = np.empty(n_beams)
        for i in range(n_beams):
            c = kept[i]
            beams[i] = next_nodes[c]
            pb[i] = next_pb[c]
            pnb[i] = next_pnb[c]
        for c in range(n_next):
            ints[next_nodes[c], _SLOT] = -1
            ints[next_nodes[c], _KEPT] = 0
    # -- finish: the end-of-utterance scores, and the nbest paths ------------------------------
    finals = np.empty(n_beams)
    acoustic = np.empty(n_beams)
    for b in range(n_beams):
        node = beams[b]
        acoustic[b] = _logaddexp(pb[b], pnb[b])
        fixed = floats[node, _FIXED]
        state = ints[node, _LM_STATE]
        if lm_kind == WORD_LM and ints[node, _WORD] != 0:
            fixed, state = _finish_word(fusion, lm, trie, ints[node, _WORD], fixed, state)
        if lm_kind != NO_LM:
            fixed += lm_weight * lm_score(lm, unk_log10, state, int(fusion[6]))[0]
        finals[b] = acoustic[b] + fixed
    best = np.argsort(-finals, kind="mergesort")[:nbest]
    lengths = np.empty(len(best), dtype=np.int64)
    for i in range(len(best)):
        lengths[i] = ints[beams[best[i]], _DEPTH]
    out_tokens = np.empty(lengths.sum(), dtype=np.int64)
    out_frames = np.empty(lengths.sum(), dtype=np.int64)
    out_log_probs = np.empty(lengths.sum())
    end = 0
    for i in range(len(best)):
        end += lengths[i]
        node = beams[best[i]]
        for j in range(end - 1, end - 1 - lengths[i], -1):
            out_tokens[j] = ints[node, _TOKEN]
            out_frames[j] = ints[node, _FRAME]
            out_log_probs[j] = floats[node, _LOGP]
            node = ints[node, _PARENT]
    return out_tokens, out_frames, out_log_probs, lengths, finals[best], acoustic[best]


@numba.njit(cache=True)
def _recombine(ints, floats, nodes, pb, pnb, n: int, lm_kind: int) -> np.ndarray:
    """``ctc._recombine``: the positions (into ``nodes[:n]``) of the beams that no beam with
    the same future dominates, group by group in order of first appearance."""
    groups = Dict.empty(key_type=_FUTURE, value_type=types.int64)
    group_of = np.empty(n, dtype=np.int64)
    for i in range(n):
        node = nodes[i]
        word = ints[node, _WORD] if lm_kind == WORD_LM else 0
        key = (ints[node, _TOKEN], word, ints[node, _LM_STATE])
        group = groups[key] if key in groups else -1
        if group < 0:
            group = len(groups)
            groups[key] = group
        group_of[i] = group
    if len(groups) == n:
        return np.arange(n)
    shallowest = ints[nodes[0], _DEPTH]
    for i in range(n):
        shallowest = min(shallowest, ints[nodes[i], _DEPTH])
    members_pb = np.empty(n)
    members_pnb = np.empty(n)
    totals = np.empty(n)
    for i in range(n):
        offset = floats[nodes[i], _FIXED] + floats[nodes[i], _PARTIAL]
        members_pb[i] = pb[i] + offset
        members_pnb[i] = pnb[i] + offset
        totals[i] = -_logaddexp(members_pb[i], members_pnb[i])
    kept = np.empty(n, dtype=np.int64)
    n_kept = 0
    # members of each group, in order of appearance, then sorted by total
    by_group = np.argsort(group_of, kind="mergesort")
    start = 0
    while start < n:
        stop = start
        while stop < n and group_of[by_group[stop]] == group_of[by_group[start]]:
            stop += 1
        members = by_group[start:stop]
        if len(members) > 1:
            members = members[np.argsort(totals[members], kind="mergesort")]
        first_leader = n_kept
        for i in members:
            node = nodes[i]
            dominated = False
            for k in range(first_leader, n_kept):
                leader = kept[k]
                if members_pb[i] <= members_pb[leader] and members_pnb[i] <= members_pnb[leader]:
                    dominated = True
                    break
            if dominated and ints[node, _CHILDREN] == 0:
                ancestor = ints[node, _PARENT]
                has_ancestor = False
                while ancestor >= 0 and ints[ancestor, _DEPTH] >= shallowest:
                    if ints[ancestor, _SLOT] >= 0:
                        has_ancestor = True
                        break
                    ancestor = ints[ancestor, _PARENT]
                if not has_ancestor:
                    continue
            kept[n_kept] = i
            n_kept += 1
        start = stop
    return kept[:n_kept]
