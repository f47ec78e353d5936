from __future__ import annotations

import io
import warnings

import pytest
from PIL import Image

from tracks import artwork
from tracks.tests.conftest import fixture_bytes


def _decode(rendition: artwork.Rendition) -> Image.Image:
    image = Image.open(io.BytesIO(rendition.content))
    image.load()
    return image


@pytest.mark.parametrize(("name", "size"), [("cover.jpg", (64, 64)), ("cover.png", (48, 32)), ("cover.webp", (40, 40))])
def test_each_allowed_format_is_re_encoded_as_jpeg_in_every_size(name, size):
    renditions = artwork.make_renditions(fixture_bytes(name))

    assert set(renditions) == {"display", "thumbnail"}
    for rendition in renditions.values():
        image = _decode(rendition)
        assert image.format == "JPEG"
        assert image.size == size == (rendition.width, rendition.height)


def test_large_images_are_scaled_to_each_size_keeping_the_aspect_ratio():
    buffer = io.BytesIO()
    Image.new("RGB", (2000, 1000), (200, 10, 10)).save(buffer, format="PNG")

    renditions = artwork.make_renditions(buffer.getvalue())

    assert _decode(renditions["display"]).size == (600, 300)
    assert _decode(renditions["thumbnail"]).size == (160, 80)


def test_exif_and_other_metadata_are_stripped():
    source = Image.new("RGB", (50, 50), (0, 128, 0))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x010E] = "Taken at 51.5N 0.1W"  # ImageDescription
    buffer = io.BytesIO()
    source.save(buffer, format="JPEG", exif=exif, comment=b"secret comment", icc_profile=b"\x00" * 128)

    renditions = artwork.make_renditions(buffer.getvalue())

    for rendition in renditions.values():
        assert b"SpyCam" not in rendition.content
        assert b"51.5N" not in rendition.content
        assert b"secret comment" not in rendition.content
        image = _decode(rendition)
        assert not image.getexif()
        assert "icc_profile" not in image.info
        assert "comment" not in image.info


def _jpeg_shown_rotated(width: int, height: int) -> bytes:
    """A JPEG whose EXIF orientation says: rotate 90° clockwise on display."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def test_exif_orientation_is_applied_before_it_is_stripped():
    renditions = artwork.make_renditions(_jpeg_shown_rotated(80, 40))

    assert _decode(renditions["display"]).size == (40, 80)


def test_transparent_png_is_flattened_onto_white():
    buffer = io.BytesIO()
    Image.new("RGBA", (10, 10), (0, 0, 0, 0)).save(buffer, format="PNG")

    display = _decode(artwork.make_renditions(buffer.getvalue())["display"])

    assert display.getpixel((5, 5)) == pytest.approx((255, 255, 255), abs=2)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("artwork.svg", "This is an SVG drawing, not a raster image."),
        ("artwork.html", "This is a web page (HTML), not an image."),
        ("artwork.txt", "This is a text file, not an image."),
        ("good.mp3", "The file is not an image the portal can read."),
    ],
)
def test_non_raster_artwork_is_refused_with_a_reason(name, reason):
    with pytest.raises(artwork.UnsupportedImageError) as caught:
        artwork.make_renditions(fixture_bytes(name))
    assert caught.value.reason == f"{reason} Artwork must be a JPEG, PNG or WebP image."
    assert caught.value.code == "artwork_unsupported"


def test_formats_outside_the_list_are_refused_even_when_pillow_could_read_them():
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buffer, format="GIF")
    with pytest.raises(artwork.UnsupportedImageError, match="GIF images are not accepted"):
        artwork.make_renditions(buffer.getvalue())
    buffer = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buffer, format="BMP")
    with pytest.raises(artwork.UnsupportedImageError):
        artwork.make_renditions(buffer.getvalue())


def test_a_30000_pixel_square_png_is_refused_as_too_many_pixels_before_decoding():
    data = fixture_bytes("bomb.png")
    assert len(data) < 200_000  # tiny on disk, 900 megapixels in memory

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(artwork.ArtworkTooLargeError) as caught:
            artwork.make_renditions(data)
    assert caught.value.code == "artwork_too_many_pixels"
    assert "too many pixels (the limit is 50 megapixels)" in caught.value.reason


def test_the_pixel_limit_comes_from_settings(settings):
    settings.ARTWORK_MAX_PIXELS = 1000
    with pytest.raises(artwork.ArtworkTooLargeError, match=r"limit is 0\.001 megapixels"):
        artwork.make_renditions(fixture_bytes("cover.jpg"))  # 64 x 64 = 4096 pixels


def test_pillows_own_bomb_warning_is_an_error_too(settings, monkeypatch):
    # Between Pillow's limit and twice it, Pillow only warns; we refuse.
    settings.ARTWORK_MAX_PIXELS = 10**9
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)
    with pytest.raises(artwork.ArtworkTooLargeError):
        artwork.make_renditions(fixture_bytes("cover.jpg"))


def test_files_over_the_byte_limit_are_refused_before_decoding(settings):
    settings.ARTWORK_MAX_UPLOAD_BYTES = 100
    with pytest.raises(artwork.ArtworkTooLargeError, match="larger than 100 bytes"):
        artwork.make_renditions(fixture_bytes("cover.jpg"))


def test_truncated_image_is_a_clear_error():
    data = fixture_bytes("cover.jpg")
    with pytest.raises(artwork.CorruptImageError, match="damaged or incomplete"):
        artwork.make_renditions(data[: len(data) // 2])


def test_empty_image_is_a_clear_error():
    with pytest.raises(artwork.CorruptImageError, match="empty"):
        artwork.make_renditions(b"")


def _jpeg_declaring(width: int, height: int) -> bytes:
    """cover.jpg (64 x 64 of data) with a frame header that claims far more pixels."""
    data = fixture_bytes("cover.jpg")
    sof = data.find(b"\xff\xc0")
    return data[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[sof + 9 :]


def test_a_jpeg_is_decoded_at_the_smallest_scale_that_covers_the_display_size(monkeypatch):
    # Found by the upload fuzz test: 248 bytes declaring 7000 x 7000 pixels made
    # the worker decode and copy 49 megapixels several times (seconds, ~600 MB).
    from PIL import ImageFile

    decoded = []
    load = ImageFile.ImageFile.load

    def recording_load(self):
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", recording_load)
    renditions = artwork.make_renditions(_jpeg_declaring(7000, 7000))

    assert max(w * h for w, h in decoded) <= 875 * 875  # 1/8 scale
    assert _decode(renditions["display"]).size == (600, 600)


def test_no_full_size_copy_of_a_large_image_is_made(monkeypatch):
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 2000), (20, 120, 200)).save(buffer, format="PNG")
    copied = []
    copy = Image.Image.copy

    def recording_copy(self):
        copied.append(self.size)
        return copy(self)

    monkeypatch.setattr(Image.Image, "copy", recording_copy)
    renditions = artwork.make_renditions(buffer.getvalue())

    assert copied and max(max(size) for size in copied) <= max(artwork.SIZES.values())
    assert _decode(renditions["display"]).size == (600, 400)


def test_exif_orientation_still_applies_when_the_image_is_scaled_down_first():
    renditions = artwork.make_renditions(_jpeg_shown_rotated(2000, 1000))

    assert _decode(renditions["display"]).size == (300, 600)
    assert _decode(renditions["thumbnail"]).size == (80, 160)
