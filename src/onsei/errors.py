"""Exceptions that carry a one-line message meant for the user.

The command line prints ``str(error)`` of an ``OnseiError`` as a single line and exits non-zero;
anything else is a bug and is reported as such.
"""

import sys


class OnseiError(Exception):
    """Base class of errors caused by input, options or environment, not by a bug."""


class AudioError(OnseiError):
    """The audio could not be read, or is not usable speech audio (empty, too short, silent)."""


class ModelError(OnseiError):
    """A model name or path could not be resolved or loaded."""


class OutputError(OnseiError):
    """An output file could not be written."""


class OptionError(OnseiError, ValueError):
    """A transcription option has an invalid value or is not supported by the chosen model."""


def print_error(message: str) -> None:
    """Print ``onsei: error: <message>`` as one line on stderr."""
    print(f"onsei: error: {message}", file=sys.stderr, flush=True)
