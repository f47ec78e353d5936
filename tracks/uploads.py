"""An upload handler that hashes and size-checks files while they stream in."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler, TemporaryFileUploadHandler


class HashedUpload(TemporaryUploadedFile):
    """A spooled upload with what the handler learned while it streamed in."""

    over_limit: bool = False
    sha256: str | None = None


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Spool each file to a temporary file on disk, computing its SHA-256 on the way.

    Memory stays flat whatever the size: chunks go straight to disk. A file
    that passes the size limit stops being written (the rest of the request is
    still read, so the browser gets an answer rather than a reset connection)
    and comes out marked `over_limit`, so the view can say so by name.
    """

    def __init__(self, request=None, *, max_bytes: int | None = None):
        super().__init__(request)
        self.max_bytes = max_bytes if max_bytes is not None else settings.TRACKS_MAX_UPLOAD_BYTES

    file: HashedUpload

    def new_file(self, *args, **kwargs):
        # TemporaryFileUploadHandler.new_file with our subclass of its file.
        FileUploadHandler.new_file(self, *args, **kwargs)
        self.file = HashedUpload(self.file_name or "", self.content_type, 0, self.charset, self.content_type_extra)
        self._sha256 = hashlib.sha256()
        self._received = 0
        self._over_limit = False

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._over_limit:
            return None
        if self._received > self.max_bytes:
            self._over_limit = True
            # Give the disk space back now rather than when the request ends.
            self.file.seek(0)
            self.file.truncate()
            return None
        self._sha256.update(raw_data)
        self.file.write(raw_data)
        return None

    def file_complete(self, file_size):
        self.file.over_limit = self._over_limit
        self.file.sha256 = None if self._over_limit else self._sha256.hexdigest()
        return super().file_complete(file_size)
