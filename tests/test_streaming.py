"""Streaming: LocalAgreement, the Whisper streaming policy (with a scripted recognizer and with
tiny.en on real speech), sources (file, a fake microphone), the CLI and the WebSocket server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import JFK_TEXT, words_of

from onsei.cli import main
from onsei.metrics import error_counts
from onsei.streaming.agreement import LocalAgreement
from onsei.streaming.events import Committed, Final, Partial
from onsei.streaming.sources import file_chunks, latest
from onsei.streaming.whisper_stream import StreamOptions, WhisperStreamer
from onsei.transcript import Transcript, Word

SR = 16000


def w(text: str, start: float, end: float) -> Word:
    return Word(start=start, end=end, word=" " + text, probability=0.9)


# -- LocalAgreement ----------------------------------------------------------------------


def test_words_are_committed_when_two_hypotheses_agree():
    agreement = LocalAgreement()
    assert agreement.update([w("ask", 0.0, 0.4), w("not", 0.5, 0.8)]) == []
    committed = agreement.update([w("Ask", 0.0, 0.4), w("not,", 0.5, 0.8), w("what", 0.9, 1.1)])
    assert [x.word for x in committed] == [" Ask", " not,"]  # case and punctuation aside
    assert [x.word for x in agreement.tentative] == [" what"]
    # the next hypothesis holds the words after the committed ones
    later = agreement.update([w("what", 0.9, 1.1), w("your", 1.2, 1.4)])
    assert [x.word for x in later] == [" what"]
    assert [x.word for x in agreement.committed] == [" Ask", " not,", " what"]


def test_a_hypothesis_that_disagrees_commits_nothing_and_replaces_the_tentative_words():
    agreement = LocalAgreement()
    agreement.update([w("one", 0.0, 0.3), w("two", 0.4, 0.7)])
    assert agreement.update([w("won", 0.0, 0.3), w("two", 0.4, 0.7)]) == []
    assert [x.word for x in agreement.tentative] == [" won", " two"]
    assert [x.word for x in agreement.flush()] == [" won", " two"]
    assert agreement.committed_end == 0.7 and agreement.tentative == []


# -- the policy, with a recognizer that hears a script -------------------------------------


class ScriptedRecognizer:
    """Hears the words of a script at their times: decoding audio returns the script's words
    that lie inside it, in buffer times. The audio is a ramp that encodes each sample's
    stream position, so the recognizer knows where the buffer begins."""

    def __init__(self, words: list[Word]):
        self.words = words
        self.calls: list[tuple[float, float]] = []

    def transcribe(self, audio, **options) -> Transcript:
        from onsei.transcript import Segment

        start = round(float(audio[0]) * 1e7) / SR if len(audio) else 0.0
        end = start + len(audio) / SR
        self.calls.append((start, end))
        heard = [
            Word(x.start - start, x.end - start, x.word, x.probability)
            for x in self.words
            if x.start >= start - 0.01 and x.end <= end
        ]
        text = "".join(x.word for x in heard)
        return Transcript([Segment(0, 0.0, end - start, text, words=heard)], language="en")

    def transcribe_window(self, audio, *, language, prompt, prefix=None, **options) -> Transcript:
        """The words heard after the ``prefix`` (as many as it has)."""
        transcript = self.transcribe(audio)
        segment = transcript.segments[0]
        segment.words = segment.words[len(prefix.split()) if prefix else 0 :]
        segment.text = "".join(x.word for x in segment.words)
        return transcript


def ramp(seconds: float, start: int = 0) -> np.ndarray:
    return ((np.arange(round(seconds * SR)) + start) / 1e7).astype(np.float32)


def feed(streamer: WhisperStreamer, seconds: float, chunk: float = 0.1) -> list:
    events, position = [], 0
    for _ in range(round(seconds / chunk)):
        events += streamer.accept(ramp(chunk, position))
        position += round(chunk * SR)
    return events + streamer.finish()


def test_committed_words_are_final_and_the_transcript_is_their_sum():
    script = [w(f"word{i}", 0.3 * i + 0.05, 0.3 * i + 0.25) for i in range(40)]  # 12 s
    recognizer = ScriptedRecognizer(script)
    options = StreamOptions(vad=False, min_chunk_seconds=0.5)
    events = feed(WhisperStreamer(recognizer, options), 12.2)
    committed = [e for e in events if isinstance(e, Committed)]
    words = [x for e in committed for x in e.words]
    assert [x.word for x in words] == [x.word for x in script]  # each word once, in order
    assert all(a.end <= b.start for a, b in zip(words, words[1:], strict=False))
    final = events[-1]
    assert isinstance(final, Final) and final.transcript.text == " ".join(e.text for e in committed)
    for event in events:
        json.dumps(event.to_dict())  # every event is one JSON message


def test_committed_words_in_the_buffer_are_its_prefix_and_those_before_it_the_prompt():
    script = [w(f"word{i}", 0.3 * i + 0.05, 0.3 * i + 0.25) for i in range(60)]  # 18 s
    seen = []

    class Recorder(ScriptedRecognizer):
        def transcribe_window(self, audio, *, language, prompt, prefix=None, **options):
            start = round(float(audio[0]) * 1e7) / SR
            seen.append((start, prompt, prefix))
            return super().transcribe_window(audio, language=language, prompt=prompt, prefix=prefix)

    options = StreamOptions(vad=False, min_chunk_seconds=0.5, buffer_seconds=6)
    feed(WhisperStreamer(Recorder(script), options), 18.2)
    assert any(start > 0 for start, _, _ in seen), "the buffer was never trimmed"
    for start, prompt, prefix in seen:
        # the buffer is cut at committed words only, so all the words before it are committed
        before = [x.word.strip() for x in script if x.end <= start + 0.01]
        assert prompt == (" ".join(before)[-200:] or None)
        inside = (prefix or "").split()
        assert inside == [x.word.strip() for x in script[len(before) : len(before) + len(inside)]]
    assert any(prefix for _, _, prefix in seen)


def test_words_said_without_audio_end_a_hypothesis():
    from onsei.streaming.whisper_stream import _heard

    heard = [w("ask", 3.5, 3.8), w("not.", 3.8, 4.4)]
    unheard = [w("Ask", 4.6, 4.6), w("not.", 4.6, 4.6)]  # Whisper saying them again
    assert _heard(heard + unheard) == heard
    # a last word without audio is a word the prompt suggests ("... is pure. 5.")
    assert _heard([*heard, w("5.", 4.6, 4.6)]) == heard
    # one word the alignment squeezes among others is still speech; so is a word said twice
    squeezed = [w("what", 5.7, 5.7), w("your", 5.7, 6.0), w("five", 6.0, 6.3), w("five", 6.4, 6.7)]
    assert _heard(squeezed) == squeezed


def test_a_decoding_whisper_deems_no_speech_gives_no_words():
    from faster_whisper.transcribe import get_compression_ratio

    from onsei.streaming.whisper_stream import _speech
    from onsei.transcript import Segment

    def segment(text: str, no_speech: float, logprob: float) -> Segment:
        ratio = get_compression_ratio(text)
        return Segment(
            0,
            0.0,
            2.0,
            text,
            avg_logprob=logprob,
            no_speech_prob=no_speech,
            compression_ratio=ratio,
        )

    assert not _speech(segment(" Thank you.", 0.82, -1.3))  # Whisper's rule: silence
    assert _speech(segment(" Thank you.", 0.82, -0.4))  # confident words are kept
    assert _speech(segment(" Ask not.", 0.1, -1.3))
    assert not _speech(segment(" the the the the the the the the the the the the", 0.0, -0.2))


def test_words_near_the_end_of_the_audio_wait_for_the_next_decoding():
    agreement = LocalAgreement()
    hypothesis = [w("ask", 0.0, 0.4), w("not", 0.5, 0.8), w("what", 0.9, 1.1)]
    agreement.update(hypothesis, until=0.6)
    committed = agreement.update(hypothesis, until=0.6)  # agreed, but "not" ends after 0.6
    assert [x.word for x in committed] == [" ask"]
    assert [x.word for x in agreement.update(hypothesis[1:], until=1.5)] == [" not", " what"]


def test_a_stream_whose_committed_words_hide_the_speech_after_them_recovers():
    # the decoder, forced through committed words, says nothing more (it believes they cover
    # the audio): the streamer decodes the audio after them without them
    script = [w(f"word{i}", 0.3 * i + 0.05, 0.3 * i + 0.25) for i in range(24)]  # 7.2 s

    class Stuck(ScriptedRecognizer):
        def transcribe_window(self, audio, *, language, prompt, prefix=None, **options):
            transcript = super().transcribe_window(audio, language=language, prompt=prompt)
            if prefix:
                transcript.segments[0].words = []
            return transcript

    options = StreamOptions(vad=False, min_chunk_seconds=0.5, commit_margin_seconds=0.0)
    events = feed(WhisperStreamer(Stuck(script), options), 9.2)
    words = [x.word for e in events if isinstance(e, Committed) for x in e.words]
    assert words == [x.word for x in script]


def test_the_buffer_stays_bounded_in_a_stream_that_never_ends():
    # speech that never agrees with itself (no word is heard twice alike) for two minutes
    class Babbler(ScriptedRecognizer):
        def transcribe(self, audio, **options):
            transcript = super().transcribe(audio, **options)
            for i, word in enumerate(transcript.words):
                word.word = f" w{len(self.calls)}_{i}"
            return transcript

    script = [w("x", 0.5 * i, 0.5 * i + 0.3) for i in range(240)]
    options = StreamOptions(
        vad=False, min_chunk_seconds=1.0, buffer_seconds=8, max_buffer_seconds=12
    )
    recognizer = Babbler(script)
    streamer = WhisperStreamer(recognizer, options)
    longest = 0
    for i in range(1200):
        streamer.accept(ramp(0.1, i * 1600))
        longest = max(longest, len(streamer.buffer))
    assert longest <= (12 + 1.1) * SR
    assert max(end - start for start, end in recognizer.calls) <= 12 + 1.1


# -- tiny.en on real speech ------------------------------------------------------------------


@pytest.mark.slow
def test_streaming_real_speech_commits_what_was_said(tiny_en, jfk_flac):
    events = list(tiny_en.stream(file_chunks(jfk_flac), language="en"))
    committed = [e for e in events if isinstance(e, Committed)]
    assert committed and isinstance(events[-1], Final)
    text = " ".join(e.text for e in committed)
    counts = error_counts([" ".join(words_of(JFK_TEXT))], [" ".join(words_of(text))])
    assert counts.rate < 0.3, text
    starts = [x.start for e in committed for x in e.words]
    assert starts == sorted(starts)
    assert any(isinstance(e, Partial) and e.text for e in events)


@pytest.mark.slow
def test_silence_costs_no_decoding(tiny_en):
    decodings = []
    real = tiny_en.transcribe

    def spy(audio, **options):
        decodings.append(len(audio))
        return real(audio, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tiny_en, "transcribe", spy)
        patch.setattr(tiny_en, "transcribe_window", spy)
        streamer = tiny_en.streamer(language="en")
        for _ in range(100):  # 10 s of digital silence
            streamer.accept(np.zeros(1600, dtype=np.float32))
        events = streamer.finish()
    assert decodings == []
    assert len(streamer.buffer) <= SR  # what speech could start with, no more
    assert isinstance(events[-1], Final) and events[-1].transcript.segments == []


def test_bad_stream_options_are_named(tiny_en):
    from onsei.errors import OptionError

    with pytest.raises(OptionError, match="unknown streaming option 'beams'"):
        tiny_en.streamer(beams=3)
    with pytest.raises(OptionError, match="buffer limits"):
        tiny_en.streamer(buffer_seconds=40)
    with pytest.raises(OptionError, match="beam_size: must be at least 1, got 0"):
        tiny_en.streamer(beam_size=0)
    with pytest.raises(OptionError, match="commit_margin_seconds: must not be negative"):
        tiny_en.streamer(commit_margin_seconds=-1)


# -- sources ----------------------------------------------------------------------------------


def test_latest_joins_what_arrived_while_the_consumer_was_busy():
    def slow_source():
        for i in range(6):
            yield np.full(10, i, dtype=np.float32)
            time.sleep(0.02)

    pieces = []
    for piece in latest(slow_source()):
        pieces.append(piece)
        time.sleep(0.07)  # a slow decoder
    joined = np.concatenate(pieces)
    assert joined.tolist() == np.repeat(np.arange(6), 10).tolist()
    assert len(pieces) < 6


def test_a_realtime_file_arrives_at_the_speed_of_speech(tmp_path):
    audio = np.zeros(SR // 2, dtype=np.float32)
    import soundfile

    soundfile.write(tmp_path / "half.wav", audio, SR)
    started = time.monotonic()
    chunks = list(file_chunks(tmp_path / "half.wav", realtime=True))
    assert time.monotonic() - started >= 0.45
    assert sum(len(c) for c in chunks) == SR // 2 and len(chunks) == 5


class FakeInputStream:
    """sounddevice.InputStream on a machine without a sound card: plays a file into the
    callback at real-time speed from a thread, at the device's 48 kHz."""

    audio: np.ndarray = np.zeros(0, dtype=np.float32)

    def __init__(self, device, samplerate, channels, dtype, blocksize, callback):
        self.callback, self.blocksize, self.channels = callback, blocksize, channels
        self.running = False

    def __enter__(self):
        self.running = True
        threading.Thread(target=self._play, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.running = False

    def _play(self):
        for start in range(0, len(self.audio), self.blocksize):
            if not self.running:
                return
            block = self.audio[start : start + self.blocksize]
            self.callback(np.repeat(block[:, None], self.channels, axis=1), len(block), None, None)
            time.sleep(len(block) / 48000 / 8)  # eight times real time, to keep the test short


@pytest.fixture()
def fake_microphone(monkeypatch, jfk_flac):
    import types

    from onsei.audio import load_audio

    FakeInputStream.audio = load_audio(jfk_flac, sample_rate=48000)
    devices = [{"name": "Fake mic", "max_input_channels": 2, "default_samplerate": 48000.0}]
    fake = types.SimpleNamespace(
        InputStream=FakeInputStream,
        PortAudioError=RuntimeError,
        default=types.SimpleNamespace(device=(0, -1)),
        # (with a kind or a device: that device's description; without: all of them)
        query_devices=lambda device=None, kind=None: (
            devices if device is kind is None else devices[0]
        ),
    )
    monkeypatch.setattr("onsei.streaming.sources._sounddevice", lambda: fake)
    return fake


def test_the_microphone_is_mixed_and_resampled_to_16k(fake_microphone):
    from onsei.streaming.sources import input_devices, microphone_chunks

    assert [(d.index, d.name, d.default) for d in input_devices()] == [(0, "Fake mic", True)]
    total = 0
    for chunk in microphone_chunks():
        assert chunk.dtype == np.float32 and chunk.ndim == 1
        total += len(chunk)
        if total >= 3 * SR:
            break
    assert total >= 3 * SR


@pytest.mark.slow
def test_stream_mic_ends_on_ctrl_c_and_writes_the_session(fake_microphone, tmp_path, capsys):
    import onsei.streaming.sources as sources

    real = sources.microphone_chunks

    def interrupted_after_the_clip(device=None):
        heard = 0
        for chunk in real(device):
            heard += len(chunk)
            yield chunk
            if heard >= 10 * SR:
                raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sources, "microphone_chunks", interrupted_after_the_clip)
        output = ["-o", str(tmp_path), "-f", "json", "--language", "en"]
        assert main(["stream", "--mic", "--model", "tiny.en", *output]) == 0
    (written,) = tmp_path.glob("stream-*.json")
    transcript = Transcript.from_dict(json.loads(written.read_text()))
    assert "country" in words_of(transcript.text)
    assert "->" in capsys.readouterr().out  # not a terminal: one line per commit


@pytest.mark.slow
def test_stream_a_file_from_the_command_line(jfk_flac, tmp_path, capsys):
    output = ["-o", str(tmp_path), "-f", "all"]
    assert main(["stream", str(jfk_flac), "--model", "tiny.en", *output]) == 0
    for ext in ("txt", "srt", "vtt", "tsv", "json"):
        assert (tmp_path / f"jfk.{ext}").is_file()
    assert "country" in words_of((tmp_path / "jfk.txt").read_text())


def test_stream_needs_exactly_one_input(capsys):
    assert main(["stream"]) == 2
    assert "give one of AUDIO, --mic or --serve" in capsys.readouterr().err


# -- the WebSocket server -------------------------------------------------------------------


@pytest.fixture(scope="module")
def stream_client():
    from fastapi.testclient import TestClient

    from onsei.streaming.server import SharedModels, create_app

    with TestClient(create_app(SharedModels("tiny.en", device="cpu"))) as client:
        yield client


def _pcm(path: Path, seconds: float | None = None) -> bytes:
    from onsei.audio import load_audio

    audio = load_audio(path)
    if seconds is not None:
        audio = audio[: round(seconds * SR)]
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


@pytest.mark.slow
def test_websocket_stream_gives_committed_words_and_the_final_transcript(stream_client, jfk_flac):
    pcm = _pcm(jfk_flac)
    with stream_client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"sample_rate": SR, "format": "s16le", "language": "en"}))
        assert ws.receive_json()["type"] == "ready"
        for start in range(0, len(pcm), 3200):
            ws.send_bytes(pcm[start : start + 3200])
        ws.send_bytes(b"\x00\x01\x02")  # not whole samples: an error event, the stream goes on
        ws.send_text("hello")  # neither audio nor end
        ws.send_text(json.dumps({"type": "end"}))
        events = []
        while not events or events[-1]["type"] != "final":
            events.append(ws.receive_json())
    kinds = [e["type"] for e in events]
    assert kinds.count("error") == 2 and "committed" in kinds
    assert "not whole 2-byte samples" in next(e for e in events if e["type"] == "error")["message"]
    final = events[-1]["transcript"]
    assert "country" in words_of(final["text"])
    committed = " ".join(e["text"] for e in events if e["type"] == "committed")
    assert words_of(committed) == words_of(final["text"])
    assert all(
        w["start"] <= w["end"] for e in events if e["type"] == "committed" for w in e["words"]
    )


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("not json", "Expecting value"),
        (json.dumps({"sample_rate": 4000, "format": "s16le"}), "sample_rate: expected an integer"),
        (json.dumps({"sample_rate": SR, "format": "mp3"}), "format: expected one of"),
        (json.dumps({"sample_rate": SR, "colour": "red"}), "unknown field 'colour'"),
        (json.dumps({"sample_rate": SR, "model": "nosuch"}), "unknown model 'nosuch'"),
        (json.dumps({"sample_rate": SR, "min_chunk_seconds": -1}), "min_chunk_seconds"),
    ],
)
def test_websocket_bad_configuration_is_a_fatal_error_event(stream_client, config, message):
    with stream_client.websocket_connect("/v1/stream") as ws:
        ws.send_text(config)
        event = ws.receive_json()
    assert event["type"] == "error" and event["fatal"] and message in event["message"]


def test_websocket_oversized_frames_are_refused_and_the_stream_goes_on(stream_client):
    from onsei.streaming.server import MAX_FRAME_BYTES

    with stream_client.websocket_connect("/v1/stream") as ws:
        ws.send_text(json.dumps({"sample_rate": SR, "format": "f32le"}))
        assert ws.receive_json()["type"] == "ready"
        ws.send_bytes(b"\x00" * (MAX_FRAME_BYTES + 4))
        error = ws.receive_json()
        assert error["type"] == "error" and "larger than" in error["message"]
        ws.send_bytes(np.zeros(SR, dtype="<f4").tobytes())
        ws.send_text(json.dumps({"type": "end"}))
        events = [ws.receive_json()]
        while events[-1]["type"] != "final":
            events.append(ws.receive_json())
    assert events[-1]["transcript"]["segments"] == []


@pytest.mark.slow
def test_four_streams_at_once_and_a_client_that_vanishes(jfk_flac):
    import socket

    import uvicorn

    from onsei.streaming.client import stream_file
    from onsei.streaming.server import SharedModels, create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(SharedModels("tiny.en", device="cpu")), port=port, log_level="error"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"ws://127.0.0.1:{port}/v1/stream"
    try:
        from websockets.sync.client import connect

        with connect(url) as vanishing:  # sends half a clip and disconnects
            vanishing.send(json.dumps({"sample_rate": SR, "format": "s16le"}))
            vanishing.recv()
            vanishing.send(_pcm(jfk_flac, 5.0))
        results: dict[int, str] = {}

        def client(i: int) -> None:
            events = list(stream_file(url, jfk_flac, realtime=False, language="en"))
            results[i] = events[-1]["transcript"]["text"] if events[-1]["type"] == "final" else ""

        threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert sorted(results) == [0, 1, 2, 3]
        assert all("country" in words_of(text) for text in results.values()), results
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_windows_are_the_buffer_padded_at_least_15_and_at_most_30_seconds():
    from onsei.whisper.window import window_frames

    assert window_frames(300) == 1500
    assert window_frames(1450) == 1600  # 1 s of padding, rounded up to 2 s
    assert window_frames(2100) == 2200
    assert window_frames(2950) == 3000 and window_frames(5000) == 3000


@pytest.mark.slow
def test_a_short_window_decodes_like_the_full_one(tiny_en, jfk_flac):
    from onsei.audio import load_audio

    audio = load_audio(jfk_flac)
    window = tiny_en.transcribe_window(audio, language="en", prompt=None)
    full = tiny_en.transcribe(audio, language="en", beam_size=1, vad_filter=False)
    assert words_of(window.text) == words_of(full.text)
    words = window.words
    assert words and all(0 <= w.start <= w.end <= 11.1 for w in words)
    assert words_of("".join(w.word for w in words)) == words_of(window.text)
    prompted = tiny_en.transcribe_window(audio[: 4 * SR], language="en", prompt="Speech by JFK.")
    assert "fellow" in words_of(prompted.text)


@pytest.mark.slow
def test_a_window_with_a_prefix_gives_only_the_words_after_it(tiny_en, jfk_flac):
    from onsei.audio import load_audio

    audio = load_audio(jfk_flac)
    free = tiny_en.transcribe_window(audio, language="en", prompt=None)
    forced = tiny_en.transcribe_window(
        audio, language="en", prompt=None, prefix="And so my fellow Americans,"
    )
    assert words_of(forced.text) == words_of(free.text)[5:]
    assert words_of("".join(w.word for w in forced.words)) == words_of(free.text)[5:]
    americans_end = free.words[4].end
    assert forced.words[0].start >= americans_end - 0.5  # timed after the prefix's speech
    assert all(a.start <= b.start for a, b in zip(forced.words, forced.words[1:], strict=False))


@pytest.mark.slow
def test_a_looping_greedy_window_is_cut_short_and_decoded_again_with_beam_search(
    tiny_en, jfk_flac, monkeypatch
):
    from types import SimpleNamespace

    from onsei.audio import load_audio

    audio = load_audio(jfk_flac)[: 4 * SR]
    engine = tiny_en.model.model
    calls = []

    class LoopingWhenGreedy:
        """The engine, except that greedy search repeats one token up to the length cap."""

        def __getattr__(self, name):
            return getattr(engine, name)

        def generate(self, features, prompts, *, beam_size, max_length, **options):
            calls.append((beam_size, max_length - len(prompts[0])))
            if beam_size > 1:
                return engine.generate(
                    features, prompts, beam_size=beam_size, max_length=max_length, **options
                )
            loop = [11] * (max_length - len(prompts[0]))
            return [SimpleNamespace(sequences_ids=[loop], scores=[-0.1], no_speech_prob=0.0)]

    monkeypatch.setattr(tiny_en.model, "model", LoopingWhenGreedy())
    window = tiny_en.transcribe_window(audio, language="en", prompt=None)
    assert calls == [(1, 8 * 4 + 10), (5, 8 * 4 + 10)]  # 8 tokens a second and 10 more
    assert "fellow" in words_of(window.text)
