"""Serving stored files to the one person allowed to have them, with HTTP Range support.

On object storage (django-storages' S3Storage) a range is fetched as a ranged
GetObject, so a player seeking into a long recording costs the bytes it asks
for, not the whole object (the library's file object downloads everything on
first read). The bytes still pass through this view rather than through a
redirect to a presigned URL: every request is authorised here, the page's
Content-Security-Policy stays same-origin, the object store need not be
reachable from browsers, and no URL exists that would let anyone else fetch
the file while it is valid. docs/DEPLOY.md says what that costs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

from django.core.files.storage import default_storage
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.http import content_disposition_header

_CHUNK = 64 * 1024
_BYTE_RANGE = re.compile(r"^bytes=\s*(\d*)\s*-\s*(\d*)\s*$")


class RangeNotSatisfiable(Exception):
    pass


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte of a single `bytes=` range, or None to send everything.

    Several ranges at once are answered with the whole file, which HTTP allows
    and which players never need; a range outside the file is refused.
    """
    if not header or not header.strip().lower().startswith("bytes=") or "," in header:
        return None
    match = _BYTE_RANGE.match(header.strip().lower())
    if not match:
        raise RangeNotSatisfiable
    first, last = match.groups()
    if first == "" and last == "":
        raise RangeNotSatisfiable
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if start >= size or (last != "" and int(last) < start):
        raise RangeNotSatisfiable
    return start, end


def _s3_storage_class():
    # Only loaded where S3 storage is configured; local storage never imports boto3.
    module = sys.modules.get("storages.backends.s3")
    return module.S3Storage if module else None


def _read_s3_span(storage, name: str, start: int, length: int) -> Iterator[bytes]:
    from storages.utils import clean_name, safe_join

    key = safe_join(storage.location, clean_name(name))
    body = storage.bucket.Object(key).get(Range=f"bytes={start}-{start + length - 1}")["Body"]
    try:
        yield from body.iter_chunks(_CHUNK)
    finally:
        body.close()


def _read_span(name: str, start: int, length: int) -> Iterator[bytes]:
    if length <= 0:
        return
    s3_storage = _s3_storage_class()
    if s3_storage is not None and isinstance(default_storage, s3_storage):
        yield from _read_s3_span(default_storage, name, start, length)
        return
    with default_storage.open(name, "rb") as stored:
        stored.seek(start)
        remaining = length
        while remaining > 0:
            chunk = stored.read(min(_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def serve_stored_file(
    request: HttpRequest, *, name: str, content_type: str, etag: str, download_name: str
) -> HttpResponseBase:
    if not name:
        raise Http404("No such file.")
    try:
        size = default_storage.size(name)
    except (FileNotFoundError, OSError):
        raise Http404("The file is missing from storage.") from None

    quoted_etag = f'"{etag}"'
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if if_range and if_range.strip() != quoted_etag:
        range_header = None  # the client's partial copy is of another version
    try:
        span = parse_range(range_header, size)
    except RangeNotSatisfiable:
        refusal = HttpResponse(status=416)
        refusal["Content-Range"] = f"bytes */{size}"
        refusal["Accept-Ranges"] = "bytes"
        return refusal

    response: HttpResponseBase
    if request.headers.get("If-None-Match", "").strip() == quoted_etag and span is None:
        response = HttpResponse(status=304)
    else:
        start, end = span if span else (0, size - 1)
        length = end - start + 1 if size else 0
        response = StreamingHttpResponse(
            _read_span(name, start, length) if request.method != "HEAD" else iter(()),
            status=206 if span else 200,
            content_type=content_type,
        )
        response["Content-Length"] = str(length)
        if span:
            response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Disposition"] = content_disposition_header(False, download_name) or "attachment"
    response["Accept-Ranges"] = "bytes"
    response["ETag"] = quoted_etag
    # Private: only the owner may fetch it, so no shared cache may keep it.
    response["Cache-Control"] = "private, max-age=3600"
    return response
