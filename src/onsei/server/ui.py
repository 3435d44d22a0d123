"""The web UI (Gradio): upload a file or record from the microphone, choose the model,
language, task and decoding options, and get the transcript, a table of its segments (with
speakers) and the transcript as txt/srt/vtt/json downloads. Decoding runs in the server's
worker pool, on the server's models, like the API's."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

from onsei.errors import OnseiError
from onsei.languages import LANGUAGES
from onsei.server.api import APIError, Job, ServerConfig, decode, temperatures
from onsei.server.models import ModelPool
from onsei.server.workers import Busy, DecodePool

AUTO = "Auto-detect"
DOWNLOADS = ("txt", "srt", "vtt", "json")


def _language_choices() -> list[str]:
    return [AUTO, *sorted(name.title() for name in LANGUAGES.values())]


def build_ui(pool: ModelPool, workers: DecodePool, config: ServerConfig):
    import gradio as gr

    from onsei.writers import save_transcript

    models = list(pool.models)

    async def transcribe(
        audio_path: str | None,
        model: str,
        language: str,
        task: str,
        timestamps: bool,
        beam_size: float,
        temperature: float,
        vad: bool,
        diarization: bool,
        progress=gr.Progress(),  # noqa: B008 (Gradio's way of asking for a progress bar)
    ):
        if not audio_path:
            raise gr.Error("Upload a file or record something first.")
        data = Path(audio_path).read_bytes()
        if len(data) > config.max_upload_bytes:
            raise gr.Error(f"The file is larger than {config.max_upload_bytes >> 20} MB.")
        info = pool.resolve(model)
        options: dict[str, Any] = {"beam_size": int(beam_size)}
        if info.kind != "trained":
            options.update(
                vad_filter=vad,
                temperature=temperatures(temperature),
                language=None if language == AUTO else language,
            )
        if timestamps or diarization:
            options["word_timestamps"] = True
        progress(0.1, desc="Transcribing...")
        job = Job(info.id, data, task, options, diarization)
        try:
            transcript = await workers.run(decode, pool, config, job)
        except Busy:
            raise gr.Error("The server is busy: try again in a moment.") from None
        except asyncio.TimeoutError:
            raise gr.Error("This took too long: try a shorter file.") from None
        except APIError as error:
            raise gr.Error(error.message) from None
        except OnseiError as error:
            raise gr.Error(str(error)) from None
        progress(0.9, desc="Writing the files...")
        folder = Path(tempfile.mkdtemp(prefix="onsei-ui-"))
        stem = Path(audio_path).stem or "transcript"
        files = [str(save_transcript(transcript, folder / f"{stem}.{f}", f)) for f in DOWNLOADS]
        rows = [
            [round(s.start, 2), round(s.end, 2), s.speaker or "", s.text.strip()]
            for s in transcript.segments
        ]
        language_line = (
            f"Language: {LANGUAGES.get(transcript.language, transcript.language).title()}"
            if transcript.language
            else ""
        )
        return transcript.text, rows, files, language_line

    with gr.Blocks(title="onsei") as ui:
        gr.Markdown(
            "# onsei\nOffline speech recognition: upload a file or record, then "
            "**Transcribe**. The same models answer the API at `/v1/audio/transcriptions`."
        )
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Audio")
                model = gr.Dropdown(models, value=pool.default_model, label="Model")
                language = gr.Dropdown(_language_choices(), value=AUTO, label="Language")
                task = gr.Radio(["transcribe", "translate"], value="transcribe", label="Task")
                with gr.Accordion("Options", open=False):
                    timestamps = gr.Checkbox(value=False, label="Word timestamps")
                    beam_size = gr.Slider(1, 10, value=5, step=1, label="Beam size")
                    temperature = gr.Slider(0.0, 1.0, value=0.0, step=0.1, label="Temperature")
                    vad = gr.Checkbox(value=True, label="Skip non-speech (VAD)")
                    diarization = gr.Checkbox(value=False, label="Who spoke when (diarization)")
                button = gr.Button("Transcribe", variant="primary", elem_id="transcribe")
            with gr.Column():
                text = gr.Textbox(label="Transcript", lines=8, elem_id="transcript")
                language_found = gr.Markdown()
                table = gr.Dataframe(
                    headers=["start", "end", "speaker", "text"], label="Segments", wrap=True
                )
                downloads = gr.File(label="Download", file_count="multiple")
        button.click(
            transcribe,
            inputs=[
                audio,
                model,
                language,
                task,
                timestamps,
                beam_size,
                temperature,
                vad,
                diarization,
            ],
            outputs=[text, table, downloads, language_found],
        )
    return ui
