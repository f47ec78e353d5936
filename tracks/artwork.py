"""The one place that reads images: a wrapper around Pillow.

Cover art reaches us from artists' uploads and from tags inside audio files,
so it is treated as hostile: only JPEG, PNG and WebP decoders may run, the
pixel count is checked from the header before anything is decoded, the file is
verified and then re-opened (verify() leaves an image unusable), and what we
store is a fresh re-encoding that carries no EXIF, ICC, XMP or comments.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.utils.translation import gettext, gettext_noop
from PIL import Image, ImageOps, UnidentifiedImageError

from tracks.sniff import looks_like_text

ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP")
ALLOWED_FORMATS_TEXT = gettext_noop("JPEG, PNG or WebP")
# Longest edge in pixels of each stored size: the track page shows the display
# image at up to 300 CSS pixels (so 600 covers 2x screens); lists show thumbnails.
SIZES = {"display": 600, "thumbnail": 160}
_JPEG_QUALITY = 85


class ArtworkError(Exception):
    code = "invalid_artwork"

    def __init__(self, reason: str, *, code: str | None = None):
        super().__init__(reason)
        self.reason = reason
        if code:
            self.code = code


class ArtworkTooLargeError(ArtworkError):
    code = "artwork_too_large"


class UnsupportedImageError(ArtworkError):
    code = "artwork_unsupported"


class CorruptImageError(ArtworkError):
    code = "artwork_corrupt"


@dataclass(frozen=True)
class Rendition:
    content: bytes
    width: int
    height: int
    extension: str = "jpg"
    mime_type: str = "image/jpeg"


def make_renditions(source: bytes | BinaryIO) -> dict[str, Rendition]:
    """Check an image and re-encode it into every size in SIZES; raise ArtworkError."""
    data = _read_bounded(source)
    try:
        return _make_renditions(data)
    except ArtworkError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels() from None
    except UnidentifiedImageError:
        raise UnsupportedImageError(
            gettext("%(what)s Artwork must be a %(formats)s image.")
            % {"what": _describe(data), "formats": gettext(ALLOWED_FORMATS_TEXT)}
        ) from None
    except MemoryError:
        raise _too_many_pixels() from None
    except Exception as exc:
        # Decoders raise OSError, SyntaxError, ValueError, struct.error… on
        # damaged input; to the artist they all mean the same thing.
        raise CorruptImageError(gettext("The image is damaged or incomplete and could not be read.")) from exc


def _read_bounded(source: bytes | BinaryIO) -> bytes:
    limit = settings.ARTWORK_MAX_UPLOAD_BYTES
    data = source if isinstance(source, bytes) else source.read(limit + 1)
    if not data:
        raise CorruptImageError(gettext("The image file is empty."), code="artwork_empty")
    if len(data) > limit:
        raise ArtworkTooLargeError(gettext("The image is larger than %(limit)s.") % {"limit": human_size(limit)})
    return data


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{round(size / (1024 * 1024), 1):g} MB"
    if size >= 1024:
        return f"{round(size / 1024, 1):g} KB"
    return f"{size} bytes"


def _too_many_pixels() -> ArtworkError:
    limit = settings.ARTWORK_MAX_PIXELS
    return ArtworkTooLargeError(
        gettext(
            "The image has too many pixels (the limit is %(megapixels)s megapixels); "
            "upload a smaller version, 3000 by 3000 pixels is plenty."
        )
        % {"megapixels": f"{limit / 1_000_000:g}"},
        code="artwork_too_many_pixels",
    )


def _open(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    width, height = image.size
    # open() reads only the header, so this refuses a bomb before decoding it.
    if width * height > settings.ARTWORK_MAX_PIXELS:
        raise _too_many_pixels()
    if width < 1 or height < 1:
        raise CorruptImageError(gettext("The image has no pixels."))
    return image


def _make_renditions(data: bytes) -> dict[str, Rendition]:
    largest = max(SIZES.values())
    with warnings.catch_warnings():
        # Pillow's own bomb check only warns between 1x and 2x its limit.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        _open(data).verify()
        image = _open(data)
        image.seek(0)  # the first frame of an animated WebP or PNG
        # A JPEG decodes straight at 1/2 to 1/8 scale when that still covers the
        # largest rendition: a few kilobytes declaring 7000 x 7000 pixels must
        # not cost seconds and hundreds of megabytes.
        image.draft("RGB", (largest, largest))
        image.load()
    # Down to the largest rendition first, so that no full-size copy is ever made;
    # turned upright afterwards (the EXIF orientation stays with the image).
    image.thumbnail((largest, largest), Image.Resampling.LANCZOS)
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode in ("RGBA", "LA", "P", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
    else:
        flat = image.convert("RGB")
    # A brand-new image carries none of the source's metadata.
    clean = Image.new("RGB", flat.size)
    clean.paste(flat)

    renditions = {}
    for name, edge in SIZES.items():
        sized = clean.copy()
        sized.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        sized.save(buffer, format="JPEG", quality=_JPEG_QUALITY, optimize=True, progressive=True)
        renditions[name] = Rendition(content=buffer.getvalue(), width=sized.width, height=sized.height)
    return renditions


def _describe(data: bytes) -> str:
    head = data[:256].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<?xml", b"<svg")) or b"<svg" in head:
        return gettext("This is an SVG drawing, not a raster image.")
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return gettext("This is a web page (HTML), not an image.")
    if head.startswith(b"gif8"):
        return gettext("GIF images are not accepted.")
    if looks_like_text(data[:256]):
        return gettext("This is a text file, not an image.")
    return gettext("The file is not an image the portal can read.")
