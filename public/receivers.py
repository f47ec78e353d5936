"""Stored copies go with their rows, after the deletion commits (a rollback keeps both)."""

from __future__ import annotations

from django.db.models.signals import post_delete

from public.models import DistributionCopy
from tracks.services import delete_files_on_commit


def delete_copy_file(sender, instance: DistributionCopy, **kwargs) -> None:
    # A receiver, so a copy removed by a cascade (a track or an account
    # deleted anywhere) takes its file too.
    delete_files_on_commit(instance.file)


def connect() -> None:
    post_delete.connect(delete_copy_file, sender=DistributionCopy, dispatch_uid="public.delete_copy_file")
