"""XMP in the standard place of each format, written into copies and read back."""

from __future__ import annotations

import shutil
import struct

import pytest

from tracks import embedding, metadata
from tracks.tests.conftest import FIXTURES

PACKET = b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
OTHER = PACKET.replace(b"xmpmeta", b"xmpmeta data='2'", 1)


@pytest.mark.parametrize(("name", "key"), [("good.mp3", "mp3"), ("good.wav", "wav"), ("good.m4a", "m4a")])
def test_xmp_is_written_in_the_formats_place_replaced_not_duplicated_and_the_audio_still_reads(tmp_path, name, key):
    copy = tmp_path / name
    shutil.copy(FIXTURES / name, copy)
    before = metadata.probe(copy.open("rb"))

    embedding.write_xmp(copy, format_key=key, packet=PACKET)
    embedding.write_xmp(copy, format_key=key, packet=OTHER)

    with copy.open("rb") as stream:
        assert embedding.read_xmp(stream, format_key=key) == OTHER
    after = metadata.probe(copy.open("rb"))
    assert after.format == before.format and after.duration_seconds == pytest.approx(before.duration_seconds, abs=0.05)
    data = copy.read_bytes()
    assert data.count(b"W5M0MpCehiHzreSzNTczkc9d") == 1
    assert (FIXTURES / name).read_bytes() != data  # the fixture itself is untouched


def test_mp3_xmp_is_an_id3_priv_frame_owned_by_xmp(tmp_path):
    from mutagen.id3 import ID3

    copy = tmp_path / "good.mp3"
    shutil.copy(FIXTURES / "good.mp3", copy)
    embedding.write_xmp(copy, format_key="mp3", packet=PACKET)
    frames = [f for f in ID3(copy).getall("PRIV") if f.owner == "XMP"]
    assert [bytes(f.data) for f in frames] == [PACKET]


def test_an_m4a_whose_last_box_runs_to_the_end_of_the_file_gets_a_real_size_first(tmp_path):
    copy = tmp_path / "good.m4a"
    data = bytearray((FIXTURES / "good.m4a").read_bytes())
    offset, boxes = 0, []
    while offset < len(data):
        size = struct.unpack(">I", data[offset : offset + 4])[0]
        boxes.append(offset)
        offset += size
    data[boxes[-1] : boxes[-1] + 4] = b"\0\0\0\0"  # "to the end of the file"
    copy.write_bytes(bytes(data))

    embedding.write_xmp(copy, format_key="m4a", packet=PACKET)

    with copy.open("rb") as stream:
        assert embedding.read_xmp(stream, format_key="m4a") == PACKET
    metadata.probe(copy.open("rb"))


@pytest.mark.parametrize(("name", "key"), [("good.flac", "flac"), ("good.ogg", "vorbis"), ("good.aiff", "aiff")])
def test_formats_without_a_standard_place_say_so(tmp_path, name, key):
    assert embedding.xmp_place(key) is None
    with pytest.raises(embedding.EmbeddingError, match="no standard place"):
        embedding.write_xmp(tmp_path / name, format_key=key, packet=PACKET)


def test_a_damaged_file_is_an_embedding_error_not_a_crash(tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\xff\xff\xff\xffWAVEjunk")
    with pytest.raises(embedding.EmbeddingError):
        embedding.write_xmp(broken, format_key="wav", packet=PACKET)


@pytest.mark.parametrize(
    ("container", "codec", "key"),
    [("MPEG audio", "MP3", "mp3"), ("WAVE", "PCM 16-bit", "wav"), ("MP4", "AAC", "m4a"), ("Ogg", "Opus", "opus")],
)
def test_a_stored_tracks_format_is_known_from_its_container(container, codec, key):
    assert embedding.format_key_for_container(container, codec) == key
