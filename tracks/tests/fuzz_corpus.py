"""Seeded hostile variants of the test media, for the upload fuzz test.

Every case is derived from the small real files in fixtures/ by one mutation:
truncation, bit flips, overwritten runs, swapped headers, absurd size fields,
absurd durations, hostile tags, hostile embedded artwork, zip archives and
polyglots. The same seed always gives the same bytes, so a failure names a
case that can be rebuilt and looked at (`corpus(seed=…, count=…)[number]`).
"""

from __future__ import annotations

import gzip
import io
import random
import re
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from tracks.tests.conftest import GOOD_AUDIO, fixture_bytes

IMAGES = ["cover.jpg", "cover.png", "cover.webp", "bomb.png", "artwork.svg", "artwork.html", "artwork.txt"]
OTHER = ["noise-id3.mp3", "noise-flac.flac", "short.mp3", "bomb-cover.mp3", "video.mp4"]
EXTENSIONS = {"good.mp3": "mp3", "good.flac": "flac", "good.wav": "wav", "good.aiff": "aiff", "good.ogg": "ogg"}


@dataclass(frozen=True)
class FuzzCase:
    number: int
    mutation: str
    upload_name: str
    data: bytes

    def __str__(self) -> str:
        return f"#{self.number} {self.mutation} ({len(self.data)} bytes, sent as {self.upload_name[:60]!r})"


Media = dict[str, bytes]
Mutation = Callable[[random.Random, Media], tuple[str, bytes]]


def load_media() -> Media:
    names = [*GOOD_AUDIO, *IMAGES, *OTHER]
    return {name: fixture_bytes(name) for name in names if _exists(name)}


def _exists(name: str) -> bool:
    try:
        fixture_bytes(name)
    except FileNotFoundError:
        return False
    return True


def _audio(rng: random.Random, media: Media) -> tuple[str, bytes]:
    name = rng.choice(GOOD_AUDIO)
    return name, media[name]


def _random_bytes(rng: random.Random, count: int) -> bytes:
    return rng.getrandbits(8 * count).to_bytes(count, "little") if count else b""


# --- generic damage ---------------------------------------------------------------------------


def truncate(rng, media):
    name, data = _audio(rng, media)
    cut = rng.choice([rng.randrange(0, 300), rng.randrange(0, len(data)), len(data) - rng.randrange(1, 200)])
    return f"truncate {name} at {cut}", data[: max(cut, 0)]


def bit_flips(rng, media):
    name, data = _audio(rng, media)
    buffer = bytearray(data)
    # Half the time only in the headers, where a flip changes what parsers believe.
    window = len(buffer) if rng.random() < 0.5 else min(len(buffer), 1024)
    flips = rng.randint(1, 32)
    for _ in range(flips):
        buffer[rng.randrange(window)] ^= 1 << rng.randrange(8)
    return f"{flips} bit flips in the first {window} bytes of {name}", bytes(buffer)


def overwritten_run(rng, media):
    name, data = _audio(rng, media)
    buffer = bytearray(data)
    start, length = rng.randrange(len(buffer)), rng.randint(1, 96)
    fill = rng.choice([b"\x00", b"\xff", b""])
    buffer[start : start + length] = fill * length if fill else _random_bytes(rng, length)
    return f"{length} bytes of {fill.hex() or 'noise'} at {start} in {name}", bytes(buffer)


def swapped_headers(rng, media):
    body_name, body = _audio(rng, media)
    head_name = rng.choice([n for n in [*GOOD_AUDIO, *IMAGES] if n != body_name])
    size = rng.choice([4, 8, 12, 36, 64, 512, 4096])
    return f"first {size} bytes of {head_name} on {body_name}", media[head_name][:size] + body[size:]


# --- absurd declared sizes --------------------------------------------------------------------

# Box types whose 4-byte size comes before them (MP4), chunk ids whose size follows (RIFF, IFF).
_SIZE_BEFORE = (b"moov", b"mdat", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"stsz", b"stco", b"stts",
                b"udta", b"meta", b"ilst", b"covr", b"mvhd", b"mdhd", b"hdlr", b"ftyp", b"esds", b"mp4a")  # fmt: skip
_SIZE_AFTER = {b"RIFF": "<", b"fmt ": "<", b"data": "<", b"LIST": "<", b"FORM": ">", b"COMM": ">", b"SSND": ">"}
_ABSURD_SIZES = [0, 1, 7, 8, 9, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF]


def _size_fields(data: bytes) -> list[tuple[int, int, str]]:
    """(offset, width, byte order) of every size field found in a file."""
    fields = [
        (m.start() - 4, 4, ">") for tag in _SIZE_BEFORE for m in re.finditer(re.escape(tag), data) if m.start() >= 4
    ]
    fields += [(m.end(), 4, order) for tag, order in _SIZE_AFTER.items() for m in re.finditer(re.escape(tag), data)]
    if data[:3] == b"ID3":
        fields.append((6, 4, ">"))
    if data[:4] == b"fLaC":
        fields += [(pos + 1, 3, ">") for pos in _flac_block_offsets(data)]
    fields += [(m.start() + 26, 1, ">") for m in re.finditer(b"OggS", data)]
    return [f for f in fields if f[0] + f[1] <= len(data)]


def _flac_block_offsets(data: bytes) -> list[int]:
    offsets, pos = [], 4
    while pos + 4 <= len(data):
        offsets.append(pos)
        if data[pos] & 0x80:
            break
        pos += 4 + int.from_bytes(data[pos + 1 : pos + 4], "big")
    return offsets


def absurd_sizes(rng, media):
    name, data = _audio(rng, media)
    buffer = bytearray(data)
    fields = _size_fields(data)
    chosen = rng.sample(fields, k=min(len(fields), rng.randint(1, 3)))
    for offset, width, order in chosen:
        value = rng.choice(_ABSURD_SIZES) & ((1 << (8 * width)) - 1)
        buffer[offset : offset + width] = value.to_bytes(width, "little" if order == "<" else "big")
    return f"size fields at {[c[0] for c in chosen]} of {name} made absurd", bytes(buffer)


# --- absurd durations -------------------------------------------------------------------------


def _patch(data: bytes, offset: int, value: bytes) -> bytes:
    if offset < 0 or offset + len(value) > len(data):
        return data
    return data[:offset] + value + data[offset + len(value) :]


def _wav_duration(rng, data):
    fmt = data.find(b"fmt ") + 8
    field, width = rng.choice([(2, 2), (4, 4), (8, 4), (12, 2), (14, 2)])  # channels, rate, byte rate, align, bits
    value = rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF]) & ((1 << (8 * width)) - 1)
    return f"WAV fmt field +{field} = {value}", _patch(data, fmt + field, value.to_bytes(width, "little"))


def _aiff_duration(rng, data):
    comm = data.find(b"COMM") + 8
    if rng.random() < 0.5:
        frames = rng.choice([0, 0xFFFFFFFF, 0x7FFFFFFF])
        return f"AIFF frames = {frames}", _patch(data, comm + 2, struct.pack(">I", frames))
    rate = rng.choice(
        [b"\x7f\xff" + b"\x00" * 8, b"\x7f\xff\xc0" + b"\x00" * 7, b"\x00" * 10, b"\x40\x3f" + b"\xff" * 8]
    )
    return f"AIFF sample rate {rate.hex()}", _patch(data, comm + 8, rate)


def _flac_duration(rng, data):
    # STREAMINFO packs sample rate (20 bits), channels, bits per sample, total samples (36 bits).
    packed = int.from_bytes(data[18:26], "big")
    rate = rng.choice([packed >> 44, 1, 0xFFFFF])
    total = rng.choice([packed & ((1 << 36) - 1), (1 << 36) - 1, 1])
    packed = (rate << 44) | (packed & (((1 << 8) - 1) << 36)) | total
    return f"FLAC rate {rate}, total samples {total}", _patch(data, 18, packed.to_bytes(8, "big"))


def _m4a_duration(rng, data):
    box = rng.choice([b"mvhd", b"mdhd"])
    at = data.find(box) + 4 + 4 + 8  # type, version+flags, creation and modification times
    timescale, duration = rng.choice([(0, 1000), (1, 0xFFFFFFFF), (0xFFFFFFFF, 1), (44100, 0xFFFFFFFF), (1000, 0)])
    patched = _patch(data, at, struct.pack(">II", timescale, duration))
    return f"M4A {box.decode()} timescale {timescale}, duration {duration}", patched


def _mp3_duration(rng, data):
    info = max(data.find(b"Xing"), data.find(b"Info"))
    if info >= 0 and rng.random() < 0.6:
        frames = rng.choice([0, 1, 0xFFFFFFFF])
        return f"MP3 Xing frames = {frames}", _patch(data, info + 8, struct.pack(">I", frames))
    sync = data.find(b"\xff\xf3")
    header = rng.choice([b"\xff\xf3\x00", b"\xff\xf3\xf0", b"\xff\xf3\x0c"])  # free, bad bitrate, reserved rate
    return f"MP3 frame header {header.hex()}", _patch(data, sync, header)


def _ogg_duration(rng, data):
    last = data.rfind(b"OggS")
    granule = rng.choice([0, 1, (1 << 63) - 1, (1 << 64) - 1])
    patched = _patch(data, last + 6, struct.pack("<Q", granule))
    head = data.find(b"OpusHead")
    if head >= 0 and rng.random() < 0.5:
        patched = _patch(patched, head + 10, struct.pack("<H", 0xFFFF))  # pre-skip longer than the audio
    return f"Ogg last granule {granule}", patched


_DURATION_PATCHERS = {
    "good.wav": _wav_duration,
    "good.aiff": _aiff_duration,
    "good.flac": _flac_duration,
    "good.m4a": _m4a_duration,
    "good.mp3": _mp3_duration,
    "good.ogg": _ogg_duration,
    "good.opus": _ogg_duration,
}


def absurd_durations(rng, media):
    name = rng.choice(list(_DURATION_PATCHERS))
    what, data = _DURATION_PATCHERS[name](rng, media[name])
    return f"{what} in {name}", data


# --- hostile tags and artwork -------------------------------------------------------------------


def _syncsafe(value: int) -> bytes:
    return bytes([(value >> 21) & 0x7F, (value >> 14) & 0x7F, (value >> 7) & 0x7F, value & 0x7F])


def _id3_frame(frame_id: bytes, body: bytes, *, version: int, size: int | None = None, flags: bytes = b"\0\0") -> bytes:
    size = len(body) if size is None else size
    encoded = _syncsafe(size) if version == 4 else struct.pack(">I", size & 0xFFFFFFFF)
    return frame_id + encoded + flags + body


def _mp3_audio(media: Media) -> bytes:
    data = media["good.mp3"]
    return data[10 + int.from_bytes(_unsyncsafe(data[6:10]), "big") :]


def _unsyncsafe(raw: bytes) -> bytes:
    value = (raw[0] << 21) | (raw[1] << 14) | (raw[2] << 7) | raw[3]
    return value.to_bytes(4, "big")


_HOSTILE_TEXT = [
    "<script>alert(1)</script>",
    "../../../../etc/passwd",
    "\u202egnp.exe",
    "Title\x00with\x07control\x1bchars",
    '=HYPERLINK("http://example.invalid")',
    "\ud800",
    "A" * 70_000,
    "\u0301" * 5000,
    "ISRC: GB-<b>-25-00001",
    "99999999",
]


def _text_frame(rng, version: int) -> bytes:
    frame_id = rng.choice([b"TIT2", b"TPE1", b"TALB", b"TDRC", b"TYER", b"TSRC", b"TXXX", b"COMM", b"TCON"])
    text = rng.choice(_HOSTILE_TEXT)
    encoding = rng.choice([0, 1, 3, 4, 0xFF])
    body = text.encode("utf-16" if encoding == 1 else "utf-8", "surrogatepass")
    if rng.random() < 0.2:
        body = body[:-1]  # UTF-16 cut in the middle of a character
    size = None if rng.random() < 0.8 else rng.choice([0, 0x0FFFFFFF, len(body) + 10_000])
    return _id3_frame(frame_id, bytes([encoding]) + body, version=version, size=size)


def _apic_frame(rng, media: Media, version: int) -> bytes:
    _, image = _hostile_image(rng, media)
    mime = rng.choice([b"image/jpeg", b"image/png", b"image/svg+xml", b"", b"-->", b"x" * 300])
    picture_type = rng.choice([3, 0, 255])
    body = b"\x00" + mime + b"\x00" + bytes([picture_type]) + b"cover\x00" + image
    return _id3_frame(b"APIC", body, version=version)


def _hostile_image(rng, media: Media) -> tuple[str, bytes]:
    name = rng.choice([*IMAGES, "cover.jpg", "cover.png", "truncated", "huge-png", "huge-jpeg", "empty", "zip"])
    if name == "truncated":
        return name, media["cover.jpg"][: rng.randrange(1, len(media["cover.jpg"]))]
    if name == "huge-png":
        size = rng.choice([(0, 0), (0x7FFFFFFF, 1), (60_000, 60_000), (7072, 7072)])
        return name, _patch(media["cover.png"], 16, struct.pack(">II", *size))
    if name == "huge-jpeg":
        sof = media["cover.jpg"].find(b"\xff\xc0")
        size = rng.choice([(0, 0), (0xFFFF, 0xFFFF), (7000, 7000)])
        return name, _patch(media["cover.jpg"], sof + 5, struct.pack(">HH", *size))
    if name == "empty":
        return name, b""
    if name == "zip":
        return name, _zip_of("cover.jpg", media["cover.jpg"])
    return name, media[name]


def hostile_id3_tags(rng, media):
    version = rng.choice([3, 4])
    frames = b"".join(_text_frame(rng, version) for _ in range(rng.randint(1, 6)))
    if rng.random() < 0.2:
        frames += _id3_frame(b"TXXX", b"\x00a\x00b", version=version) * rng.choice([2000, 20_000])
    if rng.random() < 0.3:
        frames += _apic_frame(rng, media, version)
    flags = rng.choice([0, 0, 0x80, 0x40, 0x10, 0xFF])  # unsynchronised, extended header, footer, nonsense
    header = b"ID3" + bytes([version, 0, flags]) + _syncsafe(len(frames))
    return f"hostile ID3v2.{version} tag ({len(frames)} bytes, flags {flags:#x})", header + frames + _mp3_audio(media)


def hostile_artwork(rng, media):
    version = rng.choice([3, 4])
    frames = _id3_frame(b"TIT2", b"\x03Cover test", version=version)
    frames += b"".join(_apic_frame(rng, media, version) for _ in range(rng.choice([1, 1, 2, 40])))
    header = b"ID3" + bytes([version, 0, 0]) + _syncsafe(len(frames))
    if rng.random() < 0.5:
        return "hostile APIC artwork in an MP3", header + frames + _mp3_audio(media)
    return "hostile PICTURE block in a FLAC", _flac_with_block(media["good.flac"], 6, _flac_picture(rng, media))


def _flac_picture(rng, media: Media) -> bytes:
    _, image = _hostile_image(rng, media)
    mime = rng.choice([b"image/png", b"image/jpeg", b"text/html"])
    mime_length = rng.choice([len(mime), len(mime), 0xFFFFFFFF])
    data_length = rng.choice([len(image), len(image), len(image) + 100_000, 0xFFFFFFFF])
    width_height = rng.choice([(64, 64), (0, 0), (0xFFFFFFFF, 0xFFFFFFFF)])
    return (
        struct.pack(">II", 3, mime_length) + mime + struct.pack(">I", 0)
        + struct.pack(">IIII", *width_height, 24, 0) + struct.pack(">I", data_length) + image
    )  # fmt: skip


def hostile_vorbis_comments(rng, media):
    vendor = b"fuzz"
    comments = [rng.choice(_HOSTILE_TEXT).encode("utf-8", "surrogatepass") for _ in range(rng.randint(1, 5))]
    comments = [b"TITLE=" + c if rng.random() < 0.8 else c for c in comments]  # some without "="
    comments.append(b"METADATA_BLOCK_PICTURE=" + rng.choice([b"!!!not base64", b"AAAA" * 10, b""]))
    count = rng.choice([len(comments), len(comments), 0xFFFFFFFF, 0])
    body = struct.pack("<I", rng.choice([len(vendor), 0xFFFFFFFF])) + vendor + struct.pack("<I", count)
    body += b"".join(struct.pack("<I", len(c)) + c for c in comments)
    return "hostile Vorbis comments in a FLAC", _flac_with_block(media["good.flac"], 4, body)


def _flac_with_block(flac: bytes, block_type: int, body: bytes) -> bytes:
    """The FLAC file with its blocks of `block_type` replaced by one holding `body`."""
    blocks, pos = [], 4
    while True:
        header = flac[pos]
        length = int.from_bytes(flac[pos + 1 : pos + 4], "big")
        if header & 0x7F != block_type:
            blocks.append((header & 0x7F, flac[pos + 4 : pos + 4 + length]))
        pos += 4 + length
        if header & 0x80:
            break
    blocks.insert(1, (block_type, body[: (1 << 24) - 1]))
    out = b"fLaC"
    for index, (kind, block) in enumerate(blocks):
        last = 0x80 if index == len(blocks) - 1 else 0
        out += bytes([last | kind]) + len(block).to_bytes(3, "big") + block
    return out + flac[pos:]


# --- archives and polyglots -------------------------------------------------------------------


def _zip_of(name: str, data: bytes, *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def archives_and_polyglots(rng, media):
    name, audio = _audio(rng, media)
    zipped = _zip_of(name, audio, compression=rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    kind = rng.choice(["zip", "audio+zip", "zip+audio", "jpeg+audio", "html+audio", "pdf+audio", "png+zip", "gzip",
                       "priv-zip", "riff-zip"])  # fmt: skip
    data = {
        "zip": zipped,
        "audio+zip": audio + zipped,
        "zip+audio": zipped + audio,
        "jpeg+audio": media["cover.jpg"] + audio,
        "html+audio": b"<!DOCTYPE html><html><body>" + audio,
        "pdf+audio": b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + audio,
        "png+zip": media["cover.png"] + zipped,
        "gzip": gzip.compress(audio, mtime=0),
        "priv-zip": _mp3_with_priv(media, zipped),
        "riff-zip": media["good.wav"] + zipped,
    }[kind]
    return f"{kind} made of {name}", data


def _mp3_with_priv(media: Media, payload: bytes) -> bytes:
    frames = _id3_frame(b"PRIV", b"owner\x00" + payload, version=3)
    return b"ID3\x03\x00\x00" + _syncsafe(len(frames)) + frames + _mp3_audio(media)


def other_fixtures(rng, media):
    name = rng.choice([*OTHER, *IMAGES])
    data = media[name]
    if rng.random() < 0.5:
        return bit_flips(random.Random(rng.random()), {**media, **dict.fromkeys(GOOD_AUDIO, data)})
    return f"fixture {name} as it is", data


MUTATIONS: list[Mutation] = [
    truncate,
    bit_flips,
    overwritten_run,
    swapped_headers,
    absurd_sizes,
    absurd_durations,
    hostile_id3_tags,
    hostile_vorbis_comments,
    hostile_artwork,
    archives_and_polyglots,
    other_fixtures,
]

_HOSTILE_NAMES = ["../../etc/passwd", "..\\..\\boot.ini", "a" * 900 + ".mp3", "evil\u202egpj.mp3", "CON", "nul.mp3",
                  "<img src=x onerror=alert(1)>.mp3", "track\x00.mp3", " .mp3", "名前.flac"]  # fmt: skip


def _upload_name(rng: random.Random, number: int) -> str:
    if rng.random() < 0.1:
        return rng.choice(_HOSTILE_NAMES)
    return f"case-{number}.{rng.choice(['mp3', 'flac', 'wav', 'm4a', 'ogg', 'jpg', 'zip', 'bin'])}"


def corpus(*, seed: int, count: int, media: Media | None = None) -> list[FuzzCase]:
    """`count` cases, every mutation in turn, each drawing from one random stream seeded by `seed`."""
    media = media or load_media()
    rng = random.Random(seed)
    cases = []
    for number in range(count):
        mutation = MUTATIONS[number % len(MUTATIONS)]
        what, data = mutation(rng, media)
        cases.append(
            FuzzCase(
                number=number, mutation=f"{mutation.__name__}: {what}", upload_name=_upload_name(rng, number), data=data
            )
        )
    return cases
