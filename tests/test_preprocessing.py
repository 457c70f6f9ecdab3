"""preprocessing.prepare_image on real files of every format, and its resize policies."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cifar10_kedro.preprocessing import (
    PAD_FILL,
    ImageError,
    PreparedImage,
    UnreadableImageError,
    UnsupportedImageError,
    prepare_image,
    prepare_many,
)
from tests.image_files import (
    BLUE,
    GREEN,
    RED,
    encoded,
    every_format,
    exif_rotated_jpeg,
    halves,
    two_frame_gif,
)

LIMIT = 50_000_000


def prepare(data: bytes, resize: str = "crop", max_pixels: int = LIMIT):
    return prepare_image(data, resize=resize, max_pixels=max_pixels)


def close(pixel, colour, tolerance=12) -> bool:
    return bool(
        np.all(np.abs(np.asarray(pixel, int) - np.asarray(colour)) <= tolerance)
    )


def test_a_32x32_rgb_image_comes_out_exactly_as_pillow_decodes_it():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    for fmt in ("PNG", "JPEG", "BMP", "TIFF"):
        data = encoded(Image.fromarray(pixels), fmt)
        with Image.open(io.BytesIO(data)) as image:
            expected = np.asarray(image.convert("RGB"))
        result = prepare(data)
        assert result.pixels.dtype == np.uint8 and result.pixels.shape == (32, 32, 3)
        np.testing.assert_array_equal(result.pixels, expected)
        assert (result.width, result.height, result.format) == (32, 32, fmt)


def test_every_format_and_mode_becomes_32x32_rgb():
    files = every_format()
    results = {
        name: prepare(data)
        for name, data in files.items()
        if name not in {"truncated.png", "not_an_image.jpg"}
    }
    for name, result in results.items():
        assert result.pixels.shape == (32, 32, 3), name
        assert result.pixels.dtype == np.uint8, name

    # RGBA: the transparent left half over white, the opaque right half red.
    rgba = results["rgba.png"].pixels
    assert (rgba[:, :16] == 255).all() and close(rgba[:, 20], RED, 0)
    # 16-bit grey 40000 -> 40000 / 257 = 155.6 -> 156 on every channel.
    assert (results["grey16.png"].pixels == 156).all()
    assert results["grey16.png"].mode.startswith("I")
    # 48-bit RGB: each 16-bit sample to 8 bits.
    assert close(results["rgb48.png"].pixels[16, 16], (255, 128, 0), 1)
    # GIF: the first frame (red), not the second (blue); palette decoded.
    assert close(results["anim.gif"].pixels[16, 16], RED, 8)
    assert results["anim.gif"].mode == "P"
    # Grayscale: three equal channels.
    grey = results["grey.jpg"].pixels
    assert (grey[..., 0] == grey[..., 1]).all() and abs(int(grey[0, 0, 0]) - 90) <= 2
    assert (results["plain.bmp"].pixels == BLUE).all()
    assert (results["lossless.webp"].pixels == GREEN).all()
    assert (results["photo.tiff"].pixels == RED).all()
    # Original sizes, as displayed.
    assert (results["anim.gif"].width, results["anim.gif"].height) == (40, 30)
    assert (results["grey.jpg"].width, results["grey.jpg"].height) == (64, 48)


def test_exif_orientation_is_respected():
    result = prepare(exif_rotated_jpeg())
    # Stored 48x32 with orientation 6 (turned 90 degrees clockwise to display).
    assert (result.width, result.height) == (32, 48)
    # Shown: red above blue; the crop keeps the middle square.
    assert close(result.pixels[3, 16], RED, 40)
    assert close(result.pixels[28, 16], BLUE, 40)


def test_only_the_first_frame_of_an_animation_is_used():
    result = prepare(two_frame_gif())
    assert close(result.pixels.mean(axis=(0, 1)), RED, 8)


def three_bands(width: int = 64, height: int = 32) -> bytes:
    """Red | green (the middle square) | blue, as a lossless PNG."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 4] = RED
    pixels[:, width // 4 : 3 * width // 4] = GREEN
    pixels[:, 3 * width // 4 :] = BLUE
    return encoded(Image.fromarray(pixels), "PNG")


def test_resize_crop_keeps_the_centred_square():
    pixels = prepare(three_bands(), "crop").pixels
    assert close(pixels[:, 2:-2].reshape(-1, 3).mean(axis=0), GREEN, 2)


def test_resize_stretch_keeps_the_whole_image_squeezed():
    pixels = prepare(three_bands(), "stretch").pixels
    assert close(pixels[16, 2], RED, 10)
    assert close(pixels[16, 16], GREEN, 10)
    assert close(pixels[16, 29], BLUE, 10)


def test_resize_pad_fits_the_whole_image_on_grey():
    pixels = prepare(three_bands(), "pad").pixels
    # 64x32 -> 32x16, centred: rows 8..23 hold the image, the rest is PAD_FILL.
    assert (pixels[:7] == PAD_FILL).all() and (pixels[25:] == PAD_FILL).all()
    assert close(pixels[16, 2], RED, 10) and close(pixels[16, 29], BLUE, 10)
    assert close(pixels[16, 16], GREEN, 10)


def test_downscaling_is_antialiased():
    # A 1-pixel checkerboard: without antialiasing it would come out black or white.
    board = (np.indices((320, 320)).sum(axis=0) % 2 * 255).astype(np.uint8)
    data = encoded(Image.fromarray(board, "L"), "PNG")
    pixels = prepare(data, "stretch").pixels.astype(int)
    assert np.abs(pixels - 128).max() <= 8


def test_a_large_jpeg_decoded_at_a_reduced_scale_matches_a_full_decode():
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    photo = Image.fromarray(small).resize((1024, 768), Image.Resampling.BICUBIC)
    data = encoded(photo, "JPEG", quality=95)
    fast = prepare(data).pixels.astype(int)
    with Image.open(io.BytesIO(data)) as image:
        side = 768
        box = ((1024 - side) / 2, 0, (1024 + side) / 2, side)
        full = np.asarray(
            image.convert("RGB").resize((32, 32), Image.Resampling.LANCZOS, box=box)
        ).astype(int)
    assert np.abs(fast - full).mean() < 4
    assert prepare(data).width == 1024


@pytest.mark.parametrize(
    ("data", "error", "reason"),
    [
        (
            every_format()["truncated.png"],
            UnreadableImageError,
            "corrupt or truncated PNG",
        ),
        (b"plain text\n", UnreadableImageError, "not an image"),
        (b"", UnreadableImageError, "empty file"),
        (
            encoded(Image.new("RGB", (8, 8)), "PPM"),
            UnsupportedImageError,
            "PPM images are not supported; expected PNG, JPEG, BMP, GIF, WebP or TIFF",
        ),
        (
            encoded(Image.new("F", (8, 8)), "TIFF"),
            UnsupportedImageError,
            "floating-point images are not supported",
        ),
    ],
)
def test_unreadable_and_unsupported_images_say_why(data, error, reason):
    with pytest.raises(error) as raised:
        prepare(data)
    assert reason in raised.value.reason


def test_images_above_the_pixel_limit_are_refused_before_decoding():
    data = encoded(Image.new("RGB", (300, 200)), "PNG")
    with pytest.raises(UnreadableImageError, match=r"300x200 is 0.1 megapixels, above"):
        prepare(data, max_pixels=10_000)


def test_an_unknown_resize_policy_is_refused():
    with pytest.raises(ValueError, match=r"resize is 'zoom'; expected one of"):
        prepare(every_format()["plain.bmp"], "zoom")


def test_prepare_many_keeps_order_and_returns_each_error_in_its_place():
    files = every_format()
    names = sorted(files)

    def loader(name):
        if name == "grey.jpg":

            def fail() -> bytes:
                raise PermissionError(13, "Permission denied", name)

            return fail
        return lambda: files[name]

    results = prepare_many(
        [loader(n) for n in names], resize="crop", max_pixels=LIMIT, workers=2
    )
    assert len(results) == len(names)
    for name, result in zip(names, results, strict=True):
        if name in {"truncated.png", "not_an_image.jpg"}:
            assert isinstance(result, ImageError), name
        elif name == "grey.jpg":
            assert isinstance(result, PermissionError)
        else:
            assert isinstance(result, PreparedImage), name
    serial = prepare_many(
        [loader(n) for n in names], resize="crop", max_pixels=LIMIT, workers=1
    )
    for a, b in zip(results, serial, strict=True):
        if isinstance(a, PreparedImage):
            np.testing.assert_array_equal(a.pixels, b.pixels)


def test_halves_helper_is_what_the_exif_test_assumes():
    pixels = np.asarray(halves(48, 32, RED, BLUE))
    assert tuple(pixels[0, 0]) == RED and tuple(pixels[0, 47]) == BLUE


def test_photos_are_decoded_on_threads_and_small_files_on_one():
    import threading  # noqa: PLC0415

    rng = np.random.default_rng(2)
    photos = [
        encoded(
            Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)), "JPEG"
        )
        for _ in range(24)
    ]
    small = [encoded(Image.new("RGB", (32, 32)), "PNG")] * 24
    assert min(len(p) for p in photos) > 8192 > max(len(s) for s in small)

    def recording(payloads, threads):
        def loader(data):
            def load() -> bytes:
                threads.add(threading.current_thread().name)
                return data

            return load

        return [loader(d) for d in payloads]

    for payloads, threaded in ((photos, True), (small, False)):
        threads: set[str] = set()
        results = prepare_many(
            recording(payloads, threads), resize="crop", max_pixels=LIMIT, workers=2
        )
        serial = prepare_many(
            [lambda d=d: d for d in payloads],
            resize="crop",
            max_pixels=LIMIT,
            workers=1,
        )
        for a, b in zip(results, serial, strict=True):
            np.testing.assert_array_equal(a.pixels, b.pixels)
        assert (threads != {threading.current_thread().name}) is threaded
