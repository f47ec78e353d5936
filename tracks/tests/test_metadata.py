from __future__ import annotations

import io
import os
import random
import struct
from pathlib import Path

import pytest

from tracks import metadata
from tracks.tests.conftest import FIXTURES, fixture_bytes

EXPECTED = {
    # name: (format key, codec, sample rate, tags present, picture mime)
    "good.mp3": ("mp3", "MP3", 22050, True, "image/jpeg"),
    "good.flac": ("flac", "FLAC", 22050, True, "image/png"),
    "good.wav": ("wav", "PCM 16-bit", 8000, False, None),
    "good.aiff": ("aiff", "PCM 16-bit", 8000, False, None),
    "good.ogg": ("vorbis", "Vorbis", 22050, True, "image/webp"),
    "good.opus": ("opus", "Opus", None, True, "image/webp"),
    "good.m4a": ("m4a", "AAC", 22050, True, "image/jpeg"),
}


def read(name: str, **limits) -> metadata.AudioMetadata:
    with open(FIXTURES / name, "rb") as fh:
        return metadata.read(fh, **limits)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_allowed_format_is_identified_from_its_content(name):
    key, codec, sample_rate, has_tags, picture_mime = EXPECTED[name]

    result = read(name, min_duration=1, max_duration=60)

    assert result.info.format.key == key
    assert result.info.codec == codec
    assert result.info.sample_rate == sample_rate
    assert result.info.channels in (1, 2)
    assert 1.4 < result.info.duration_seconds < 1.7
    assert result.info.bitrate > 0
    assert result.info.size_bytes == (FIXTURES / name).stat().st_size
    if has_tags:
        assert (result.tags.title, result.tags.artist, result.tags.album) == (
            "Fixture Tone",
            "Ada Artist",
            "Test Sessions",
        )
        assert result.tags.year == 2024
    else:
        assert result.tags == metadata.Tags()
    if picture_mime:
        assert result.picture.mime_type == picture_mime
        assert len(result.picture.data) > 50
    else:
        assert result.picture is None


@pytest.mark.parametrize("name", ["good.mp3", "good.flac", "good.ogg"])
def test_isrc_tag_is_read_in_its_one_normalised_spelling(name):
    # good.mp3 has "GB-AYE-24-00001", the others "GBAYE2400001": one code.
    assert read(name).tags.isrc == "GBAYE2400001"


def test_the_file_name_plays_no_part(tmp_path):
    renamed = tmp_path / "definitely-a-picture.jpg"
    renamed.write_bytes(fixture_bytes("good.ogg"))
    with open(renamed, "rb") as fh:
        assert metadata.probe(fh).format.key == "vorbis"


BAD = [
    ("empty.mp3", metadata.EmptyFileError, "empty", "The file is empty (0 bytes)."),
    ("text.mp3", metadata.UnsupportedFormatError, "unsupported_format", "This is a text file, not audio."),
    ("page.mp3", metadata.UnsupportedFormatError, "unsupported_format", "This is a web page (HTML), not audio."),
    ("photo.mp3", metadata.UnsupportedFormatError, "unsupported_format", "This is a JPEG image, not audio."),
    ("cover.png", metadata.UnsupportedFormatError, "unsupported_format", "This is a PNG image, not audio."),
    ("cover.webp", metadata.UnsupportedFormatError, "unsupported_format", "This is a WebP image, not audio."),
    ("artwork.svg", metadata.UnsupportedFormatError, "unsupported_format", "This is an XML or SVG document"),
    ("truncated.flac", metadata.TruncatedFileError, "truncated", "The FLAC file was cut short"),
    ("truncated.m4a", metadata.TruncatedFileError, "truncated", "The M4A file was cut short"),
    ("noise-id3.mp3", metadata.CorruptFileError, "corrupt", "no valid MP3 audio frames follow its header"),
    ("noise-flac.flac", metadata.TruncatedFileError, "truncated", "The FLAC file ends inside its metadata"),
]


@pytest.mark.parametrize(("name", "error", "code", "reason"), BAD)
def test_bad_files_raise_our_own_error_with_a_reason(name, error, code, reason):
    with pytest.raises(error) as caught:
        read(name)
    assert caught.value.code == code
    assert reason in caught.value.reason
    assert isinstance(caught.value, metadata.MetadataError)


def test_unsupported_format_message_lists_what_is_allowed():
    with pytest.raises(metadata.UnsupportedFormatError) as caught:
        read("text.mp3")
    assert caught.value.reason.endswith("Allowed formats: MP3, FLAC, WAV, AIFF, Ogg Vorbis, Opus or M4A (AAC).")


def test_too_short_and_too_long_are_measured_against_the_limits():
    with pytest.raises(metadata.DurationError) as short:
        read("short.mp3", min_duration=1)
    assert short.value.code == "too_short"
    assert short.value.reason == "The recording is 0.5 s long; the shortest allowed is 1.0 s."

    with pytest.raises(metadata.DurationError) as long:
        read("good.flac", max_duration=1)
    assert long.value.code == "too_long"


# Formats whose container records how long it is: a cut anywhere shows.
SELF_DESCRIBING = ["good.flac", "good.m4a", "good.wav", "good.aiff"]


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("name", SELF_DESCRIBING)
def test_a_cut_anywhere_in_a_self_describing_format_is_reported(name, fraction):
    data = fixture_bytes(name)
    with pytest.raises(metadata.MetadataError):
        metadata.read(io.BytesIO(data[: int(len(data) * fraction)]))


def _read_or_metadata_error(data: bytes) -> str:
    """'ok' or the error code; any exception other than MetadataError fails the test."""
    try:
        metadata.read(io.BytesIO(data))
    except metadata.MetadataError as exc:
        assert exc.reason
        return exc.code
    return "ok"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_cut_of_every_format_ends_in_a_result_or_our_error(name):
    # MP3 and Ogg are streams: a cut-off copy is a shorter, playable file. What
    # matters is that no cut makes a parser exception escape.
    data = fixture_bytes(name)
    outcomes = {_read_or_metadata_error(data[:cut]) for cut in range(0, len(data), max(1, len(data) // 200))}
    assert outcomes - {"ok"}, "at least the very short cuts must be refused"


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_noise_behind_each_formats_header_ends_in_a_result_or_our_error(name, seed):
    data = fixture_bytes(name)
    rng = random.Random(f"{name}-{seed}")
    keep = rng.choice([4, 12, 32, 64, 200])
    noisy = data[:keep] + bytes(rng.getrandbits(8) for _ in range(len(data) - keep))
    assert _read_or_metadata_error(noisy) in {
        "ok",
        "corrupt",
        "truncated",
        "unsupported_format",
        "empty",
        "bad_duration",
    }


def test_flac_cut_exactly_at_a_frame_boundary_is_caught():
    data = fixture_bytes("good.flac")
    # Find the start of the last frame (a valid header) and cut just before it.
    last = max(i for i in range(len(data) - 16) if metadata._flac_frame_header(data, i))
    with pytest.raises(metadata.TruncatedFileError):
        metadata.read(io.BytesIO(data[:last]))


def test_a_forged_huge_id3_size_is_refused_before_anything_is_allocated():
    forged = b"ID3\x03\x00\x00" + bytes([0x7F, 0x7F, 0x7F, 0x7F]) + b"\x00" * 100
    with pytest.raises(metadata.CorruptFileError, match="ID3 tag is unreasonably large"):
        metadata.read(io.BytesIO(forged))


def test_ogg_with_another_codec_is_refused():
    # An Ogg page whose first packet is a Speex header.
    page = b"OggS\x00\x02" + bytes(20) + b"\x01\x50" + b"Speex   " + bytes(72)
    with pytest.raises(metadata.UnsupportedFormatError, match="Ogg file holds a codec"):
        metadata.read(io.BytesIO(page))


def test_compressed_wav_is_refused():
    wav = bytearray(fixture_bytes("good.wav"))
    fmt = wav.index(b"fmt ") + 8
    wav[fmt : fmt + 2] = struct.pack("<H", 0x55)  # MP3-in-WAV
    with pytest.raises(metadata.UnsupportedFormatError, match="compressed audio"):
        metadata.read(io.BytesIO(bytes(wav)))


def test_unexpected_parser_exceptions_become_corrupt_file_errors(monkeypatch):
    def explode(*args, **kwargs):
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setitem(metadata._PARSERS, "vorbis", explode)
    with pytest.raises(metadata.CorruptFileError) as caught:
        read("good.ogg")
    assert "could not be read as audio" in caught.value.reason


def _padded_copy(tmp_path, name: str, total_bytes: int):
    """A valid file of about total_bytes: WAV with a longer data chunk (header patched to match)."""
    source = fixture_bytes(name)
    path = tmp_path / f"big-{total_bytes}.wav"
    data_at = source.index(b"data")
    header = bytearray(source[: data_at + 8])
    audio_bytes = total_bytes - len(header)
    struct.pack_into("<I", header, 4, len(header) - 8 + audio_bytes)
    struct.pack_into("<I", header, data_at + 4, audio_bytes)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + audio_bytes)  # sparse: no real disk use
    return path


def test_validation_reads_headers_only_whatever_the_size(tmp_path):
    small = _padded_copy(tmp_path, "good.wav", 1024 * 1024)
    large = _padded_copy(tmp_path, "good.wav", 500 * 1024 * 1024)
    counts = []
    for path in (small, large):
        with open(path, "rb") as fh:
            reader = metadata.CountingReader(fh)
            info = metadata.probe(reader)
            counts.append(reader.bytes_read)
        assert info.format.key == "wav"
    assert counts[1] < 64 * 1024
    assert counts[1] - counts[0] < 4096
    assert os.path.getsize(large) == 500 * 1024 * 1024


def test_an_mp4_video_is_not_accepted_as_a_recording():
    with pytest.raises(metadata.UnsupportedFormatError) as caught:
        read("video.mp4")
    assert caught.value.reason.startswith("This is a video file, not an audio recording.")


def test_ogg_header_packets_beyond_the_tag_limit_are_refused_before_loading(monkeypatch):
    # good.ogg carries a cover in its comment packet, so a few hundred bytes is already too much.
    monkeypatch.setattr(metadata, "MAX_TAG_BYTES", 200)
    with pytest.raises(metadata.CorruptFileError, match="tags are unreasonably large"):
        read("good.ogg")
    with pytest.raises(metadata.CorruptFileError, match="tags are unreasonably large"):
        read("good.opus")


def test_flac_without_a_recorded_length_gets_its_own_reason():
    data = bytearray(fixture_bytes("good.flac"))
    streaminfo = data.index(b"fLaC") + 4 + 4
    # Total samples: the low 36 bits of bytes 10..17 of STREAMINFO.
    packed = int.from_bytes(data[streaminfo + 10 : streaminfo + 18], "big") & ~((1 << 36) - 1)
    data[streaminfo + 10 : streaminfo + 18] = packed.to_bytes(8, "big")
    with pytest.raises(metadata.CorruptFileError) as caught:
        metadata.read(io.BytesIO(bytes(data)))
    assert caught.value.code == "unknown_length"


def test_text_is_recognised_even_when_the_sample_cuts_a_character_in_two():
    text = ("Ü" * 40).encode()  # two bytes each: the 64-byte sample ends mid-character or not at all
    for shift in (0, 1):
        with pytest.raises(metadata.UnsupportedFormatError, match="This is a text file"):
            metadata.read(io.BytesIO(b"x" * shift + text))


# --- Files built to overload the parsers (found by the upload fuzz test) -----------------------
#
# Each was accepted before, after seconds to minutes of parsing in the upload
# request: a few megabytes of tiny tag entries, or UTF-16 text that mutagen
# decodes one code unit at a time.


def _mp3_tagged(frames: bytes, version: int = 3) -> bytes:
    from tracks.tests.fuzz_corpus import _mp3_audio, _syncsafe, load_media

    return b"ID3" + bytes([version, 0, 0]) + _syncsafe(len(frames)) + frames + _mp3_audio(load_media())


def _tagged_with_mutagen(name: str, add_tags) -> bytes:
    """A copy of a fixture whose tags `add_tags(parsed_file)` filled, saved by mutagen itself."""
    import tempfile

    import mutagen

    with tempfile.NamedTemporaryFile(suffix="." + name.rsplit(".", 1)[1]) as copy:
        copy.write(fixture_bytes(name))
        copy.flush()
        parsed = mutagen.File(copy.name)
        add_tags(parsed)
        parsed.save()
        return Path(copy.name).read_bytes()


def _many_id3_frames(parsed):
    from mutagen.id3 import TXXX

    if parsed.tags is None:
        parsed.add_tags()
    for n in range(metadata.MAX_TAG_ENTRIES + 1):
        parsed.tags.add(TXXX(encoding=3, desc=f"k{n}", text=["v"]))


def _many_vorbis_comments(parsed):
    parsed.tags["comment"] = [f"c{n}" for n in range(metadata.MAX_TAG_ENTRIES + 1)]


def _many_mp4_items(parsed):
    for n in range(metadata.MAX_TAG_ENTRIES + 1):
        parsed.tags[f"----:org.example:k{n}"] = [b"v"]


@pytest.mark.parametrize(
    ("name", "add_tags"),
    [
        ("good.mp3", _many_id3_frames),
        ("good.wav", _many_id3_frames),  # an ID3 chunk after the audio
        ("good.aiff", _many_id3_frames),
        ("good.flac", _many_vorbis_comments),
        ("good.ogg", _many_vorbis_comments),
        ("good.opus", _many_vorbis_comments),
        ("good.m4a", _many_mp4_items),
    ],
)
def test_tags_with_more_entries_than_any_recording_are_refused_before_parsing(name, add_tags):
    data = _tagged_with_mutagen(name, add_tags)

    with pytest.raises(metadata.CorruptFileError) as refused:
        metadata.read(io.BytesIO(data))
    assert refused.value.code == "too_many_tags"
    assert "more than 5,000 tag entries" in refused.value.reason


@pytest.mark.parametrize("version", [3, 4])
def test_thousands_of_tiny_id3_frames_are_refused_whatever_the_size_encoding(version):
    from tracks.tests.fuzz_corpus import _id3_frame

    # v2.4 tags that write plain (not syncsafe) sizes are read either way by mutagen.
    frame = _id3_frame(b"TXXX", b"\x00a\x00b", version=3)
    with pytest.raises(metadata.CorruptFileError, match="more than 5,000 tag entries"):
        metadata.read(io.BytesIO(_mp3_tagged(frame * 20_000, version=version)))


@pytest.mark.parametrize(
    ("frame_id", "body"),
    [
        (b"TIT2", b"\x01" + ("A" * 40_000).encode("utf-16")),  # UTF-16 text, decoded unit by unit
        (b"APIC", b"\x01image/png\x00\x03" + ("A" * 40_000).encode("utf-16")),  # description never ends
        (b"TDRC", b"\x00" + b"A" * 20_000),  # every non-digit starts another timestamp
        (b"TPE1", b"\x00" + b"\x00" * 60_000),  # every NUL starts another artist
    ],
)
def test_id3_text_no_recording_needs_is_refused_before_parsing(frame_id, body):
    from tracks.tests.fuzz_corpus import _id3_frame

    data = _mp3_tagged(_id3_frame(frame_id, body, version=3))
    with pytest.raises(metadata.CorruptFileError) as refused:
        metadata.read(io.BytesIO(data))
    assert refused.value.code == "tags_too_large"


def test_real_tags_with_long_lyrics_and_a_utf16_title_are_still_read():
    from mutagen.id3 import APIC, TIT2, USLT

    def add(parsed):
        parsed.tags.add(TIT2(encoding=1, text=["Ünïcödé title"]))
        # Frames the portal does not read are not parsed, whatever their size.
        parsed.tags.add(USLT(encoding=1, lang="eng", desc="", text="la " * 50_000))
        cover = fixture_bytes("cover.png")
        parsed.tags.setall("APIC", [APIC(encoding=1, mime="image/png", type=3, desc="Front cover", data=cover)])

    result = metadata.read(io.BytesIO(_tagged_with_mutagen("good.mp3", add)))
    assert result.tags.title == "Ünïcödé title"
    assert result.picture.data == fixture_bytes("cover.png")


@pytest.mark.parametrize(("name", "order"), [("good.wav", "<"), ("good.aiff", ">")])
def test_a_riff_or_iff_file_of_countless_empty_chunks_is_refused(name, order):
    data = bytearray(fixture_bytes(name) + b"junk\x00\x00\x00\x00" * (metadata.MAX_TAG_ENTRIES + 1))
    data[4:8] = struct.pack(f"{order}I", len(data) - 8)

    with pytest.raises(metadata.CorruptFileError) as refused:
        metadata.read(io.BytesIO(bytes(data)))
    assert refused.value.code == "too_many_tags"
