"""onsei serve: the OpenAI-compatible API driven by the official openai client against a live
server, its errors and limits, and the web UI in a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import shared, words_of

openai = pytest.importorskip("openai")

API_KEY = "test-key"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    def __init__(self, ui: bool, **config):
        import uvicorn

        from onsei.server.api import ServerConfig
        from onsei.server.app import create_app

        self.config = ServerConfig(**config)
        self.app = create_app(self.config, ui=ui)
        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    config = dict(
        default_model="tiny.en",
        models_dir=str(models),
        api_key=API_KEY,
        workers=1,
        queue=1,
        max_upload_bytes=2 << 20,
        device="cpu",
    )
    with LiveServer(ui=False, **config) as live:
        yield live


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)


@pytest.mark.slow
def test_transcription_in_every_response_format(client, jfk_flac):
    with open(jfk_flac, "rb") as audio:
        text = client.audio.transcriptions.create(model="whisper-1", file=audio)
    assert "country" in words_of(text.text)
    for response_format, marker in (("text", "country"), ("srt", "-->"), ("vtt", "WEBVTT")):
        with open(jfk_flac, "rb") as audio:
            body = client.audio.transcriptions.create(
                model="tiny.en", file=audio, response_format=response_format
            )
        assert isinstance(body, str) and marker in body, response_format
    with open(jfk_flac, "rb") as audio:
        verbose = client.audio.transcriptions.create(
            model="tiny.en",
            file=audio,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            language="en",
            prompt="President Kennedy:",
        )
    assert verbose.language == "english" and 10.5 < verbose.duration < 11.5
    assert verbose.segments and verbose.segments[0].start >= 0
    assert verbose.words and all(w.start <= w.end for w in verbose.words)
    assert "country" in [w.word.strip(".,").lower() for w in verbose.words]


@pytest.mark.slow
def test_streamed_transcription_as_server_sent_events(client, jfk_flac):
    with open(jfk_flac, "rb") as audio:
        stream = client.audio.transcriptions.create(model="tiny.en", file=audio, stream=True)
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "transcript.text.delta" and kinds[-1] == "transcript.text.done"
    assert "".join(e.delta for e in events[:-1]).strip() == events[-1].text


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # (the client's, not ours)
def test_translation_to_english(client):
    clips = [
        json.loads(line) for line in shared("multilingual/manifest.jsonl").read_text().splitlines()
    ]
    german = next(c for c in clips if c["language"] == "de")
    with open(shared("multilingual") / german["audio"], "rb") as audio:
        english = client.audio.translations.create(model="base", file=audio)
    assert (
        english.text and sum(w in words_of(english.text) for w in ("the", "is", "and", "of")) >= 1
    )


def test_models_and_health(client, server):
    import urllib.request

    ids = [m.id for m in client.models.list()]
    assert {"tiny.en", "base"} <= set(ids)
    with urllib.request.urlopen(f"{server.url}/health") as response:
        health = json.loads(response.read())
    assert health["status"] == "ok"


def post(url: str, files=None, data=None, headers=None, raw: bytes | None = None):
    """A raw request, for what the openai client would never send: (status, body)."""
    import httpx  # (the openai client's own HTTP library)

    if raw is not None:
        response = httpx.post(url, content=raw, headers=headers, timeout=300)
    else:
        response = httpx.post(url, files=files, data=data, headers=headers, timeout=300)
    return response.status_code, response.text


def test_bad_requests_get_the_right_4xx_and_the_server_keeps_serving(
    client, server, tmp_path, jfk_flac
):
    url = f"{server.url}/v1/audio/transcriptions"
    auth = {"Authorization": f"Bearer {API_KEY}"}
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("these are not sound samples")
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * (3 << 20))
    cases = [
        ({}, {"model": "tiny.en"}, auth, 400, "No file"),
        ({"file": ("empty.wav", b"")}, {}, auth, 400, "empty"),
        ({"file": ("notes.wav", not_audio.read_bytes())}, {}, auth, 400, "not audio"),
        ({"file": ("big.wav", big.read_bytes())}, {}, auth, 413, "larger than"),
        (
            {"file": ("a.flac", jfk_flac.read_bytes())},
            {},
            {"Authorization": "Bearer nope"},
            401,
            "API key",
        ),
        (
            {"file": ("a.flac", jfk_flac.read_bytes())},
            {"model": "tiny.xx"},
            auth,
            404,
            "unknown model",
        ),
        (
            {"file": ("a.flac", jfk_flac.read_bytes())},
            {"response_format": "mp3"},
            auth,
            400,
            "response_format",
        ),
        (
            {"file": ("a.flac", jfk_flac.read_bytes())},
            {"temperature": "hot"},
            auth,
            400,
            "temperature",
        ),
    ]
    for files, data, headers, status, message in cases:
        code, body = post(url, files=files, data=data, headers=headers)
        assert code == status, (message, code, body)
        assert message in json.loads(body)["error"]["message"], body
    code, body = post(
        url,
        headers={**auth, "Content-Type": "multipart/form-data; boundary=xyz"},
        raw=b"--xyz\r\nthis is not a multipart body",
    )
    assert code == 400 and "error" in json.loads(body)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()
    with open(jfk_flac, "rb") as audio:  # still serving
        assert "country" in words_of(
            client.audio.transcriptions.create(model="tiny.en", file=audio).text
        )


@pytest.mark.slow
def test_a_burst_beyond_the_queue_gets_503s_not_a_crash(client, server, jfk_flac):
    url = f"{server.url}/v1/audio/transcriptions"
    auth = {"Authorization": f"Bearer {API_KEY}"}
    data = jfk_flac.read_bytes()
    codes: list[int] = []

    def one() -> None:
        codes.append(post(url, files={"file": ("a.flac", data)}, headers=auth)[0])

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(set(codes)) == [200, 503], codes  # one worker and one waiting place
    assert codes.count(200) >= 2


@pytest.mark.slow
def test_the_web_ui_in_a_real_browser(tmp_path, jfk_flac):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("needs Debian's chromium (./run-tests installs it)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with LiveServer(ui=True, default_model="tiny.en", models_dir=None, device="cpu") as live:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium,
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--no-first-run",
                ],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{live.url}/", wait_until="networkidle")
            page.locator("input[type=file]").first.set_input_files(str(jfk_flac))
            page.wait_for_timeout(1500)
            page.click("#transcribe")
            transcript = page.locator("#transcript textarea")
            page.wait_for_function(
                "() => document.querySelector('#transcript textarea').value.includes('country')",
                timeout=120_000,
            )
            assert "ask not" in transcript.input_value().lower()
            page.wait_for_timeout(1500)  # (the outputs fade in)
            # ONSEI_UI_SCREENSHOT=docs/ui.png refreshes the README's picture of the UI
            page.screenshot(path=os.environ.get("ONSEI_UI_SCREENSHOT", str(tmp_path / "ui.png")))
            browser.close()


def test_serve_refuses_a_bad_configuration(capsys):
    from onsei.cli import main

    assert (
        main(["serve", "--workers", "0", "--no-ui", "--models-dir", str(Path("/nonexistent"))]) == 2
    )
    assert "--workers must be at least 1" in capsys.readouterr().err
