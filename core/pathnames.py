"""File names that are not valid UTF-8: one lossless text form for the catalog, one form to show.

On Linux a file name is bytes. Python gives names that are not valid UTF-8 (old camera cards,
zip archives made on Windows) as `str` with "surrogate escapes" (byte 0xE9 -> U+DCE9), which
opens the file fine but cannot be written to SQLite, Chroma, a terminal or a web page.

- `to_db(path)` / `from_db(text)`: the one pair every catalog read and write of a path goes
  through. A valid UTF-8 path is stored unchanged (existing rows stay as they are); each
  undecodable byte becomes `//xHH`. Stored paths are normalised absolute paths, which never
  contain `//`, so the escape cannot collide with a real name and is exactly reversible. It also
  keeps the folder prefix intact, so "everything under this folder" queries still work.
- `display_path(path)`: what a user sees: the bad bytes as `\\xHH` (`caf\\xe9.jpg`).
"""
from __future__ import annotations

import os
import re

_ESCAPE = re.compile(r"//x([0-9a-f]{2})")


def _is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def to_db(path: str | os.PathLike) -> str:
    """A path as the catalog stores it (valid UTF-8 text); see the module docstring."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if _is_utf8(path):
        return path
    raw = path.encode("utf-8", "surrogateescape")  # raises for surrogates no file name can hold
    out, i = [], 0
    while i < len(raw):
        # Decode the longest valid run, escape the first byte that is not part of one.
        try:
            out.append(raw[i:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            out.append(raw[i:i + exc.start].decode("utf-8"))
            out.append(f"//x{raw[i + exc.start]:02x}")
            i += exc.start + 1
    return "".join(out)


def from_db(text: str) -> str:
    """The real path (surrogate-escaped `str`, as `os` functions take it) of a stored path."""
    if "//x" not in text:
        return text
    raw = _ESCAPE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), text)
    return raw


def display_path(path: str | os.PathLike) -> str:
    """A path a terminal, a web page or an index can show: undecodable bytes as `\\xHH`."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        return path.decode("utf-8", "backslashreplace")
    if _is_utf8(path):
        return path
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
