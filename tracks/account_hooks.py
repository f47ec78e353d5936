"""tracks' part in "download my data" (registered in TracksConfig.ready).

Deleting an account's tracks is consent's step (each deletion is audited and
every grant withdrawn first); tracks only says what it holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from accounts.hooks import ExportSection, export_sections
from tracks.models import Track

_FIELDS = (
    "uuid",
    "title",
    "artist_name",
    "album",
    "year",
    "isrc",
    "original_filename",
    "container",
    "codec",
    "duration_seconds",
    "bitrate",
    "sample_rate",
    "channels",
    "size_bytes",
    "sha256",
    "status",
    "failure_reason",
    "created_at",
    "updated_at",
    "processed_at",
)


def tracks(user) -> Iterator[dict[str, Any]]:
    rows = Track.objects.filter(owner=user).order_by("created_at", "pk").values(*_FIELDS, "artwork")
    for row in rows.iterator(chunk_size=2000):
        # The stored name is ours, not the artist's; whether there is artwork is theirs.
        row["has_artwork"] = bool(row.pop("artwork"))
        yield row


def register() -> None:
    export_sections.register(
        ExportSection(
            "tracks.json", tracks, order=20, description="The details of each of your tracks (not the audio itself)."
        )
    )
