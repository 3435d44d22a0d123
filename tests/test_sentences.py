from onsei.transcript import Segment, Word
from onsei.whisper.sentences import MAX_SEGMENT_SECONDS, split_segment


def words(*timed: tuple[str, float, float]) -> list[Word]:
    return [Word(start=s, end=e, word=w, probability=0.9) for w, s, e in timed]


def chunk(timed_words: list[Word]) -> Segment:
    return Segment(
        id=3,
        start=0.0,
        end=30.0,
        text="".join(w.word for w in timed_words),
        words=timed_words,
        tokens=[1, 2, 3],
        avg_logprob=-0.3,
        no_speech_prob=0.05,
        compression_ratio=1.4,
        temperature=0.0,
    )


def encode(text: str) -> list[int]:
    return [len(w) for w in text.split()]


def test_a_chunk_is_cut_after_each_sentence_with_its_own_times_text_and_tokens():
    segment = chunk(
        words(
            (" Go", 0.4, 0.7),
            (" on.", 0.7, 1.0),
            (" Is", 2.0, 2.2),
            (" it", 2.2, 2.4),
            (' "done?"', 2.4, 3.0),
            (" Yes", 4.1, 4.5),
        )
    )
    pieces = split_segment(segment, encode)
    assert [p.text for p in pieces] == [" Go on.", ' Is it "done?"', " Yes"]
    assert [(p.start, p.end) for p in pieces] == [(0.4, 1.0), (2.0, 3.0), (4.1, 4.5)]
    assert pieces[1].words == segment.words[2:5]
    assert pieces[1].tokens == [2, 2, 7]
    assert {(p.avg_logprob, p.no_speech_prob, p.temperature) for p in pieces} == {(-0.3, 0.05, 0.0)}
    assert "".join(p.text for p in pieces) == segment.text


def test_a_long_sentence_is_cut_at_its_longest_pauses_until_short_enough():
    # spelled letters without punctuation, 0.4 s each, pauses of 0.1 s, one of 0.6 s at 8 s
    timed, t = [], 0.0
    for i in range(40):
        timed.append((f" {chr(65 + i % 26)}", t, t + 0.4))
        t += 0.4 + (0.6 if i == 15 else 0.1)
    pieces = split_segment(chunk(words(*timed)), encode)
    assert pieces[0].end == timed[15][2]  # the 0.6-s pause is the first cut
    assert all(p.end - p.start <= MAX_SEGMENT_SECONDS for p in pieces)
    assert sum(len(p.words) for p in pieces) == 40 and len(pieces) == 3


def test_a_short_segment_or_one_without_words_is_kept_as_it_is():
    short = chunk(words((" Hello", 0.0, 0.5), (" there.", 0.5, 1.0)))
    assert split_segment(short, encode) == [short]
    bare = Segment(id=0, start=0.0, end=30.0, text=" Hello.")
    assert split_segment(bare, encode) == [bare]
    one_word = chunk(words((" Ooooh", 0.0, 25.0)))
    assert split_segment(one_word, encode) == [one_word]
