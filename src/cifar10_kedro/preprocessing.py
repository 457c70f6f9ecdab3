"""The one way an image becomes what the model sees: 32x32x3 uint8 RGB.

``prepare_image`` is shared by the inference pipeline, the HTTP service and the
notebook, so that the three cannot diverge. An image that is already 32x32 RGB (as
every CIFAR-10 image is) comes out pixel for pixel as Pillow decodes it, exactly as
``CIFAR10Dataset`` fed training and evaluation.

Any other image is decoded (first frame of an animation; EXIF orientation applied),
converted to 8-bit RGB (transparency over white; 16-bit samples scaled to 8 bits) and
resized to 32x32 with an antialiasing (Lanczos) filter by one of three policies:

* ``crop``: the largest centred square, then resized (no distortion, no borders);
* ``pad``: the whole image, resized to fit, centred on a grey square;
* ``stretch``: the whole image, resized to a square (distorted).
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SIZE = 32
ResizePolicy = Literal["crop", "pad", "stretch"]
RESIZE_POLICIES: tuple[str, ...] = ("crop", "pad", "stretch")
# Pillow's plugins tried (JPEG also opens the multi-picture JPEGs (MPO) of cameras).
SUPPORTED_FORMATS: tuple[str, ...] = (
    "PNG",
    "JPEG",
    "BMP",
    "DIB",
    "GIF",
    "WEBP",
    "TIFF",
)
# File names taken for images when a folder or an archive is listed.
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".png",
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".bmp",
    ".dib",
    ".gif",
    ".webp",
    ".tif",
    ".tiff",
)
SUPPORTED_TEXT = "PNG, JPEG, BMP, GIF, WebP or TIFF"
# Transparent pixels are shown over white; `pad` fills the border with mid-grey.
BACKGROUND = (255, 255, 255)
PAD_FILL = (128, 128, 128)
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ORIENTATION = 0x0112  # the EXIF orientation tag
# Files below this size (median of the first _SAMPLE) are decoded on one thread.
SMALL_FILE = 8192
_SAMPLE = 16


class ImageError(ValueError):
    """An image that cannot be prepared; ``reason`` says why, without the file name."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedImageError(ImageError):
    """A recognised image format or colour mode that is not supported (HTTP 415)."""


class UnreadableImageError(ImageError):
    """Not an image, or a corrupt, truncated or too large one (HTTP 422)."""


@dataclass(frozen=True)
class PreparedImage:
    """An image as the model sees it, with what it was before."""

    pixels: np.ndarray  # (32, 32, 3) uint8 RGB
    width: int  # as displayed: after the EXIF orientation
    height: int
    format: str  # Pillow's name, e.g. "JPEG"
    mode: str  # the colour mode decoded, e.g. "RGBA", "I;16", "P"


def _open(data: bytes) -> Image.Image:
    if not data:
        raise UnreadableImageError("empty file (0 bytes); expected an image")
    try:
        return Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except UnidentifiedImageError:
        pass
    except Exception as exc:  # a supported format whose header is broken
        raise UnreadableImageError(f"corrupt image header: {exc}") from exc
    # Tell an image of another format from something that is no image at all.
    # Only the header is read here: nothing else is ever decoded.
    try:
        with Image.open(io.BytesIO(data)) as other:
            found = other.format
    except Exception:
        found = None
    if found:
        raise UnsupportedImageError(
            f"{found} images are not supported; expected {SUPPORTED_TEXT}"
        )
    raise UnreadableImageError(
        f"not an image: no supported format ({SUPPORTED_TEXT}) recognises its content"
    )


def _draft_size(width: int, height: int, resize: str) -> tuple[int, int]:
    """The smallest size a JPEG may be decoded at and still resize well (2x oversampled)."""
    need = 2 * SIZE
    if resize == "crop":
        scale = need / min(width, height)
    elif resize == "pad":
        scale = need / max(width, height)
    else:
        return need, need
    return max(1, int(width * scale + 0.999)), max(1, int(height * scale + 0.999))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Return ``image`` as 8-bit RGB: alpha over white, 16-bit samples scaled."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.int64)
        grey = np.clip((values + 128) // 257, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if mode == "F":
        raise UnsupportedImageError(
            "32-bit floating-point images are not supported; expected 8- or 16-bit"
        )
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in image.info
    )
    if mode == "L" and "transparency" in image.info:
        has_alpha = True
    try:
        if has_alpha:
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        return image.convert("RGB")
    except ValueError as exc:
        raise UnsupportedImageError(
            f"colour mode {mode} is not supported ({exc})"
        ) from exc


def _oriented(image: Image.Image) -> Image.Image:
    """Return ``image`` turned as its EXIF orientation says (itself when upright)."""
    # Most files carry no EXIF; parsing it costs as much as decoding a 32x32 JPEG.
    if image.format != "TIFF" and "exif" not in image.info:
        return image
    try:
        if image.getexif().get(_ORIENTATION, 1) in (2, 3, 4, 5, 6, 7, 8):
            return ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF: keep the stored orientation
        pass
    return image


def _resize(image: Image.Image, resize: str) -> Image.Image:
    width, height = image.size
    if (width, height) == (SIZE, SIZE):
        return image
    lanczos = Image.Resampling.LANCZOS
    if resize == "crop":
        side = min(width, height)
        box = (
            (width - side) / 2,
            (height - side) / 2,
            (width + side) / 2,
            (height + side) / 2,
        )
        return image.resize((SIZE, SIZE), lanczos, box=box)
    if resize == "stretch":
        return image.resize((SIZE, SIZE), lanczos)
    if resize == "pad":
        scale = SIZE / max(width, height)
        inner = (
            max(1, round(width * scale)),
            max(1, round(height * scale)),
        )
        canvas = Image.new("RGB", (SIZE, SIZE), PAD_FILL)
        canvas.paste(
            image.resize(inner, lanczos),
            ((SIZE - inner[0]) // 2, (SIZE - inner[1]) // 2),
        )
        return canvas
    raise ValueError(f"resize is '{resize}'; expected one of {list(RESIZE_POLICIES)}")


def prepare_image(
    data: bytes, *, resize: ResizePolicy, max_pixels: int
) -> PreparedImage:
    """Return the 32x32x3 uint8 RGB image the model sees for the encoded ``data``.

    ``resize`` and ``max_pixels`` are the ``inference`` parameters of the same names
    (conf/base/parameters_inference.yml), wherever this is called from.

    Raises ``UnsupportedImageError`` for a format or colour mode that is not read and
    ``UnreadableImageError`` for anything else that is not a readable image (corrupt,
    truncated, empty, or above ``max_pixels`` pixels); their ``reason`` says which.
    """
    if resize not in RESIZE_POLICIES:
        raise ValueError(
            f"resize is '{resize}'; expected one of {list(RESIZE_POLICIES)}"
        )
    with _open(data) as image:
        source_format = image.format or "?"
        source_mode = image.mode
        width, height = image.size
        if width * height > max_pixels:
            raise UnreadableImageError(
                f"{width}x{height} is {width * height / 1e6:.1f} megapixels, above "
                f"the limit of {max_pixels / 1e6:g} megapixels"
            )
        try:
            if source_format in ("JPEG", "MPO") and min(width, height) > 2 * SIZE:
                # Lets the JPEG decoder scale down by 1/2..1/8 while decoding.
                image.draft(None, _draft_size(width, height, resize))
            with warnings.catch_warnings():
                # Pillow's decompression-bomb warning: the limit above applies.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.load()
        except ImageError:
            raise
        except Exception as exc:
            raise UnreadableImageError(
                f"corrupt or truncated {source_format} data: {exc}"
            ) from exc
        oriented = _oriented(image)
        if oriented.size != image.size:  # turned by 90 degrees
            width, height = height, width
        try:
            pixels = np.asarray(_resize(_to_rgb(oriented), resize), dtype=np.uint8)
        except ImageError:
            raise
        except Exception as exc:
            raise UnreadableImageError(
                f"cannot convert the {source_format} image to RGB: {exc}"
            ) from exc
    return PreparedImage(
        pixels=pixels,
        width=width,
        height=height,
        format=source_format,
        mode=source_mode,
    )


def _read(load: Callable[[], bytes]) -> bytes | ImageError | OSError:
    try:
        return load()
    except (ImageError, OSError) as exc:  # that image's result, as in prepare_many
        return exc


def _replay(read: bytes | ImageError | OSError) -> Callable[[], bytes]:
    def load() -> bytes:
        if isinstance(read, ImageError | OSError):
            raise read
        return read

    return load


def prepare_many(
    loaders: Sequence[Callable[[], bytes]],
    *,
    resize: ResizePolicy,
    max_pixels: int,
    workers: int | None,
) -> list[PreparedImage | ImageError | OSError]:
    """Read and prepare each image, on one thread per core (``workers``) for all but
    small files; return the results in order.

    An image that cannot be read or prepared gives its exception in its place, so one
    bad file never stops the others. Pillow releases the GIL while it decodes and
    resizes, so photos use every core; a small file (a 32x32 JPEG) costs mostly
    Python's own per-file work, which threads cannot share, so when the first files
    are small (median under ``SMALL_FILE`` bytes) one thread does them all.
    """

    def one(load: Callable[[], bytes]) -> PreparedImage | ImageError | OSError:
        try:
            return prepare_image(load(), resize=resize, max_pixels=max_pixels)
        except (ImageError, OSError) as exc:
            return exc

    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(loaders) > 1:
        first = [_read(load) for load in loaders[:_SAMPLE]]
        sizes = sorted(len(b) for b in first if isinstance(b, bytes))
        loaders = [*(_replay(b) for b in first), *loaders[_SAMPLE:]]
        if sizes and sizes[len(sizes) // 2] >= SMALL_FILE:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                return list(pool.map(one, loaders))
    return [one(load) for load in loaders]
