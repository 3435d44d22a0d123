"""The live display of ``onsei stream``: committed words as they become final, and after them
the tentative tail in a dim style, rewritten in place; plain lines when not on a terminal."""

from __future__ import annotations

import sys
from typing import TextIO

from onsei.streaming.events import Committed, Partial, StreamEvent

_DIM, _RESET = "\x1b[2m", "\x1b[0m"
_SAVE, _RESTORE_AND_CLEAR = "\x1b7", "\x1b8\x1b[J"


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{int(minutes):02d}:{seconds:05.2f}"


class LiveDisplay:
    """Shows a stream's events on ``out``: on a terminal, committed text followed by the
    dimmed tentative words; otherwise one ``[start -> end] text`` line per commit."""

    def __init__(self, out: TextIO | None = None, interactive: bool | None = None):
        self.out = out or sys.stdout
        self.interactive = self.out.isatty() if interactive is None else interactive
        self.tentative_shown = False
        self.fresh = True
        """Nothing committed shown yet (no space before the first words)."""

    def show(self, event: StreamEvent) -> None:
        if isinstance(event, Committed):
            if self.interactive:
                self._clear_tentative()
                self.out.write(("" if self.fresh else " ") + event.text)
                self.fresh = False
            else:
                self.out.write(f"[{_clock(event.start)} -> {_clock(event.end)}] {event.text}\n")
        elif isinstance(event, Partial) and self.interactive:
            self._clear_tentative()
            if event.text:
                self.out.write(f"{_SAVE}{_DIM} {event.text}{_RESET}")
                self.tentative_shown = True
        self.out.flush()

    def close(self) -> None:
        if self.interactive:
            self._clear_tentative()
            self.out.write("\n")
            self.out.flush()

    def _clear_tentative(self) -> None:
        if self.tentative_shown:
            self.out.write(_RESTORE_AND_CLEAR)
            self.tentative_shown = False
