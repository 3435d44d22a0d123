"""A small client of the streaming WebSocket: plays a file into ``/v1/stream`` (at real-time
speed by default) and yields the server's events as they come.

    python -m onsei.streaming.client ws://127.0.0.1:8765/v1/stream talk.wav [--fast]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from onsei.audio import SAMPLE_RATE
from onsei.streaming.sources import file_chunks


def stream_file(
    url: str, path: str | os.PathLike, *, realtime: bool = True, **config: Any
) -> Iterator[dict]:
    """Send ``path`` as 16 kHz s16le frames of 0.1 s, then ``end``; yield each event (dicts
    as the server sends them: ready, partial, committed, error, final)."""
    from websockets.sync.client import connect

    with connect(url, max_size=None) as websocket:
        websocket.send(json.dumps({"sample_rate": SAMPLE_RATE, "format": "s16le", **config}))
        failure: list[BaseException] = []

        def send_audio() -> None:
            try:
                for chunk in file_chunks(path, realtime=realtime):
                    pcm = (np.clip(chunk, -1.0, 1.0) * 32767).astype("<i2")
                    websocket.send(pcm.tobytes())
                websocket.send(json.dumps({"type": "end"}))
            except Exception as error:  # the server closed early: its last event says why
                failure.append(error)

        ready = json.loads(websocket.recv())
        yield ready
        if ready.get("type") != "ready":
            return
        sender = threading.Thread(target=send_audio, daemon=True)
        sender.start()
        for message in websocket:
            event = json.loads(message)
            yield event
            if event.get("type") == "final":
                break
        sender.join(timeout=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="e.g. ws://127.0.0.1:8765/v1/stream")
    parser.add_argument("audio", help="file to stream")
    parser.add_argument("--fast", action="store_true", help="send as fast as possible")
    parser.add_argument("--language", default=None)
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    config = {k: v for k, v in (("language", args.language), ("model", args.model)) if v}
    for event in stream_file(args.url, args.audio, realtime=not args.fast, **config):
        if event["type"] == "committed":
            print(f"[{event['start']:7.2f} -> {event['end']:7.2f}] {event['text']}", flush=True)
        elif event["type"] == "final":
            print(event["transcript"]["text"])
        elif event["type"] == "error":
            print(f"error: {event['message']}", flush=True)


if __name__ == "__main__":
    main()
