"""Hooks that apps above tracks register into, so tracks never imports them.

An upload and a deletion each run their listeners inside their own
transaction: consent registers one (in its AppConfig.ready()) that records the
track in the artist's audit chain and applies the consent chosen on the upload
form, or withdraws and logs a deleted track's grants first. What a listener
writes commits or rolls back with the track rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accounts.models import User
    from platformkit.request_meta import RequestMeta
    from tracks.models import Track


@dataclass(frozen=True)
class TracksUploaded:
    """The tracks one upload action created, and what the form asked for them."""

    owner: User
    tracks: Sequence[Track]
    consent_choices: Mapping[str, bool] | None
    request_meta: RequestMeta | None


@dataclass(frozen=True)
class TrackDeleting:
    """A track about to be deleted, still in the database."""

    track: Track
    actor: User | None
    request_meta: RequestMeta | None
    from_admin: bool


UploadListener = Callable[[TracksUploaded], None]
DeletionListener = Callable[[TrackDeleting], None]
# -> (value, label) pairs for the upload form's "allow from the start" boxes.
UploadChoices = Callable[[], list[tuple[str, str]]]

_upload_listeners: dict[str, UploadListener] = {}
_deletion_listeners: dict[str, DeletionListener] = {}
_upload_choices: dict[str, UploadChoices] = {}


def register_track_listeners(
    key: str, *, uploaded: UploadListener, deleting: DeletionListener, upload_choices: UploadChoices
) -> None:
    """Register under `key`; registering the same key again replaces it (ready() may run twice)."""
    _upload_listeners[key] = uploaded
    _deletion_listeners[key] = deleting
    _upload_choices[key] = upload_choices


def tracks_uploaded(event: TracksUploaded) -> None:
    """Called by tracks.services inside the upload's transaction. A listener's error aborts the upload."""
    for listener in list(_upload_listeners.values()):
        listener(event)


def track_deleting(event: TrackDeleting) -> None:
    """Called by tracks.services inside the deletion's transaction, before the row goes."""
    for listener in list(_deletion_listeners.values()):
        listener(event)


def upload_choices() -> list[tuple[str, str]]:
    return [choice for provider in list(_upload_choices.values()) for choice in provider()]
