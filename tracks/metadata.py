"""The one place that reads audio files: a wrapper around mutagen.

Everything about an upload is decided from its bytes, never from its name or
the browser's Content-Type. The format is sniffed from magic numbers first and
then handed to exactly one mutagen class, so a file cannot be parsed as "the
best guess among everything mutagen knows".

Only headers are read: the container's metadata, plus a small, bounded window
at the end of formats whose truncation would otherwise go unnoticed (FLAC, MP4,
RIFF/IFF). Validating a 500 MB file therefore reads about as much as validating
a 1 MB one; `CountingReader` makes that measurable.

Every exception a parser raises, whatever its type, leaves this module as a
`MetadataError` with a code (stored on failed tracks) and a sentence an artist
can act on.
"""

from __future__ import annotations

import base64
import binascii
import io
import itertools
import math
import re
import struct
from dataclasses import dataclass, field
from typing import Protocol

import mutagen
from django.utils.translation import gettext, gettext_noop
from mutagen.aiff import AIFF
from mutagen.flac import FLAC, Picture
from mutagen.id3 import ID3, Frames, Frames_2_2
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, Atoms, MP4Cover
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from tracks.sniff import looks_like_text
from tracks.validators import normalise_isrc_or_blank


class ByteStream(Protocol):
    """What the readers need of a file: an uploaded file, a stored one, or a CountingReader."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


# --- errors -------------------------------------------------------------------------------


class MetadataError(Exception):
    """An audio file the portal cannot accept, with a reason fit for the artist."""

    code = "invalid_audio"

    def __init__(self, reason: str, *, code: str | None = None):
        super().__init__(reason)
        self.reason = reason
        if code:
            self.code = code


class EmptyFileError(MetadataError):
    code = "empty"


class UnsupportedFormatError(MetadataError):
    code = "unsupported_format"


class CorruptFileError(MetadataError):
    code = "corrupt"


class TruncatedFileError(CorruptFileError):
    code = "truncated"


class DurationError(MetadataError):
    code = "bad_duration"


# --- formats ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioFormat:
    key: str
    label: str
    container: str
    extension: str
    mime_type: str


FORMATS: dict[str, AudioFormat] = {
    f.key: f
    for f in (
        AudioFormat("mp3", "MP3", "MPEG audio", "mp3", "audio/mpeg"),
        AudioFormat("flac", "FLAC", "FLAC", "flac", "audio/flac"),
        AudioFormat("wav", "WAV", "WAVE", "wav", "audio/wav"),
        AudioFormat("aiff", "AIFF", "AIFF", "aiff", "audio/aiff"),
        AudioFormat("vorbis", "Ogg Vorbis", "Ogg", "ogg", "audio/ogg"),
        AudioFormat("opus", "Opus", "Ogg", "opus", "audio/ogg"),
        AudioFormat("m4a", "M4A (AAC)", "MP4", "m4a", "audio/mp4"),
    )
}
ALLOWED_FORMATS_TEXT = gettext_noop("MP3, FLAC, WAV, AIFF, Ogg Vorbis, Opus or M4A (AAC)")
_MIME_BY_CONTAINER = {f.container: f.mime_type for f in FORMATS.values()}

# Tags larger than this are refused rather than loaded: mutagen reads a whole
# tag into memory, and a forged size field must not make us allocate 200 MB.
MAX_TAG_BYTES = 24 * 1024 * 1024
# And no more entries (ID3 frames, Vorbis comments, FLAC blocks, MP4 boxes) than
# this: parsers spend time per entry (mutagen's ID3 reader more than linearly), so
# a few megabytes of tiny forged entries would tie up a request for minutes. Real
# files have tens.
MAX_TAG_ENTRIES = 5_000
# The ID3 frames mutagen parses for us (title, artist, album, ISRC, dates) cost
# it up to tens of microseconds per byte (UTF-16 is decoded one code unit at a
# time, every NUL starts another string, every non-digit another timestamp).
# Real ones are a few dozen bytes each.
MAX_ID3_TEXT_BYTES = 16 * 1024
# The only ID3 frames the portal reads. mutagen is told so (known_frames) and keeps
# every other frame as raw bytes, unparsed: no cost, whatever is in them.
_ID3_FRAMES_READ = {b"TIT2", b"TPE1", b"TALB", b"TDRC", b"TYER", b"TDRL", b"TSRC", b"APIC",
                    b"TT2", b"TP1", b"TAL", b"TYE", b"TRC", b"PIC"}  # fmt: skip
_ID3_KNOWN_FRAMES = {
    name.decode(): (Frames if len(name) == 4 else Frames_2_2)[name.decode()] for name in _ID3_FRAMES_READ
}
_ID3_DATE_FRAMES = {b"TDRC", b"TYER", b"TDRL", b"TYE"}
_ID3_MAX_DATE_BYTES = 1024
# Bytes mutagen copies while it walks a tag: about a second of memory traffic.
_ID3_MAX_COPIED = 4 * 1024 * 1024 * 1024
# How much of the end of a file is read to prove it was not cut short, when
# the file does not say how big its frames can be.
_TAIL_WINDOW = 256 * 1024


@dataclass(frozen=True)
class AudioInfo:
    format: AudioFormat
    codec: str
    duration_seconds: float
    bitrate: int | None
    sample_rate: int | None
    channels: int | None
    size_bytes: int


@dataclass(frozen=True)
class Tags:
    title: str = ""
    artist: str = ""
    album: str = ""
    date: str = ""
    # Normalised (tracks.validators), or "" when the tag holds no valid ISRC.
    isrc: str = ""

    @property
    def year(self) -> int | None:
        match = re.search(r"\b(1[89]\d\d|20\d\d|21\d\d)\b", self.date)
        return int(match.group(1)) if match else None


@dataclass(frozen=True)
class EmbeddedPicture:
    data: bytes
    mime_type: str = ""


@dataclass(frozen=True)
class AudioMetadata:
    info: AudioInfo
    tags: Tags = field(default_factory=Tags)
    picture: EmbeddedPicture | None = None


def mime_type_for_container(container: str) -> str:
    return _MIME_BY_CONTAINER.get(container, "application/octet-stream")


# --- byte counting ------------------------------------------------------------------------


class CountingReader(io.RawIOBase):
    """A read-only view of a file that counts the bytes read through it.

    Also hides the file's name from mutagen, so that nothing downstream can be
    swayed by an extension.
    """

    def __init__(self, raw: ByteStream):
        super().__init__()
        self._raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()


# --- public API ---------------------------------------------------------------------------


def probe(fileobj: ByteStream, *, min_duration: float | None = None, max_duration: float | None = None) -> AudioInfo:
    """Identify and check an audio file from its headers; raise MetadataError if unusable."""
    return read(fileobj, min_duration=min_duration, max_duration=max_duration).info


def read(fileobj: ByteStream, *, min_duration: float | None = None, max_duration: float | None = None) -> AudioMetadata:
    """Stream information, tags and the embedded cover of an allowed audio file."""
    try:
        return _read(fileobj, min_duration=min_duration, max_duration=max_duration)
    except MetadataError:
        raise
    except MemoryError:
        raise CorruptFileError(
            gettext("The file's headers claim an impossible size; it is damaged or not audio.")
        ) from None
    except Exception as exc:
        # mutagen raises its own errors but also struct.error, IndexError,
        # ValueError, UnicodeDecodeError… on hostile input. All mean the same.
        raise CorruptFileError(
            gettext("The file could not be read as audio: it looks damaged or is not what its header claims.")
        ) from exc


def _read(fileobj: ByteStream, *, min_duration: float | None, max_duration: float | None) -> AudioMetadata:
    fileobj.seek(0, io.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(0)
    if size == 0:
        raise EmptyFileError(gettext("The file is empty (0 bytes)."))
    kind, tag_end = _sniff(fileobj, size)
    fmt = FORMATS[kind]
    fileobj.seek(0)

    parsed, codec = _PARSERS[kind](fileobj, size, tag_end)
    info = parsed.info
    duration = float(getattr(info, "length", 0) or 0)
    if not math.isfinite(duration) or duration <= 0:
        raise CorruptFileError(
            gettext("The file looks like %(format)s but reports no playable audio.") % {"format": fmt.label}
        )
    if min_duration is not None and duration < min_duration:
        raise DurationError(
            gettext("The recording is %(duration)s long; the shortest allowed is %(limit)s.")
            % {"duration": _seconds(duration), "limit": _seconds(min_duration)},
            code="too_short",
        )
    if max_duration is not None and duration > max_duration:
        raise DurationError(
            gettext("The recording is %(duration)s long; the longest allowed is %(limit)s.")
            % {"duration": _seconds(duration), "limit": _seconds(max_duration)},
            code="too_long",
        )
    bitrate = int(getattr(info, "bitrate", 0) or 0) or int(size * 8 / duration)
    sample_rate = int(getattr(info, "sample_rate", 0) or 0) or None
    channels = int(getattr(info, "channels", 0) or 0) or None
    audio = AudioInfo(
        format=fmt,
        codec=codec,
        duration_seconds=round(duration, 3),
        bitrate=bitrate,
        sample_rate=sample_rate,
        channels=channels,
        size_bytes=size,
    )
    tags, picture = _TAG_READERS[kind](parsed)
    return AudioMetadata(info=audio, tags=tags, picture=picture)


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


# --- sniffing -----------------------------------------------------------------------------


def _id3v2_end(head: bytes) -> int:
    """Offset just past a leading ID3v2 tag, or 0 when there is none."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    if any(b & 0x80 for b in head[6:10]):
        raise CorruptFileError(gettext("The file starts with a damaged ID3 tag (its size field is invalid)."))
    tag_size = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
    footer = 10 if head[5] & 0x10 else 0
    if tag_size > MAX_TAG_BYTES:
        raise CorruptFileError(gettext("The file's ID3 tag is unreasonably large; it is damaged or not a normal MP3."))
    return 10 + tag_size + footer


def _too_many_entries() -> CorruptFileError:
    return CorruptFileError(
        gettext(
            "The file holds more than %(count)s tag entries or sections, far more than any recording "
            "has; it is damaged or built to overload the portal."
        )
        % {"count": f"{MAX_TAG_ENTRIES:,}"},
        code="too_many_tags",
    )


def _check_id3_frames(tag: bytes) -> None:
    """Walk the frames of an ID3v2 tag (header included) without parsing them; refuse what would
    overload mutagen.

    mutagen guesses where frames start (with or without the extended header)
    and how sizes are written (v2.4 files often ignore the syncsafe rule), so
    every reading it might choose is checked.
    """
    if len(tag) < 10 or tag[:3] != b"ID3":
        return
    version, flags = tag[3], tag[5]
    starts = {10}
    if flags & 0x40 and version in (3, 4):
        extended = int.from_bytes(tag[10:14], "big")
        starts.add(10 + (_unsyncsafe(extended) if version == 4 else extended + 4))
    for start in starts:
        for syncsafe in (True, False):
            _walk_id3_frames(tag, start=start, version=version, syncsafe=syncsafe)


@dataclass
class _Id3Cost:
    """What parsing a tag would cost mutagen, counted frame by frame."""

    frames: int = 0
    copied: int = 0  # it slices the rest of the tag off after every frame
    text: int = 0  # the frames it parses, picture descriptions included
    dates: int = 0  # timestamp text (each non-digit run becomes another timestamp object)

    def add(self, frame_id: bytes, body: bytes, remaining: int) -> None:
        self.frames += 1
        self.copied += remaining
        if frame_id in _ID3_DATE_FRAMES:
            self.dates += len(body)
        if frame_id in (b"APIC", b"PIC"):
            self.text += _picture_description_bytes(frame_id, body)
        elif frame_id in _ID3_FRAMES_READ:
            self.text += len(body)
        if self.frames > MAX_TAG_ENTRIES or self.copied > _ID3_MAX_COPIED:
            raise _too_many_entries()
        if self.text > MAX_ID3_TEXT_BYTES or self.dates > _ID3_MAX_DATE_BYTES:
            raise CorruptFileError(
                gettext(
                    "The file's tags hold far more text than any recording has; it is damaged or built to "
                    "overload the portal."
                ),
                code="tags_too_large",
            )


def _walk_id3_frames(tag: bytes, *, start: int, version: int, syncsafe: bool) -> None:
    id_length, header_length = (3, 6) if version == 2 else (4, 10)
    size_end = header_length - (0 if version == 2 else 2)
    cost = _Id3Cost()
    pos = start
    while pos + header_length <= len(tag) and tag[pos] != 0:  # a zero byte starts the padding
        raw = int.from_bytes(tag[pos + id_length : pos + size_end], "big")
        size = _unsyncsafe(raw) if syncsafe and version != 2 else raw
        body = pos + header_length
        cost.add(tag[pos : pos + id_length], tag[body : body + size], len(tag) - pos)
        pos = body + size


def _picture_description_bytes(frame_id: bytes, body: bytes) -> int:
    """The length of a picture frame's description, which mutagen decodes (UTF-16 one unit at a time)."""
    if not body:
        return 0
    # It follows a Latin-1 MIME type (or a 3-letter format) and the picture type.
    start = 5 if frame_id == b"PIC" else body.find(b"\x00", 1) + 2
    if start <= 1:
        return len(body)
    window = body[start : start + MAX_ID3_TEXT_BYTES + 2]
    wide = body[0] in (1, 2)
    end = window.find(b"\x00\x00" if wide else b"\x00")
    while wide and end >= 0 and end % 2:
        end = window.find(b"\x00\x00", end + 1)
    return len(body) - start if end < 0 else end


def _unsyncsafe(value: int) -> int:
    return ((value >> 3) & 0xFE00000) | ((value >> 2) & 0x1FC000) | ((value >> 1) & 0x3F80) | (value & 0x7F)


def _is_mpeg_audio_sync(data: bytes) -> bool:
    # 11 sync bits, then a version other than "reserved" and layer III.
    return len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0 and (data[1] & 0x06) == 0x02


def _sniff(fileobj: ByteStream, size: int) -> tuple[str, int]:
    head = fileobj.read(64)
    tag_end = _id3v2_end(head)
    if tag_end:
        if tag_end >= size:
            raise TruncatedFileError(gettext("The file holds an ID3 tag but no audio after it."))
        fileobj.seek(tag_end)
        after = fileobj.read(16)
        # Some taggers put ID3 in front of FLAC; the audio decides the format.
        return ("flac" if after[:4] == b"fLaC" else "mp3"), tag_end
    if head[:4] == b"fLaC":
        return "flac", 0
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav", 0
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff", 0
    if head[:4] == b"OggS":
        return _sniff_ogg(head), 0
    if head[4:8] == b"ftyp":
        return "m4a", 0
    if _is_mpeg_audio_sync(head):
        return "mp3", 0
    raise UnsupportedFormatError(
        gettext("%(what)s Allowed formats: %(formats)s.")
        % {"what": _describe_non_audio(head), "formats": gettext(ALLOWED_FORMATS_TEXT)}
    )


def _sniff_ogg(head: bytes) -> str:
    if len(head) < 28:
        raise TruncatedFileError(gettext("The Ogg file ends inside its first page."))
    first_packet = head[27 + head[26] :]
    if first_packet.startswith(b"\x01vorbis"):
        return "vorbis"
    if first_packet.startswith(b"OpusHead"):
        return "opus"
    raise UnsupportedFormatError(
        gettext("This Ogg file holds a codec the portal does not accept. Allowed formats: %(formats)s.")
        % {"formats": gettext(ALLOWED_FORMATS_TEXT)}
    )


_NON_AUDIO_SIGNATURES = (
    (b"\xff\xd8\xff", gettext_noop("a JPEG image")),
    (b"\x89PNG", gettext_noop("a PNG image")),
    (b"GIF8", gettext_noop("a GIF image")),
    (b"%PDF", gettext_noop("a PDF document")),
    (b"PK\x03\x04", gettext_noop("a ZIP archive (or an Office document)")),
    (b"\x1f\x8b", "a gzip archive"),
)


def _describe_non_audio(head: bytes) -> str:
    for magic, what in _NON_AUDIO_SIGNATURES:
        if head.startswith(magic):
            return gettext("This is %(what)s, not audio.") % {"what": gettext(what)}
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return gettext("This is a WebP image, not audio.")
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0:
        return gettext("This is a raw AAC (ADTS) stream; put it in an M4A container first.")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return gettext("This is a web page (HTML), not audio.")
    if text.startswith((b"<?xml", b"<svg")):
        return gettext("This is an XML or SVG document, not audio.")
    if looks_like_text(head):
        return gettext("This is a text file, not audio.")
    return gettext("The file is not in a recognised audio format.")


# --- per-format parsing and extra checks ------------------------------------------------


def _parse_mp3(fileobj: ByteStream, size: int, tag_end: int):
    if tag_end:
        fileobj.seek(0)
        _check_id3_frames(fileobj.read(tag_end))
        fileobj.seek(0)
    try:
        parsed = MP3(fileobj, known_frames=_ID3_KNOWN_FRAMES)
    except mutagen.MutagenError:
        parsed = None
    info = parsed.info if parsed is not None else None
    if info is None:
        raise CorruptFileError(
            gettext("The file claims to be an MP3, but no valid MP3 audio frames follow its header.")
        )
    # mutagen hunts up to 1 MB for anything frame-shaped and settles for two
    # frames; in random bytes that finds ghosts. Real MP3s start their frames
    # right after the tag and mutagen finds a run of them (or a Xing header).
    if info.sketchy or info.layer != 3:
        raise CorruptFileError(
            gettext("The file claims to be an MP3, but no valid MP3 audio frames follow its header.")
        )
    first_frame = getattr(info, "frame_offset", None)
    if first_frame is not None and first_frame - tag_end > 4096:
        raise CorruptFileError(
            gettext("The file claims to be an MP3, but its audio frames do not start where they should.")
        )
    return parsed, "MP3"


def _parse_flac(fileobj: ByteStream, size: int, tag_end: int):
    audio_start, stream = _walk_flac_metadata(fileobj, size, tag_end)
    fileobj.seek(audio_start)
    if not _is_flac_frame_sync(fileobj.read(2)):
        raise CorruptFileError(gettext("The FLAC file's metadata is not followed by audio frames."))
    _check_flac_tail(fileobj, size, audio_start, stream)
    fileobj.seek(0)
    return FLAC(fileobj), "FLAC"


@dataclass(frozen=True)
class _FlacStreamInfo:
    min_blocksize: int
    max_blocksize: int
    max_framesize: int
    total_samples: int


def _walk_flac_metadata(fileobj: ByteStream, size: int, tag_end: int) -> tuple[int, _FlacStreamInfo]:
    pos = tag_end + 4
    stream = None
    total = 0
    for _ in range(MAX_TAG_ENTRIES):
        fileobj.seek(pos)
        header = fileobj.read(4)
        if len(header) < 4:
            raise TruncatedFileError(gettext("The FLAC file ends inside its metadata: it was cut short."))
        is_last, block_type = header[0] & 0x80, header[0] & 0x7F
        length = int.from_bytes(header[1:4], "big")
        if block_type == 127:
            raise CorruptFileError(gettext("The FLAC file has an invalid metadata block."))
        if pos + 4 + length > size:
            raise TruncatedFileError(gettext("The FLAC file ends inside its metadata: it was cut short."))
        total += length
        if total > MAX_TAG_BYTES:
            raise CorruptFileError(gettext("The FLAC file's metadata is unreasonably large."))
        if block_type == 0:
            stream = _flac_stream_info(fileobj.read(34), length)
        elif stream is None:
            raise CorruptFileError(gettext("The FLAC file does not start with its stream information."))
        elif block_type == 4:
            _check_vorbis_comment_count(fileobj.read(min(length, 64 * 1024)))
        pos += 4 + length
        if is_last:
            return pos, stream
    raise _too_many_entries()


def _flac_stream_info(body: bytes, length: int) -> _FlacStreamInfo:
    if length != 34 or len(body) != 34:
        raise CorruptFileError(gettext("The FLAC file's stream information block is damaged."))
    min_bs, max_bs = struct.unpack(">HH", body[:4])
    max_fs = int.from_bytes(body[7:10], "big")
    packed = int.from_bytes(body[10:18], "big")
    sample_rate = packed >> 44
    total_samples = packed & ((1 << 36) - 1)
    if sample_rate == 0 or min_bs < 16 or max_bs < min_bs:
        raise CorruptFileError(gettext("The FLAC file's stream information block is damaged."))
    if total_samples == 0:
        raise CorruptFileError(
            gettext(
                "The FLAC file does not record how long it is (it was probably saved while streaming); "
                "export it again from your audio software."
            ),
            code="unknown_length",
        )
    return _FlacStreamInfo(min_bs, max_bs, max_fs, total_samples)


def _check_vorbis_comment_count(body: bytes) -> None:
    """`body` starts with a Vorbis comment header: vendor length, vendor, number of comments."""
    if len(body) < 4:
        return
    vendor_length = int.from_bytes(body[:4], "little")
    count = body[4 + vendor_length : 8 + vendor_length]
    # A vendor string too long to leave room for the count is left to the parser.
    if len(count) == 4 and int.from_bytes(count, "little") > MAX_TAG_ENTRIES:
        raise _too_many_entries()


def _is_flac_frame_sync(data: bytes) -> bool:
    return len(data) >= 2 and data[0] == 0xFF and data[1] in (0xF8, 0xF9)


def _crc8_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
        table.append(crc)
    return table


def _crc16_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
        table.append(crc)
    return table


_CRC8 = _crc8_table()
_CRC16 = _crc16_table()


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
    return crc


def _flac_frame_header(buf: bytes, i: int) -> tuple[int, int, bool] | None:
    """Parse a frame header at buf[i]: (frame or sample number, block size, variable) or None."""
    if i + 6 > len(buf) or not _is_flac_frame_sync(buf[i : i + 2]):
        return None
    bs_code, sr_code = buf[i + 2] >> 4, buf[i + 2] & 0x0F
    channels, sample_size, reserved = buf[i + 3] >> 4, (buf[i + 3] >> 1) & 7, buf[i + 3] & 1
    if bs_code == 0 or sr_code == 15 or channels > 10 or sample_size == 3 or reserved:
        return None
    j = i + 4
    first = buf[j]
    if first < 0x80:
        extra, number = 0, first
    elif 0xC0 <= first < 0xFE:
        extra = 1
        while first & (0x40 >> extra):
            extra += 1
        number = first & (0x3F >> extra)
    else:
        return None
    if j + 1 + extra > len(buf):
        return None
    for k in range(1, extra + 1):
        cont = buf[j + k]
        if cont & 0xC0 != 0x80:
            return None
        number = (number << 6) | (cont & 0x3F)
    j += 1 + extra
    if bs_code == 1:
        blocksize = 192
    elif 2 <= bs_code <= 5:
        blocksize = 576 << (bs_code - 2)
    elif bs_code in (6, 7):
        width = bs_code - 5
        if j + width > len(buf):
            return None
        blocksize = int.from_bytes(buf[j : j + width], "big") + 1
        j += width
    else:
        blocksize = 256 << (bs_code - 8)
    j += {12: 1, 13: 2, 14: 2}.get(sr_code, 0)
    if j >= len(buf) or _crc8(buf[i:j]) != buf[j]:
        return None
    return number, blocksize, bool(buf[i + 1] & 1)


def _check_flac_tail(fileobj: ByteStream, size: int, audio_start: int, stream: _FlacStreamInfo) -> None:
    """Prove the last audio frame is whole and is the one the stream info promises.

    A download cut short keeps its metadata, so mutagen alone would accept it.
    """
    # Two of the largest frames always contain the last frame's header; 128
    # more bytes allow for an ID3v1 tag at the very end.
    window = 2 * stream.max_framesize + 256 if stream.max_framesize else _TAIL_WINDOW
    start = max(audio_start, size - window)
    fileobj.seek(start)
    tail = fileobj.read(size - start)
    if len(tail) >= 128 and tail[-128:-125] == b"TAG":
        tail = tail[:-128]  # an ID3v1 tag appended by an old tagger
    i = len(tail) - 2
    while i >= 0:
        i = max(tail.rfind(b"\xff\xf8", 0, i + 2), tail.rfind(b"\xff\xf9", 0, i + 2))
        if i < 0:
            break
        header = _flac_frame_header(tail, i)
        if header and len(tail) - i > 2 and _crc16(tail[i:-2]) == int.from_bytes(tail[-2:], "big"):
            number, blocksize, variable = header
            first_sample = number if variable else number * stream.max_blocksize
            if stream.total_samples and first_sample + blocksize != stream.total_samples:
                break
            return
        i -= 1
    raise TruncatedFileError(gettext("The FLAC file was cut short: its last audio frame is missing or incomplete."))


def _walk_boxes(fileobj: ByteStream, size: int, *, container: str) -> list[tuple[bytes, int, int]]:
    """Top-level MP4 boxes as (type, offset, length); raise if one runs past the end."""
    boxes = []
    pos = 0
    while pos < size:
        fileobj.seek(pos)
        header = fileobj.read(16)
        if len(header) < 8:
            raise TruncatedFileError(
                gettext("The %(container)s file ends in the middle of a box header: it was cut short.")
                % {"container": container}
            )
        length, kind = struct.unpack(">I4s", header[:8])
        if length == 1:
            if len(header) < 16:
                raise TruncatedFileError(gettext("The %(container)s file was cut short.") % {"container": container})
            length = struct.unpack(">Q", header[8:16])[0]
        elif length == 0:
            length = size - pos
        if length < 8:
            raise CorruptFileError(
                gettext("The %(container)s file has a damaged box structure.") % {"container": container}
            )
        if pos + length > size:
            name = kind.decode("latin-1")
            raise TruncatedFileError(
                gettext(
                    "The %(container)s file was cut short: it ends %(bytes)s bytes before its '%(name)s' section does."
                )
                % {"container": container, "bytes": f"{pos + length - size:,}", "name": name}
            )
        boxes.append((kind, pos, length))
        if len(boxes) > 10_000:
            raise CorruptFileError(
                gettext("The %(container)s file has an implausible structure.") % {"container": container}
            )
        pos += length
    return boxes


def _parse_m4a(fileobj: ByteStream, size: int, tag_end: int):
    boxes = _walk_boxes(fileobj, size, container="M4A")
    kinds = [kind for kind, _, _ in boxes]
    if b"moov" not in kinds:
        raise CorruptFileError(gettext("The M4A file has no track information (no 'moov' box): it is incomplete."))
    if b"mdat" not in kinds:
        raise CorruptFileError(gettext("The M4A file has no audio data (no 'mdat' box): it is incomplete."))
    moov_at, moov_length = next((offset, length) for kind, offset, length in boxes if kind == b"moov")
    if moov_length > MAX_TAG_BYTES:
        raise CorruptFileError(gettext("The M4A file's track information is unreasonably large."))
    fileobj.seek(moov_at)
    _check_mp4_entries(fileobj.read(moov_length))
    fileobj.seek(0)
    if b"vide" in _mp4_track_handlers(fileobj):
        raise UnsupportedFormatError(
            gettext("This is a video file, not an audio recording. Allowed formats: %(formats)s.")
            % {"formats": gettext(ALLOWED_FORMATS_TEXT)}
        )
    fileobj.seek(0)
    parsed = MP4(fileobj)
    # mutagen's annotations leave FileType.info as None; MP4 sets an MP4Info with a codec.
    codec = (getattr(parsed.info, "codec", None) or "").lower()
    if codec.startswith("mp4a"):
        return parsed, "AAC"
    if codec == "alac":
        return parsed, "ALAC"
    raise UnsupportedFormatError(
        gettext("This MP4 file's audio is not AAC (found %(codec)s). Allowed formats: %(formats)s.")
        % {"codec": repr(codec or "none"), "formats": gettext(ALLOWED_FORMATS_TEXT)}
    )


# The boxes mutagen descends into, with the bytes to skip before their children.
_MP4_CONTAINERS = {b"moov": 0, b"udta": 0, b"trak": 0, b"mdia": 0, b"meta": 4, b"ilst": 0, b"stbl": 0,
                   b"minf": 0, b"moof": 0, b"traf": 0}  # fmt: skip


def _check_mp4_entries(moov: bytes) -> None:
    """Count the boxes mutagen would parse in a 'moov' box (tag items and their data included)."""
    count = 0
    pending = [(8, len(moov), False)]  # (start, end, whether the children are tag items)
    while pending:
        pos, end, items = pending.pop()
        while pos + 8 <= end:
            length, kind = struct.unpack(">I4s", moov[pos : pos + 8])
            header = 16 if length == 1 else 8
            if length == 1:
                length = int.from_bytes(moov[pos + 8 : pos + 16], "big")
            elif length == 0:
                length = end - pos
            if length < header:
                break
            count += 1
            if count > MAX_TAG_ENTRIES:
                raise _too_many_entries()
            if kind in _MP4_CONTAINERS or items:
                pending.append((pos + header + _MP4_CONTAINERS.get(kind, 0), min(pos + length, end), kind == b"ilst"))
            pos += length


def _mp4_track_handlers(fileobj: ByteStream) -> set[bytes]:
    """The handler type ('soun', 'vide', …) of every track; cover art is not a track."""
    atoms = Atoms(fileobj)
    handlers = set()
    for trak in atoms[b"moov"].findall(b"trak"):
        try:
            hdlr = trak[b"mdia", b"hdlr"]
        except KeyError:
            continue
        # Box header (8), version and flags (4), pre_defined (4), then the type.
        fileobj.seek(hdlr.offset + 16)
        handlers.add(fileobj.read(4))
    return handlers


def _walk_iff_chunks(fileobj: ByteStream, size: int, *, order: str, audio_chunk: bytes, container: str) -> None:
    """Check that a WAV (RIFF) or AIFF (IFF) file's audio chunk is all there, and its ID3 chunk sane."""
    pos = 12
    has_audio = False
    for chunks in itertools.count(1):
        if pos + 8 > size:
            break
        if chunks > MAX_TAG_ENTRIES:
            # mutagen walks every chunk to look for tags: millions of empty ones take minutes.
            raise _too_many_entries()
        fileobj.seek(pos)
        kind, length = struct.unpack(f"{order}4sI", fileobj.read(8))
        if kind == audio_chunk:
            if pos + 8 + length > size:
                raise TruncatedFileError(
                    gettext("The %(container)s file was cut short: its audio data is incomplete.")
                    % {"container": container}
                )
            has_audio = True
        elif kind.lower() == b"id3 ":
            # mutagen parses an ID3 chunk wherever it is, often after the audio.
            if length > MAX_TAG_BYTES:
                raise CorruptFileError(
                    gettext("The %(container)s file's ID3 tag is unreasonably large.") % {"container": container}
                )
            _check_id3_frames(fileobj.read(length))
        pos += 8 + length + (length & 1)
    if not has_audio:
        raise CorruptFileError(gettext("The %(container)s file holds no audio data.") % {"container": container})


def _parse_wav(fileobj: ByteStream, size: int, tag_end: int):
    _walk_iff_chunks(fileobj, size, order="<", audio_chunk=b"data", container="WAV")
    fileobj.seek(0)
    parsed = WAVE(fileobj, known_frames=_ID3_KNOWN_FRAMES)
    fmt = getattr(parsed.info, "audio_format", 1)
    if fmt not in (1, 3, 0xFFFE):
        raise UnsupportedFormatError(
            gettext("This WAV file holds compressed audio; only uncompressed (PCM) WAV is accepted.")
        )
    bits = getattr(parsed.info, "bits_per_sample", 0)
    return parsed, f"PCM {bits}-bit" if bits else "PCM"


def _parse_aiff(fileobj: ByteStream, size: int, tag_end: int):
    _walk_iff_chunks(fileobj, size, order=">", audio_chunk=b"SSND", container="AIFF")
    fileobj.seek(0)
    parsed = AIFF(fileobj, known_frames=_ID3_KNOWN_FRAMES)
    bits = getattr(parsed.info, "bits_per_sample", 0)
    return parsed, f"PCM {bits}-bit" if bits else "PCM"


def _check_ogg_headers(fileobj: ByteStream, size: int) -> None:
    """Refuse an Ogg stream whose header packets (tags, cover art) are absurdly large or many.

    mutagen loads the comment packet whole and parses every comment; walking
    page headers first keeps a forged file from making it read hundreds of
    megabytes into memory or millions of comments.
    """
    pos = 0
    packets_done = 0
    header_bytes = 0
    comments = b""  # the start of the second packet, where the comment count is
    while packets_done < 2:
        lacing = _ogg_page_lacing(fileobj, pos)
        payload = pos + 27 + len(lacing)
        for value in lacing:
            if packets_done == 1 and len(comments) < 64 * 1024:
                fileobj.seek(payload)
                comments += fileobj.read(value)
            payload += value
            header_bytes += value
            if value < 255:
                packets_done += 1
                if packets_done == 2:
                    break
        if header_bytes > MAX_TAG_BYTES:
            raise CorruptFileError(gettext("The Ogg file's tags are unreasonably large."))
        pos += 27 + len(lacing) + sum(lacing)
        if pos > size:
            raise TruncatedFileError(gettext("The Ogg file ends inside its headers: it was cut short."))
    for magic in (b"\x03vorbis", b"OpusTags"):
        if comments.startswith(magic):
            _check_vorbis_comment_count(comments[len(magic) :])
    fileobj.seek(0)


def _ogg_page_lacing(fileobj: ByteStream, pos: int) -> bytes:
    fileobj.seek(pos)
    page = fileobj.read(27)
    if len(page) < 27 or page[:4] != b"OggS":
        raise TruncatedFileError(gettext("The Ogg file ends inside its headers: it was cut short."))
    lacing = fileobj.read(page[26])
    if len(lacing) < page[26]:
        raise TruncatedFileError(gettext("The Ogg file ends inside its headers: it was cut short."))
    return lacing


def _parse_vorbis(fileobj: ByteStream, size: int, tag_end: int):
    _check_ogg_headers(fileobj, size)
    return OggVorbis(fileobj), "Vorbis"


def _parse_opus(fileobj: ByteStream, size: int, tag_end: int):
    _check_ogg_headers(fileobj, size)
    return OggOpus(fileobj), "Opus"


_PARSERS = {
    "mp3": _parse_mp3,
    "flac": _parse_flac,
    "wav": _parse_wav,
    "aiff": _parse_aiff,
    "vorbis": _parse_vorbis,
    "opus": _parse_opus,
    "m4a": _parse_m4a,
}


# --- tags and pictures --------------------------------------------------------------------


def _first_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value)
    # Tags are free text from someone else's software: no control characters,
    # no absurd lengths.
    text = "".join(ch for ch in text if ch.isprintable())
    return text.strip()[:300]


def _tags_from_id3(tags: ID3 | None) -> tuple[Tags, EmbeddedPicture | None]:
    if not tags:
        return Tags(), None

    def text(frame_id: str) -> str:
        frame = tags.get(frame_id)
        return _first_text(getattr(frame, "text", None)) if frame else ""

    date = text("TDRC") or text("TYER") or text("TDRL")
    picture = None
    apics = tags.getall("APIC")
    if apics:
        chosen = next((a for a in apics if a.type == 3), apics[0])
        picture = EmbeddedPicture(bytes(chosen.data), chosen.mime or "")
    found = Tags(
        title=text("TIT2"),
        artist=text("TPE1"),
        album=text("TALB"),
        date=date,
        isrc=normalise_isrc_or_blank(text("TSRC")),
    )
    return found, picture


def _tags_from_vorbis_comments(comments) -> Tags:
    if not comments:
        return Tags()

    def text(key: str) -> str:
        return _first_text(comments.get(key))

    return Tags(
        title=text("title"),
        artist=text("artist"),
        album=text("album"),
        date=text("date"),
        isrc=normalise_isrc_or_blank(text("isrc")),
    )


def _picture_from_block_comment(comments) -> EmbeddedPicture | None:
    if not comments:
        return None
    pictures = []
    for encoded in comments.get("metadata_block_picture", []):
        try:
            pictures.append(Picture(base64.b64decode(encoded)))
        except (binascii.Error, ValueError, mutagen.MutagenError, struct.error):
            continue  # one broken picture must not hide the others
    return _choose_flac_picture(pictures)


def _choose_flac_picture(pictures) -> EmbeddedPicture | None:
    if not pictures:
        return None
    chosen = next((p for p in pictures if p.type == 3), pictures[0])
    return EmbeddedPicture(bytes(chosen.data), chosen.mime or "")


def _read_id3_file(parsed):
    return _tags_from_id3(parsed.tags if isinstance(parsed.tags, ID3) else None)


def _read_flac(parsed):
    return _tags_from_vorbis_comments(parsed.tags), _choose_flac_picture(parsed.pictures)


def _read_ogg(parsed):
    return _tags_from_vorbis_comments(parsed.tags), _picture_from_block_comment(parsed.tags)


def _read_mp4(parsed):
    tags = parsed.tags
    if not tags:
        return Tags(), None
    isrc = ""
    for key, value in tags.items():
        if key.upper().endswith(":ISRC"):
            isrc = normalise_isrc_or_blank(_first_text(value))
    found = Tags(
        title=_first_text(tags.get("\xa9nam")),
        artist=_first_text(tags.get("\xa9ART")),
        album=_first_text(tags.get("\xa9alb")),
        date=_first_text(tags.get("\xa9day")),
        isrc=isrc,
    )
    picture = None
    covers = tags.get("covr") or []
    if covers:
        cover = covers[0]
        mime = "image/png" if getattr(cover, "imageformat", None) == MP4Cover.FORMAT_PNG else "image/jpeg"
        picture = EmbeddedPicture(bytes(cover), mime)
    return found, picture


_TAG_READERS = {
    "mp3": _read_id3_file,
    "wav": _read_id3_file,
    "aiff": _read_id3_file,
    "flac": _read_flac,
    "vorbis": _read_ogg,
    "opus": _read_ogg,
    "m4a": _read_mp4,
}
