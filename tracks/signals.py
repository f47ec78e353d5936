from django.db.models.signals import post_delete
from django.dispatch import receiver

from tracks.models import Track
from tracks.services import delete_files_on_commit


@receiver(post_delete, sender=Track, dispatch_uid="tracks.delete_stored_files")
def delete_stored_files(sender, instance: Track, **kwargs) -> None:
    # A receiver rather than code in delete_track, so that tracks removed by a
    # cascade (an artist deleting their account) or by the admin take their
    # files with them too. Deleted only after commit: a rollback keeps both.
    delete_files_on_commit(instance.audio_file.name, instance.artwork.name, instance.artwork_thumbnail.name)
