"""Load on the HTTP API: concurrent clients posting real clips to a live `onsei serve`.

1. 8 clients, each posting the 25 clips of ../shared/data/clips in turn (a new request as
   soon as the last one answered) for 60 s: throughput (seconds of audio transcribed per
   second), latency p50/p95, failed requests (anything but 200), and the server's memory
   (RSS sampled every second: the median of the first and of the last 20 s after warm-up).
2. 32 clients for 30 s: every answer is a transcript (200) or 503 (busy); none is anything
   else, and the server still answers /health afterwards.

The server runs as a user starts it: `onsei serve --no-ui --model M --workers W --queue Q`.

Usage: .venv/bin/python benchmarks/server_load.py [--model tiny.en] [--workers 2] [--queue 8]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import threading
import time

import common
import numpy as np

CLIPS = common.DATA_DIR / "clips" / "manifest.jsonl"


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_clients(url: str, clients: int, seconds: float, clips) -> list[tuple[int, float, float]]:
    """(status, latency s, audio s) of every request made in ``seconds``."""
    import httpx

    results: list[tuple[int, float, float]] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        with httpx.Client(timeout=600) as http:
            position = index
            while time.monotonic() < stop:
                clip = clips[position % len(clips)]
                position += 1
                started = time.perf_counter()
                try:
                    response = http.post(
                        f"{url}/v1/audio/transcriptions",
                        files={"file": (clip.audio.name, clip.audio.read_bytes())},
                        data={"model": "whisper-1", "language": "en"},
                    )
                    status = response.status_code
                except httpx.HTTPError:
                    status = -1
                with lock:
                    results.append((status, time.perf_counter() - started, clip.duration))
                if status == 503:
                    time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    import httpx

    clips = common.read_manifest(CLIPS)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        common.ONSEI_CLI,
        "serve",
        "--no-ui",
        "--port",
        str(port),
        "--model",
        args.model,
        "--workers",
        str(args.workers),
        "--queue",
        str(args.queue),
        "--models-dir",
        "/nonexistent",
    ]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        run_clients(url, 2, 10, clips)  # warm-up
        memory: list[tuple[float, float]] = []
        sampling = True

        def sample() -> None:
            started = time.monotonic()
            while sampling:
                memory.append((time.monotonic() - started, rss_mib(server.pid)))
                time.sleep(1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        eight = run_clients(url, 8, args.seconds, clips)
        wall = time.monotonic() - started
        sampling = False
        sampler.join()
        burst = run_clients(url, 32, args.seconds / 2, clips)
        alive = httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    ok = [r for r in eight if r[0] == 200]
    latencies = [r[1] for r in ok]
    first = [m for t, m in memory if t <= 20]
    last = [m for t, m in memory if t >= memory[-1][0] - 20]
    burst_codes = {
        code: sum(1 for r in burst if r[0] == code) for code in sorted({r[0] for r in burst})
    }
    result = {
        "date": common.today(),
        "commit": common.git_commit(),
        "command": " ".join(["onsei", *command[1:]]),
        "eight": {
            "requests": len(eight),
            "failed": len(eight) - len(ok),
            "audio_per_s": sum(r[2] for r in ok) / wall,
            "p50": float(np.percentile(latencies, 50)),
            "p95": float(np.percentile(latencies, 95)),
            "rss_first_mib": statistics.median(first),
            "rss_last_mib": statistics.median(last),
        },
        "burst": {"codes": burst_codes, "alive": alive},
    }
    print(json.dumps(result, indent=1))
    e = result["eight"]
    body = "\n".join(
        [
            "## HTTP API under load: concurrent clients on a live server (issue 8)\n",
            common.header(common.this_command()),
            f"- Server: `{result['command']}` (a subprocess, as a user starts it); clients: "
            "httpx, each posting the 25 clips of `../shared/data/clips` in turn "
            "(`model=whisper-1`, `language=en`), a new request as soon as the last answered.\n",
            common.markdown_table(
                [
                    "Clients",
                    "Seconds",
                    "Requests",
                    "Failed",
                    "Audio s per s",
                    "p50 s",
                    "p95 s",
                    "RSS MiB, first / last 20 s",
                ],
                [
                    [
                        8,
                        f"{args.seconds:g}",
                        e["requests"],
                        e["failed"],
                        f"{e['audio_per_s']:.1f}",
                        f"{e['p50']:.2f}",
                        f"{e['p95']:.2f}",
                        f"{e['rss_first_mib']:.0f} / {e['rss_last_mib']:.0f}",
                    ]
                ],
            ),
            f"\n32 clients for {args.seconds / 2:g} s: answers by status {burst_codes} "
            f"(200: transcript, 503: busy); server alive afterwards: {'yes' if alive else 'no'}.",
        ]
    )
    common.write_section("server_load", body)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
