"""Building the distribution copy of a public track: tags first, signature last.

The original upload is only ever read. The copy is made in a temporary folder:
the XMP packet goes into the format's standard place (tracks.embedding), then
c2pa signs the result, then the finished file is read back with the same
readers a crawler would use (the audio parser, the XMP reader, the C2PA
reader) and must say exactly the answer it was built for before it is stored
under a generated name.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.urls import reverse

from public import provenance
from public.answers import Signals, absolute
from public.xmp import data_mining_in, packet_for
from tracks import embedding, metadata
from tracks.models import Track

_CHUNK = 1024 * 1024


class CopyError(Exception):
    """A copy that could not be built, or did not say what it should; the reason is kept on the row."""


@dataclass(frozen=True)
class Support:
    """What the track's format can carry inside the file."""

    format_key: str
    label: str
    xmp_place: str | None
    c2pa: bool

    @property
    def any(self) -> bool:
        return bool(self.xmp_place) or self.c2pa


@dataclass(frozen=True)
class BuiltCopy:
    name: str
    sha256: str
    size_bytes: int
    source_sha256: str
    embedded_granted: bool
    has_xmp: bool
    has_c2pa: bool
    verified: dict = field(default_factory=dict)


def support_for(track: Track) -> Support:
    key = embedding.format_key_for_container(track.container, track.codec)
    fmt = metadata.FORMATS.get(key)
    return Support(
        format_key=key,
        label=fmt.label if fmt else (track.container or "unknown"),
        xmp_place=embedding.xmp_place(key),
        c2pa=provenance.supports(key),
    )


def _copy_original(track: Track, target: Path) -> str:
    """Copy the stored original into `target`, returning the sha256 of what was read."""
    digest = hashlib.sha256()
    with default_storage.open(track.audio_file.name or "", "rb") as source, target.open("wb") as out:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, *, support: Support, signals: Signals, packet: bytes | None) -> dict:
    """Read the finished copy as a crawler would; raise CopyError unless it says the intended answer."""
    with path.open("rb") as stream:
        try:
            info = metadata.probe(stream)
        except metadata.MetadataError as exc:
            raise CopyError(f"The copy no longer reads as audio: {exc.reason}") from exc
    if info.format.key != support.format_key:
        raise CopyError(f"The copy reads as {info.format.label}, not {support.label}.")
    verified: dict = {"format": support.label, "duration_seconds": info.duration_seconds}
    if support.xmp_place:
        with path.open("rb") as stream:
            found = embedding.read_xmp(stream, format_key=support.format_key)
        if found != packet or data_mining_in(found) != signals.data_mining_uri:
            raise CopyError("The XMP packet read back from the copy is not the one written.")
        verified["xmp"] = {"place": support.xmp_place, "data_mining": data_mining_in(found)}
    if support.c2pa:
        summary = provenance.read(path, format_key=support.format_key)
        expected = {
            a["label"]: {k: v["use"] for k, v in a["data"]["entries"].items()} for a in signals.c2pa_assertions()
        }
        if summary is None or summary.training_mining != expected:
            raise CopyError("The C2PA manifest read back from the copy does not carry the intended answer.")
        verified["c2pa"] = summary.as_dict()
    return verified


def build(track: Track, signals: Signals) -> BuiltCopy:
    """Make and store a copy of the track's audio carrying `signals`; the stored original is untouched."""
    support = support_for(track)
    if not support.any:
        raise CopyError(f"{support.label} files have no standard place for these signals.")
    extension = (track.audio_file.name or "").rpartition(".")[2] or metadata.FORMATS[support.format_key].extension
    page = absolute(reverse("public:track", kwargs={"uuid": track.uuid}))
    packet = packet_for(signals, web_statement=page) if support.xmp_place else None
    with tempfile.TemporaryDirectory(prefix="copy-", dir=settings.FILE_UPLOAD_TEMP_DIR) as folder:
        work = Path(folder) / f"work.{extension}"
        source_sha256 = _copy_original(track, work)
        if source_sha256 != track.sha256:
            raise CopyError("The stored original does not match the upload's checksum.")
        if packet is not None:
            try:
                embedding.write_xmp(work, format_key=support.format_key, packet=packet)
            except embedding.EmbeddingError as exc:
                raise CopyError(exc.reason) from exc
        final = work
        if support.c2pa:
            final = Path(folder) / f"signed.{extension}"
            provenance.sign(
                work,
                final,
                format_key=support.format_key,
                title=track.display_title,
                assertions=signals.c2pa_assertions(),
            )
        verified = _verify(final, support=support, signals=signals, packet=packet)
        sha256 = _sha256_of(final)
        size = final.stat().st_size
        with final.open("rb") as stream:
            name = default_storage.save(f"public/copies/{uuid.uuid4().hex}.{extension}", File(stream))
    return BuiltCopy(
        name=name,
        sha256=sha256,
        size_bytes=size,
        source_sha256=source_sha256,
        embedded_granted=signals.answer.granted,
        has_xmp=packet is not None,
        has_c2pa=support.c2pa,
        verified=verified,
    )
