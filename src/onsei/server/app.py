"""The application of ``onsei serve``: the HTTP API (``api``), the streaming WebSocket
(``/v1/stream``, its example page at ``/stream``) and the Gradio web UI at ``/``."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from onsei.server.api import ServerConfig, create_api
from onsei.server.models import ModelPool, discover_models
from onsei.server.workers import DecodePool


def create_app(config: ServerConfig, ui: bool = True) -> FastAPI:
    from onsei.streaming.server import add_stream_routes

    pool = ModelPool(
        discover_models(config.models_dir),
        config.default_model,
        config.memory_limit_bytes,
        device=config.device,
        compute_type=config.compute_type,
        threads=config.threads,
    )
    workers = DecodePool(config.workers, config.queue, config.request_timeout_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        workers.shutdown()

    app = FastAPI(
        title="onsei", description="Offline speech recognition", version="0.1.0", lifespan=lifespan
    )
    app.state.pool, app.state.workers = pool, workers
    app.include_router(create_api(config, pool, workers))
    add_stream_routes(app, pool, "/stream")

    if ui:
        import gradio

        from onsei.server.ui import build_ui

        app = gradio.mount_gradio_app(app, build_ui(pool, workers, config), path="/")
    return app
