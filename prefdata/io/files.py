"""Opening an input path safely: what it is, its bytes (gzip bounded), its text as UTF-8.

Paths are hostile. One that is not a regular file or a folder (a named pipe, a device, a socket) is refused
before anything opens it for reading, so nothing blocks; a symbolic-link loop and a broken link are named.
A gzip file is decompressed in steps: a truncated one gives the bytes before the cut and says so (the
reader keeps the rows before it), and one whose output passes `GZIP_RATIO_FLOOR` bytes and `MAX_GZIP_RATIO`
times the compressed bytes read so far is refused as a decompression bomb before it fills the memory.
A text file may start with a byte-order mark: UTF-8's is dropped; UTF-16 and UTF-32 files are decoded.
"""

from __future__ import annotations

import codecs
import errno
import gzip
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from prefdata.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
MAX_GZIP_RATIO = 200           # text compresses 3-20x; a bomb of zeros about 1000x
GZIP_RATIO_FLOOR = 256 << 20   # below this many bytes no file is refused for its ratio
STEP = 16 << 20                # bytes decompressed per step
BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),  # before UTF-16: FF FE 00 00
        (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def _special(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    what = next((name for test, name in kinds if test(mode)), "a special file")
    return f"{what}, not a regular file or folder: give a file, a dataset folder or a Hub dataset id"


def path_kind(path: Path) -> Literal["file", "dir", "missing"]:
    """Stat `path` (following links, opening nothing)."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        if os.path.islink(path):
            raise InputError(str(path), "broken symbolic link (its target does not exist)") from None
        return "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(str(path), "symbolic link loop (the link leads back to itself)") from None
        raise InputError(str(path), f"cannot read it ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISREG(mode):
        return "file"
    raise InputError(str(path), _special(mode))


def open_regular(path: Path) -> BinaryIO:
    """Open a regular file for reading; anything else is refused without blocking (O_NONBLOCK, then fstat:
    the path may have changed since it was looked at)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(str(path), f"cannot read it ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise InputError(str(path), _special(mode))
    return os.fdopen(fd, "rb")


@dataclass
class Loaded:
    data: bytes
    cut: str | None = None  # why the data ends early (a truncated .gz); None when it is whole


def read_bytes(path: Path) -> Loaded:
    """A file's bytes, gunzipped when it is a gzip file."""
    with open_regular(path) as f:
        raw = f.raw  # unbuffered: a buffered read() joins its buffered head to the rest, a second copy of the file
        if raw.read(2) != GZIP_MAGIC:
            raw.seek(0)
            return Loaded(raw.readall())
        raw.seek(0)
        return _gunzip(raw, str(path))


def _gunzip(f: BinaryIO, name: str) -> Loaded:
    chunks: list[bytes] = []
    total = 0
    with gzip.GzipFile(fileobj=f, mode="rb") as z:
        while True:
            try:  # read1: one step at a time, so a failing step loses none of the steps before it
                chunk = z.read1(STEP)
            except EOFError:  # the stream stops mid-way: what came before it is good data
                return Loaded(b"".join(chunks), "the .gz file ends early (truncated)")
            except (OSError, zlib.error) as exc:  # bad header, bad data or a failed CRC: nothing is certain
                raise InputError(name, f"corrupt .gz file ({exc})") from None
            if not chunk:
                return Loaded(b"".join(chunks))
            total += len(chunk)
            read = max(f.tell(), 1)  # compressed bytes read so far: a bomb is caught early, however big
            if total > GZIP_RATIO_FLOOR and total > MAX_GZIP_RATIO * read:
                raise InputError(name, f"{read:,} compressed bytes decompress to {total >> 20:,} MiB (more than "
                                       f"{MAX_GZIP_RATIO} times): refused as a decompression bomb")
            chunks.append(chunk)


def _utf16_without_bom(head: bytes) -> bool:
    """ASCII text in UTF-16: every other byte is zero, and the bytes between them are not."""
    if len(head) < 8:
        return False
    zeros = [half.count(0) / len(half) for half in (head[0::2], head[1::2])]
    return max(zeros) >= 0.9 and min(zeros) <= 0.1


def as_utf8(blob: bytes, name: str) -> bytes:
    """The bytes of a text file as UTF-8, without a byte-order mark; UTF-16/32 (with their mark) decoded."""
    if blob.startswith(codecs.BOM_UTF8):
        return blob[len(codecs.BOM_UTF8):]
    for bom, codec in BOMS:
        if blob.startswith(bom):
            try:
                return blob.decode(codec.lower()).encode("utf-8")  # the codec reads the mark and drops it
            except UnicodeDecodeError as exc:
                raise InputError(name, f"invalid {codec} at byte {exc.start + 1}") from None
    if b"\x00" in blob[:4096] and _utf16_without_bom(blob[:4096]):
        raise InputError(name, "looks like UTF-16 without a byte-order mark: save it as UTF-8 (or UTF-16 with one)")
    return blob
