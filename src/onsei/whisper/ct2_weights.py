"""Read the weights of a CTranslate2 model directory (``model.bin``) into numpy arrays.

CTranslate2 can write this file (``ctranslate2.specs.ModelSpec.save``) but not read it back
in Python. The layout, as ``ModelSpec._serialize`` writes it (little-endian): binary version
(u32), spec name (string), spec revision (u32), variable count (u32); per variable its name
(string), rank (u8), dimensions (u32 each), dtype code (u8), byte count (u32) and raw bytes;
then an alias count (u32) and (alias, target) string pairs. A string is a u16 length that
counts a trailing NUL, then the UTF-8 bytes and the NUL.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

import numpy as np

from onsei.errors import ModelError

_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
"""Dtype codes, in the order of CTranslate2's ``DataType`` enum."""
SUPPORTED_BINARY_VERSIONS = range(5, 7)


@dataclass
class CT2Weights:
    """The variables of a ``model.bin``: weights as arrays, scalar settings as 0-d arrays.

    ``aliases`` maps a variable that shares another's weights (Whisper's output projection,
    tied to the token embedding) to that variable.
    """

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.variables[self.aliases.get(name, name)]

    def scalar(self, name: str) -> int | float:
        """The value of a 0-d setting such as ``encoder/num_heads``."""
        return self.variables[name].item()


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.position = 0

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack_from("<" + fmt, self.data, self.position)
        self.position += struct.calcsize(fmt)
        return value

    def string(self) -> str:
        length = self.unpack("H")
        text = self.data[self.position : self.position + length - 1].decode("utf-8")
        self.position += length
        return text

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.data):
            raise struct.error("truncated")
        chunk = self.data[self.position : self.position + count]
        self.position += count
        return chunk


def read_ct2_weights(path: str | os.PathLike) -> CT2Weights:
    """Read ``path`` (a ``model.bin``, or the directory holding it); quantized int8/int16
    weights are returned as stored (this is meant for the float models onsei ships)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, "model.bin")
    try:
        with open(path, "rb") as handle:
            reader = _Reader(handle.read())
    except OSError as error:
        raise ModelError(f"{path}: cannot read ({error.strerror})") from error
    try:
        version = reader.unpack("I")
        if version not in SUPPORTED_BINARY_VERSIONS:
            raise ModelError(f"{path}: not a CTranslate2 model.bin of a known version ({version})")
        spec = reader.string()
        revision = reader.unpack("I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(reader.unpack("I")):
            name = reader.string()
            shape = tuple(reader.unpack("I") for _ in range(reader.unpack("B")))
            dtype = _DTYPES[reader.unpack("B")]
            raw = reader.take(reader.unpack("I"))
            if dtype == "bfloat16":  # numpy has no bfloat16: widen to float32
                array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
            variables[name] = array.reshape(shape)
        aliases = {}
        for _ in range(reader.unpack("I")):
            alias = reader.string()
            aliases[alias] = reader.string()
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as error:
        raise ModelError(f"{path}: not a valid CTranslate2 model.bin ({error})") from error
    if reader.position != len(reader.data):
        raise ModelError(f"{path}: not a valid CTranslate2 model.bin (trailing bytes)")
    return CT2Weights(spec, revision, variables, aliases)
