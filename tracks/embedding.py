"""Writing and reading an XMP packet in the place each audio format keeps it.

The sibling of tracks.metadata for the other direction: metadata reads
uploads, this writes into copies (never into an original upload). It is the
one other module that uses mutagen, one mutagen class per format:

- MP3: an ID3v2 PRIV frame whose owner is "XMP" (mutagen.id3);
- WAV: a RIFF chunk named "_PMX" (mutagen's RIFF chunk writer);
- M4A: a top-level "uuid" box with the XMP UUID BE7ACFCB-97A9-42E8-9C71-999491E3AFAC,
  found with mutagen.mp4's box reader and appended at the end of the file, so
  no sample offset moves.

Other formats have no standard place for XMP here; `xmp_place` says so. Any
parser error becomes an `EmbeddingError` with a sentence fit for the artist.
"""

from __future__ import annotations

import os
import struct
import uuid
from typing import BinaryIO

import mutagen
from mutagen._riff import RiffFile
from mutagen.id3 import ID3, PRIV, ID3NoHeaderError
from mutagen.mp4 import Atoms

from tracks.metadata import FORMATS

XMP_UUID = uuid.UUID("be7acfcb-97a9-42e8-9c71-999491e3afac")
_XMP_OWNER = "XMP"
_WAV_CHUNK = "_PMX"

# Format key (tracks.metadata.FORMATS) -> where XMP lives in that format.
XMP_PLACES = {
    "mp3": "ID3v2 PRIV frame, owner “XMP”",
    "wav": "RIFF chunk “_PMX”",
    "m4a": f"top-level “uuid” box {str(XMP_UUID).upper()}",
}

_FORMAT_BY_CONTAINER = {f.container: f.key for f in FORMATS.values() if f.container != "Ogg"}


class EmbeddingError(Exception):
    """XMP could not be written to or read from a file, with a reason fit for the artist."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def format_key_for_container(container: str, codec: str = "") -> str:
    """The tracks.metadata format key of a stored track ("mp3", "wav", …) from its recorded container."""
    if container == "Ogg":
        return "opus" if codec.lower() == "opus" else "vorbis"
    return _FORMAT_BY_CONTAINER.get(container, "")


def xmp_place(format_key: str) -> str | None:
    """Where this format keeps XMP, or None when it has no standard place for it."""
    return XMP_PLACES.get(format_key)


def write_xmp(path: str | os.PathLike, *, format_key: str, packet: bytes) -> None:
    """Put `packet` in the file at `path` (a copy, changed in place), replacing any XMP it held."""
    writer = _WRITERS.get(format_key)
    if writer is None:
        raise EmbeddingError(f"{FORMATS[format_key].label if format_key in FORMATS else format_key} files have "
                             "no standard place for XMP metadata.")  # fmt: skip
    try:
        writer(os.fspath(path), packet)
    except EmbeddingError:
        raise
    except (mutagen.MutagenError, OSError, struct.error, ValueError, KeyError, IndexError) as exc:
        raise EmbeddingError("The file's metadata could not be rewritten; it may be damaged.") from exc


def read_xmp(fileobj: BinaryIO, *, format_key: str) -> bytes | None:
    """The XMP packet stored in the file's standard place, or None."""
    reader = _READERS.get(format_key)
    if reader is None:
        return None
    try:
        fileobj.seek(0)
        return reader(fileobj)
    except (mutagen.MutagenError, OSError, struct.error, ValueError, KeyError, IndexError) as exc:
        raise EmbeddingError("The file's metadata could not be read; it may be damaged.") from exc


# --- MP3: ID3v2 PRIV -------------------------------------------------------------------------


def _write_mp3(path: str, packet: bytes) -> None:
    try:
        tags = ID3(path)
        version = 3 if tags.version[1] == 3 else 4
    except ID3NoHeaderError:
        tags, version = ID3(), 4
    tags.delall(f"PRIV:{_XMP_OWNER}")
    tags.add(PRIV(owner=_XMP_OWNER, data=packet))
    # Keep the tag version the file had: players that read it keep working.
    tags.save(path, v2_version=version)


def _read_mp3(fileobj: BinaryIO) -> bytes | None:
    try:
        tags = ID3(fileobj)
    except ID3NoHeaderError:
        return None
    frames = [frame for frame in tags.getall("PRIV") if frame.owner == _XMP_OWNER]
    return bytes(frames[0].data) if frames else None


# --- WAV: RIFF _PMX --------------------------------------------------------------------------


def _write_wav(path: str, packet: bytes) -> None:
    with open(path, "r+b") as fileobj:
        riff = RiffFile(fileobj)
        if _WAV_CHUNK in riff:
            del riff[_WAV_CHUNK]
        riff.insert_chunk(_WAV_CHUNK, packet)


def _read_wav(fileobj: BinaryIO) -> bytes | None:
    riff = RiffFile(fileobj)
    return riff[_WAV_CHUNK].read() if _WAV_CHUNK in riff else None


# --- M4A: uuid box ---------------------------------------------------------------------------


def _xmp_boxes(fileobj: BinaryIO) -> list:
    boxes = []
    for atom in Atoms(fileobj).atoms:
        if atom.name == b"uuid" and atom.length >= 24:
            fileobj.seek(atom.offset + 8)
            if fileobj.read(16) == XMP_UUID.bytes:
                boxes.append(atom)
    return boxes


def _write_m4a(path: str, packet: bytes) -> None:
    with open(path, "r+b") as fileobj:
        atoms = Atoms(fileobj).atoms
        for atom in atoms:
            fileobj.seek(atom.offset)
            if struct.unpack(">I", fileobj.read(4))[0] == 0:
                # "Extends to the end of the file" would swallow the box we add.
                if atom.length >= 2**32:
                    raise EmbeddingError("This M4A file's layout leaves no room for metadata at its end.")
                fileobj.seek(atom.offset)
                fileobj.write(struct.pack(">I", atom.length))
        for box in _xmp_boxes(fileobj):
            # An old packet becomes zeroed free space, in place: nothing after
            # it moves, and a reader that scans for packets cannot find it.
            fileobj.seek(box.offset)
            header = 16 if struct.unpack(">I", fileobj.read(4))[0] == 1 else 8
            fileobj.write(b"free")
            fileobj.seek(box.offset + header)
            fileobj.write(bytes(box.length - header))
        body = XMP_UUID.bytes + packet
        fileobj.seek(0, os.SEEK_END)
        fileobj.write(struct.pack(">I4s", 8 + len(body), b"uuid") + body)


def _read_m4a(fileobj: BinaryIO) -> bytes | None:
    boxes = _xmp_boxes(fileobj)
    if not boxes:
        return None
    box = boxes[0]
    fileobj.seek(box.offset + 24)
    return fileobj.read(box.length - 24)


_WRITERS = {"mp3": _write_mp3, "wav": _write_wav, "m4a": _write_m4a}
_READERS = {"mp3": _read_mp3, "wav": _read_wav, "m4a": _read_m4a}
