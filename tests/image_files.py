"""Real image files of every format users have, written with Pillow for the tests."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

RED, GREEN, BLUE = (220, 20, 20), (20, 200, 20), (20, 20, 220)


def _solid(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    return Image.new("RGB", size, colour)


def halves(width: int, height: int, left: tuple, right: tuple) -> Image.Image:
    """An RGB image whose left half is ``left`` and right half ``right``."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = left
    pixels[:, width // 2 :] = right
    return Image.fromarray(pixels)


def png_rgb16(values: np.ndarray) -> bytes:
    """A 48-bit (16 bits a channel) RGB PNG, which Pillow cannot write itself."""
    height, width, _ = values.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def exif_rotated_jpeg() -> bytes:
    """48x32 as stored (left red, right blue), EXIF orientation 6: shown 32x48, red on
    top."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(halves(48, 32, RED, BLUE), "JPEG", quality=95, exif=exif.tobytes())


def two_frame_gif() -> bytes:
    """A palette GIF: a red first frame, a blue second one."""
    frames = [
        _solid((40, 30), c).convert("P", palette=Image.Palette.ADAPTIVE)
        for c in (RED, BLUE)
    ]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])


def every_format() -> dict[str, bytes]:
    """One file of each format and mode the inference pipeline must read, plus a
    corrupt file and a non-image file (with an image name), by file name."""
    rgba = Image.new("RGBA", (32, 32), (*RED, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 16, 32))  # left half fully transparent
    grey16 = Image.fromarray(np.full((20, 30), 40000, dtype=np.uint16))
    png = encoded(_solid((32, 32), GREEN), "PNG")
    return {
        "rgba.png": encoded(rgba, "PNG"),
        "grey16.png": encoded(grey16, "PNG"),
        "rgb48.png": png_rgb16(
            np.full((24, 24, 3), (65535, 32896, 0), dtype=np.uint16)
        ),
        "anim.gif": two_frame_gif(),
        "grey.jpg": encoded(Image.new("L", (64, 48), 90), "JPEG", quality=95),
        "plain.bmp": encoded(_solid((32, 32), BLUE), "BMP"),
        "lossless.webp": encoded(_solid((50, 50), GREEN), "WEBP", lossless=True),
        "photo.tiff": encoded(_solid((40, 40), RED), "TIFF"),
        "rotated.jpg": exif_rotated_jpeg(),
        "truncated.png": png[: len(png) // 2],
        "not_an_image.jpg": b"This is a text file with an image name.\n",
    }


BROKEN = {"truncated.png", "not_an_image.jpg"}


def write_every_format(folder: Path) -> dict[str, bytes]:
    """Write ``every_format()`` under ``folder`` (one in a subfolder); return it by
    relative name."""
    files = every_format()
    written = {}
    for name, data in files.items():
        relative = f"nested/{name}" if name == "photo.tiff" else name
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[relative] = data
    return written
