"""Decoding off the event loop, in a fixed number of worker threads, with a bounded queue: a
burst of requests beyond it is refused at once (503) instead of piling up in memory, and a
request that waits or runs longer than its timeout gets 504."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class Busy(Exception):
    """Every worker is busy and the queue is full."""


class DecodePool:
    def __init__(self, workers: int = 1, queue: int = 4, timeout_seconds: float = 600.0):
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="onsei-decode")
        self.capacity = workers + queue
        self.timeout = timeout_seconds
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        """Requests running or waiting."""
        return self._admitted

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(*args)`` in a worker; raises ``Busy`` when the queue is full and
        ``TimeoutError`` when it does not finish in time (it then still finishes, unseen)."""
        with self._lock:
            if self._admitted >= self.capacity:
                raise Busy
            self._admitted += 1
        future = asyncio.get_running_loop().run_in_executor(self.executor, function, *args)
        future.add_done_callback(lambda _: self._release())
        return await asyncio.wait_for(asyncio.shield(future), self.timeout)

    def _release(self) -> None:
        with self._lock:
            self._admitted -= 1

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
