"""The OpenAI-compatible HTTP API: ``POST /v1/audio/transcriptions`` and
``/v1/audio/translations`` (multipart, the OpenAI fields), ``GET /v1/models``, ``GET /health``.

Errors are JSON bodies as OpenAI's: ``{"error": {"message", "type", "param", "code"}}``. The
upload is checked by decoding it (never by its name or type), within a size and a duration
limit; decoding runs in the worker pool, so a burst of requests gets 503 instead of
exhausting memory.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from onsei.audio import SAMPLE_RATE, load_audio
from onsei.errors import AudioError, ModelError, OnseiError
from onsei.languages import language_name
from onsei.server.models import ModelPool
from onsei.server.workers import Busy, DecodePool
from onsei.transcript import Transcript

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json", "diarized_json")


@dataclass
class ServerConfig:
    default_model: str = "base"
    models_dir: str | None = "exp"
    """Where fine-tuned and trained experiments are found (their folder name is the id)."""
    api_key: str | None = None
    workers: int = 1
    queue: int = 4
    """Requests that may wait for a worker; more get 503."""
    request_timeout_seconds: float = 600.0
    max_upload_bytes: int = 100 << 20
    max_audio_seconds: float = 4 * 3600.0
    memory_limit_bytes: int = 2 << 30
    """Models kept loaded (their weights' size on disk) before the least recently used goes."""
    device: str = "auto"
    compute_type: str = "default"
    threads: int = 0


class APIError(Exception):
    def __init__(
        self, status: int, message: str, param: str | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self) -> JSONResponse:
        kind = {401: "authentication_error", 503: "server_error", 504: "server_error"}
        body = {
            "error": {
                "message": self.message,
                "type": kind.get(self.status, "invalid_request_error"),
                "param": self.param,
                "code": self.code,
            }
        }
        return JSONResponse(body, status_code=self.status)


def check_key(request: Request, api_key: str | None) -> None:
    if api_key is None:
        return
    given = request.headers.get("authorization", "")
    if not (given.startswith("Bearer ") and secrets.compare_digest(given[7:], api_key)):
        raise APIError(401, "Incorrect or missing API key: send 'Authorization: Bearer KEY'.")


async def read_upload(request: Request, config: ServerConfig) -> tuple[dict[str, Any], bytes]:
    """The form's fields and the file's bytes, within the upload limit."""
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and declared.isdigit()
        and int(declared) > config.max_upload_bytes + (1 << 16)
    ):
        raise APIError(413, _too_large(config), "file", "file_too_large")
    try:
        form = await request.form(max_files=1, max_fields=50)
    except Exception as error:  # starlette raises several kinds for a broken body
        raise APIError(400, f"Could not parse the multipart form: {error}") from None
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise APIError(400, "No file: send the audio as the multipart field 'file'.", "file")
    data = bytearray()
    while chunk := await upload.read(1 << 20):
        data += chunk
        if len(data) > config.max_upload_bytes:
            raise APIError(413, _too_large(config), "file", "file_too_large")
    await upload.close()
    fields: dict[str, Any] = {}
    for key, value in form.multi_items():
        if key != "file":
            fields.setdefault(key, []).append(value)
    if not data:
        raise APIError(400, "The file is empty.", "file")
    return fields, bytes(data)


def _too_large(config: ServerConfig) -> str:
    return f"The file is larger than the limit of {config.max_upload_bytes // (1 << 20)} MB."


def _field(fields: dict, name: str, default: Any = None) -> Any:
    values = fields.get(name) or fields.get(f"{name}[]")
    return values[-1] if values else default


def _number(fields: dict, name: str, default: float | None, kind=float) -> Any:
    value = _field(fields, name)
    if value is None or value == "":
        return default
    try:
        return kind(value)
    except ValueError:
        raise APIError(400, f"{name}: expected a number, got {value!r}", name) from None


def _flag(fields: dict, name: str) -> bool:
    return str(_field(fields, name, "false")).lower() in ("true", "1", "yes")


@dataclass
class Job:
    """One request's decoding, as the worker runs it."""

    model: str | None
    audio: bytes
    task: str
    options: dict[str, Any]
    diarize: bool = False


def decode(pool: ModelPool, config: ServerConfig, job: Job, on_segment=None) -> Transcript:
    """In a worker: decode the audio (the content check), check its length, transcribe."""
    waveform = load_audio(job.audio)
    seconds = len(waveform) / SAMPLE_RATE
    if seconds > config.max_audio_seconds:
        raise APIError(
            413,
            f"The audio is {seconds / 60:.0f} minutes long; the limit is "
            f"{config.max_audio_seconds / 60:.0f} minutes.",
            "file",
            "audio_too_long",
        )
    model = pool.get(job.model)
    options = dict(job.options)
    if job.task == "translate":
        options["task"] = "translate"
    transcript = model.transcribe(waveform, on_segment=on_segment, **options)
    if job.diarize:
        from onsei.diarization import diarize

        transcript.assign_speakers(diarize(waveform))
    return transcript


def _granularities(fields: dict) -> list[str]:
    return fields.get("timestamp_granularities[]", []) + fields.get("timestamp_granularities", [])


def temperatures(temperature: float) -> tuple[float, ...]:
    """A request's temperature as Whisper decodes it: 0 with the usual fallback schedule
    (0.2, 0.4, ...), any other value alone (OpenAI's API has one temperature)."""
    from onsei.whisper.options import temperature_schedule

    return temperature_schedule(temperature, 0.2 if temperature == 0 else None)


def whisper_options(fields: dict, model_kind: str, task: str) -> dict[str, Any]:
    """Decoding options from the OpenAI fields (and onsei's own: beam_size, vad_filter)."""
    options: dict[str, Any] = {}
    granularities = _granularities(fields)
    unknown = sorted(set(granularities) - {"word", "segment"})
    if unknown:
        raise APIError(
            400, f"timestamp_granularities: unknown value {unknown[0]!r}", "timestamp_granularities"
        )
    if "word" in granularities:
        options["word_timestamps"] = True
    beam = _number(fields, "beam_size", None, int)
    if beam is not None:
        options["beam_size"] = beam
    if model_kind == "trained":
        return options
    language = _field(fields, "language")
    if language and task == "transcribe":
        options["language"] = language
    prompt = _field(fields, "prompt")
    if prompt:
        options["initial_prompt"] = prompt
    temperature = _number(fields, "temperature", 0.0)
    if not 0.0 <= temperature <= 1.0:
        raise APIError(400, "temperature: must be between 0 and 1", "temperature")
    options["temperature"] = temperatures(temperature)
    if _field(fields, "vad_filter") is not None:
        options["vad_filter"] = _flag(fields, "vad_filter")
    return options


def render(transcript: Transcript, response_format: str, task: str, words: bool) -> Response:
    from onsei.writers import render as render_format

    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n")
    if response_format in ("srt", "vtt"):
        return PlainTextResponse(render_format(transcript, response_format))
    if response_format == "json":
        return JSONResponse({"text": transcript.text})
    if response_format == "diarized_json":
        segments = [
            {
                "type": "transcript.text.segment",
                "id": f"seg_{s.id}",
                "start": s.start,
                "end": s.end,
                "text": s.text.strip(),
                "speaker": s.speaker,
            }
            for s in transcript.segments
        ]
        return JSONResponse(
            {
                "task": task,
                "duration": transcript.duration,
                "text": transcript.text,
                "segments": segments,
            }
        )
    body: dict[str, Any] = {
        "task": task,
        "language": language_name(transcript.language).lower() if transcript.language else None,
        "duration": transcript.duration,
        "text": transcript.text,
        "segments": [
            {
                "id": s.id,
                "seek": 0,
                "start": s.start,
                "end": s.end,
                "text": s.text,
                "tokens": s.tokens,
                "temperature": s.temperature,
                "avg_logprob": s.avg_logprob,
                "compression_ratio": s.compression_ratio,
                "no_speech_prob": s.no_speech_prob,
                **({"speaker": s.speaker} if s.speaker else {}),
            }
            for s in transcript.segments
        ],
    }
    if words:
        body["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end} for w in transcript.words
        ]
    return JSONResponse(body)


def create_api(config: ServerConfig, pool: ModelPool, workers: DecodePool) -> APIRouter:
    router = APIRouter()

    async def handle(request: Request, task: str) -> Response:
        try:
            check_key(request, config.api_key)
            fields, audio = await read_upload(request, config)
            response_format = _field(fields, "response_format", "json")
            if response_format not in RESPONSE_FORMATS:
                raise APIError(
                    400,
                    f"response_format: expected one of {', '.join(RESPONSE_FORMATS)}, got "
                    f"{response_format!r}",
                    "response_format",
                )
            try:
                info = pool.resolve(_field(fields, "model"))
            except ModelError as error:
                raise APIError(404, str(error), "model", "model_not_found") from None
            if task == "translate" and info.kind == "trained":
                raise APIError(400, f"{info.id} cannot translate: use a Whisper model", "model")
            options = whisper_options(fields, info.kind, task)
            diarize = response_format == "diarized_json" or _flag(fields, "diarize")
            if diarize:
                options["word_timestamps"] = True
            job = Job(info.id, audio, task, options, diarize)
            words = "word" in _granularities(fields)
            if _flag(fields, "stream"):
                return await _stream(job, workers, pool, config)
            transcript = await workers.run(decode, pool, config, job)
            return render(transcript, response_format, task, words)
        except APIError as error:
            return error.response()
        except Busy:
            return APIError(
                503, "The server is busy: try again shortly.", code="server_busy"
            ).response()
        except asyncio.TimeoutError:
            message = f"The request took longer than {config.request_timeout_seconds:.0f} s."
            return APIError(504, message, code="timeout").response()
        except AudioError as error:
            return APIError(
                400, f"The file is not audio that can be decoded: {error}", "file"
            ).response()
        except OnseiError as error:
            return APIError(400, str(error)).response()

    @router.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request) -> Response:
        return await handle(request, "transcribe")

    @router.post("/v1/audio/translations")
    async def translations(request: Request) -> Response:
        return await handle(request, "translate")

    @router.get("/v1/models")
    async def models(request: Request) -> Response:
        try:
            check_key(request, config.api_key)
        except APIError as error:
            return error.response()
        data = [
            {"id": m.id, "object": "model", "created": 0, "owned_by": f"onsei ({m.kind})"}
            for m in pool.models.values()
        ]
        return JSONResponse({"object": "list", "data": data})

    @router.get("/health")
    async def health() -> Response:
        return JSONResponse(
            {"status": "ok", "models_loaded": pool.loaded(), "requests_pending": workers.pending}
        )

    return router


async def _stream(job: Job, workers: DecodePool, pool: ModelPool, config: ServerConfig):
    """Server-sent events: ``transcript.text.delta`` per segment as it is decoded, then
    ``transcript.text.done`` (OpenAI's streaming transcription events)."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()

    def on_segment(segment) -> None:
        loop.call_soon_threadsafe(
            events.put_nowait, {"type": "transcript.text.delta", "delta": segment.text}
        )

    task = asyncio.ensure_future(workers.run(decode, pool, config, job, on_segment))
    task.add_done_callback(lambda _: loop.call_soon_threadsafe(events.put_nowait, None))

    async def body():
        while (event := await events.get()) is not None:
            yield f"data: {json.dumps(event)}\n\n"
        try:
            done = {"type": "transcript.text.done", "text": task.result().text}
            yield f"data: {json.dumps(done)}\n\n"
        except Exception as error:  # the stream has started: the error is an event
            message = (
                error.message if isinstance(error, APIError) else str(error) or type(error).__name__
            )
            yield f"data: {json.dumps({'type': 'error', 'error': {'message': message}})}\n\n"
        yield "data: [DONE]\n\n"

    # a full queue is known before the first byte: answer 503, not a broken stream
    await asyncio.sleep(0)
    if task.done() and isinstance(task.exception(), Busy):
        raise Busy
    return StreamingResponse(body(), media_type="text/event-stream")
