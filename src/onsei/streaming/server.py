"""The streaming WebSocket endpoint (``onsei stream --serve``; ``onsei serve`` mounts the same
route), and an example page that streams the browser's microphone to it.

Protocol of ``/v1/stream`` (JSON text frames, PCM binary frames):

1. The client's first message is a JSON object: ``sample_rate`` (Hz; audio at other rates
   than 16 kHz is resampled), ``format`` ("s16le" or "f32le", mono), and optionally
   ``model``, ``language``, ``beam_size``, ``min_chunk_seconds``, ``commit_margin_seconds``,
   ``vad``.
2. The server answers ``{"type": "ready", ...}``, or ``{"type": "error", "fatal": true}`` and
   closes.
3. The client sends audio as binary frames (at most ``MAX_FRAME_BYTES`` each) and finally
   ``{"type": "end"}``. The server sends ``partial`` and ``committed`` events as they are due
   (committed words never change), then ``final`` with the whole transcript, and closes.
   A bad frame (oversized, not whole samples, unknown message) gets a non-fatal ``error``
   event and is dropped; the stream goes on.

Each connection has its own streamer state; decodings run in worker threads on models loaded
once and shared. Audio that arrives while a decoding runs is decoded next, in one piece, so a
slow decoder never lets a backlog grow.
"""

from __future__ import annotations

import asyncio
import json
import threading
from importlib import resources
from typing import Any

import numpy as np
from fastapi import WebSocket  # (FastAPI reads the endpoint's annotation by name)

from onsei.audio import SAMPLE_RATE, Resampler
from onsei.errors import OnseiError
from onsei.streaming.events import Final, StreamError

MAX_FRAME_BYTES = 1 << 20
"""Largest binary frame accepted (about 16 s of 16 kHz float32)."""
FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}
STREAM_OPTIONS = (
    "language",
    "beam_size",
    "min_chunk_seconds",
    "buffer_seconds",
    "commit_margin_seconds",
    "vad",
)
ROUTE = "/v1/stream"


class SharedModels:
    """Models loaded once per name and shared by every connection (thread-safe)."""

    def __init__(self, default_model: str, **load_options: Any):
        self.default_model = default_model
        self.load_options = load_options
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str | None):
        from onsei.recognizer import load_model

        name = name or self.default_model
        with self._lock:
            if name not in self._models:
                self._models[name] = load_model(name, **self.load_options)
            return self._models[name]


class StreamConfig:
    """The client's first message, checked."""

    def __init__(self, message: Any):
        if not isinstance(message, dict):
            raise ValueError("the first message must be a JSON object with sample_rate and format")
        rate = message.get("sample_rate")
        if not isinstance(rate, int) or isinstance(rate, bool) or not 8000 <= rate <= 192000:
            raise ValueError(f"sample_rate: expected an integer from 8000 to 192000, got {rate!r}")
        fmt = message.get("format", "s16le")
        if fmt not in FORMATS:
            raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
        unknown = sorted(set(message) - {"type", "sample_rate", "format", "model", *STREAM_OPTIONS})
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")
        self.sample_rate = rate
        self.dtype = FORMATS[fmt]
        self.model = message.get("model")
        self.options = {k: message[k] for k in STREAM_OPTIONS if k in message}

    def decode(self, frame: bytes) -> np.ndarray:
        """PCM bytes -> float32 samples at the declared rate."""
        if len(frame) > MAX_FRAME_BYTES:
            raise ValueError(f"frame of {len(frame)} bytes is larger than {MAX_FRAME_BYTES}")
        if len(frame) % self.dtype.itemsize:
            raise ValueError(
                f"frame of {len(frame)} bytes is not whole {self.dtype.itemsize}-byte samples"
            )
        samples = np.frombuffer(frame, dtype=self.dtype)
        if self.dtype.kind == "i":
            return samples.astype(np.float32) / 32768.0
        return samples.astype(np.float32)


def add_stream_routes(app, models: SharedModels, page_path: str) -> None:
    """Add the WebSocket ``ROUTE`` and, at ``page_path``, the example page to ``app``
    (FastAPI); ``models`` is anything with ``get(name)`` that returns a model."""
    from fastapi.responses import HTMLResponse

    page = resources.files("onsei.streaming").joinpath("static/stream.html").read_text("utf-8")

    @app.get(page_path, response_class=HTMLResponse)
    async def example_page() -> str:
        return page

    @app.websocket(ROUTE)
    async def stream(websocket: WebSocket) -> None:
        await handle_stream(websocket, models)


def create_app(models: SharedModels):
    """The FastAPI application: ``/v1/stream`` (WebSocket) and ``/`` (the example page)."""
    from fastapi import FastAPI

    app = FastAPI(title="onsei streaming")
    add_stream_routes(app, models, "/")
    return app


class _Sender:
    """Sends JSON events one at a time (the receiving task reports bad frames too)."""

    def __init__(self, websocket):
        self.websocket = websocket
        self.lock = asyncio.Lock()

    async def __call__(self, message: dict) -> None:
        async with self.lock:
            await self.websocket.send_json(message)


async def handle_stream(websocket, models: SharedModels) -> None:
    """One client's stream, from its configuration to the final transcript."""
    from starlette.websockets import WebSocketDisconnect

    await websocket.accept()
    send = _Sender(websocket)
    try:
        try:
            config = StreamConfig(json.loads(await websocket.receive_text()))
            model = await asyncio.to_thread(models.get, config.model)
            streamer = model.streamer(**config.options)
        except (ValueError, OnseiError) as error:  # json.JSONDecodeError is a ValueError
            await send(StreamError(f"{error}", fatal=True).to_dict())
            await websocket.close(code=1008)
            return
        name = config.model or models.default_model
        await send({"type": "ready", "model": name, "sample_rate": SAMPLE_RATE})
        await _run(websocket, send, config, streamer)
    except (WebSocketDisconnect, ConnectionError, RuntimeError):
        return  # the client went away (or closed early): its state goes with it


async def _run(websocket, send: _Sender, config: StreamConfig, streamer) -> None:
    arrived: asyncio.Queue = asyncio.Queue()
    end = object()
    resampler = Resampler(config.sample_rate, SAMPLE_RATE)

    async def receive() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                await arrived.put(None)
                return
            if message.get("bytes") is not None:
                try:
                    await arrived.put(resampler(config.decode(message["bytes"])))
                except ValueError as error:
                    await send(StreamError(str(error)).to_dict())
                continue
            try:
                kind = json.loads(message.get("text") or "null").get("type")
            except (ValueError, AttributeError):
                kind = None
            if kind == "end":
                await arrived.put(resampler.flush())
                await arrived.put(end)
                return
            await send(StreamError('expected audio frames or {"type": "end"}').to_dict())

    receiver = asyncio.create_task(receive())
    try:
        while True:
            items = [await arrived.get()]
            while not arrived.empty():
                items.append(arrived.get_nowait())
            if any(item is None for item in items):
                return  # disconnected
            audio = [item for item in items if isinstance(item, np.ndarray) and len(item)]
            if audio:
                for event in await asyncio.to_thread(streamer.accept, np.concatenate(audio)):
                    await send(event.to_dict())
            if any(item is end for item in items):
                for event in await asyncio.to_thread(streamer.finish):
                    await send(event.to_dict())
                    if isinstance(event, Final):
                        await websocket.close()
                return
    finally:
        receiver.cancel()


def serve(host: str, port: int, *, default_model: str, **load_options: Any) -> int:
    """Run the streaming server until interrupted."""
    import uvicorn

    models = SharedModels(default_model, **load_options)
    models.get(None)  # load the default model before the first client waits for it
    print(f"onsei stream: ws://{host}:{port}{ROUTE} (example page: http://{host}:{port}/)")
    uvicorn.run(create_app(models), host=host, port=port, log_level="warning")
    return 0
