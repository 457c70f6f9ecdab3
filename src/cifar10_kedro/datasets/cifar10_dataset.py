"""``CIFAR10Dataset`` reads CIFAR-10 from the official archive or from an image tree.

Two forms are understood, told apart by their content, not their name:

* the official ``cifar-10-python.tar.gz`` (pickled batches under
  ``cifar-10-batches-py/``), md5-checked, and downloaded when missing;
* an image tree ``train/<class>/*`` and ``test/<class>/*`` of PNG or JPEG files,
  as a folder or as a ``.tar.gz`` (optionally under one top-level folder).

Both are read through fsspec, as kedro-datasets read files, so ``s3://``, ``gs://`` and
the like work with ``credentials`` and ``fs_args``; a local file is read in place.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import urllib.request
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import IO, Any

import fsspec
import numpy as np
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import PROTOCOL_DELIMITER, get_filepath_str, get_protocol_and_path
from kedro_datasets._typing import ImagePreview
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError
from tqdm.auto import tqdm

CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "test")
BATCH_FOLDER = "cifar-10-batches-py"
_BATCHES = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}
# Pixels between the cells of the preview grid (its cells are right-aligned).
PREVIEW_GAP = 2


def _md5_of(handle: IO[bytes], chunk_size: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in iter(lambda: handle.read(chunk_size), b""):
        digest.update(chunk)
    return digest.hexdigest()


def md5sum(path: Path) -> str:
    """Return the hex md5 digest of a local file."""
    with open(path, "rb") as handle:
        return _md5_of(handle)


def download(url: str, target: Path, md5: str | None) -> None:
    """Download ``url`` to ``target`` atomically, with a progress bar.

    The bytes go to a temporary file beside ``target`` that is renamed only once
    the download is complete and its md5 matches, so an interrupted or corrupt
    download never leaves a file that looks complete.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=target.parent, prefix=target.name + ".", suffix=".part"
    )
    tmp = Path(tmp_name)
    try:
        with (
            os.fdopen(fd, "wb") as out,
            urllib.request.urlopen(url, timeout=60) as response,
        ):  # noqa: S310
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=f"Downloading {target.name}",
            ) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
            if total is not None and out.tell() != total:
                raise DatasetError(
                    f"Download of {url} stopped after {out.tell()} of {total} bytes."
                )
        if md5 is not None and (actual := md5sum(tmp)) != md5:
            raise DatasetError(
                f"Downloaded {url} has md5 {actual}, expected {md5}; nothing was kept."
            )
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, DatasetError | KeyboardInterrupt):
            raise
        raise DatasetError(
            f"Could not download CIFAR-10 from {url} to {target}: {exc}. Download "
            f"cifar-10-python.tar.gz by hand and put it at {target}, or point the "
            f"'cifar10_raw' catalog entry (or CIFAR10_RAW_PATH) at a local copy."
        ) from exc


def _decode_image(name: str, payload: bytes) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(payload)) as image:
            image.load()
            if image.mode != "RGB" or image.size != (32, 32):
                raise DatasetError(
                    f"Image '{name}' is {image.size[0]}x{image.size[1]} {image.mode}; "
                    "expected a 32x32 RGB image."
                )
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        reason = (
            "not a PNG or JPEG image"
            if isinstance(exc, UnidentifiedImageError)
            else str(exc)
        )
        raise DatasetError(
            f"Image '{name}' cannot be read as PNG or JPEG: {reason}."
        ) from exc


def _split_and_class(parts: tuple[str, ...]) -> tuple[str, str] | None:
    """Return (split, class) for ``[prefix/]split/class/file`` paths, else None."""
    if len(parts) == 4:  # noqa: PLR2004 - one top-level folder above the splits
        parts = parts[1:]
    if len(parts) != 3 or parts[0] not in SPLITS:  # noqa: PLR2004
        return None
    return parts[0], parts[1]


def _member_kind(name: str) -> str | tuple[str, str] | None:
    """An archive member's role: a batch name, an image's (split, class), or None."""
    path = PurePosixPath(name)
    if len(path.parts) >= 2 and path.parts[-2] == BATCH_FOLDER:  # noqa: PLR2004
        return path.parts[-1]
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _split_and_class(path.parts)
    return None


def _arrays_from_tree(
    files: dict[tuple[str, str], list[tuple[str, bytes]]], source: str, workers: int
) -> dict[str, Any]:
    """Decode an image tree, grouped by (split, class), into arrays."""
    result: dict[str, Any] = {"class_names": list(CLASS_NAMES)}
    found_classes = {cls for (_, cls) in files}
    unknown = sorted(found_classes - set(CLASS_NAMES))
    if unknown:
        raise DatasetError(
            f"{source}: unknown class folder(s) {unknown}; expected the CIFAR-10 "
            f"class names {list(CLASS_NAMES)}."
        )
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for split in SPLITS:
            missing = [c for c in CLASS_NAMES if not files.get((split, c))]
            if len(missing) == len(CLASS_NAMES):
                raise DatasetError(
                    f"{source}: split '{split}' is empty; expected images under "
                    f"'{split}/<class>/'."
                )
            if missing:
                raise DatasetError(
                    f"{source}: split '{split}' has no images for class folder(s) "
                    f"{missing}; expected all of {list(CLASS_NAMES)}."
                )
            entries = [
                (label, name, payload)
                for label, cls in enumerate(CLASS_NAMES)
                for name, payload in sorted(files[(split, cls)])
            ]
            images = list(pool.map(lambda e: _decode_image(e[1], e[2]), entries))
            result[f"x_{split}"] = np.stack(images)
            result[f"y_{split}"] = np.array([e[0] for e in entries], dtype=np.int64)
    return result


class CIFAR10Dataset(AbstractDataset[None, dict[str, Any]]):
    """Loads CIFAR-10 as ``{"x_train", "y_train", "x_test", "y_test", "class_names"}``.

    Images are uint8 arrays of shape (N, 32, 32, 3), labels int64 (range-checked
    by the ``data_ingestion`` pipeline) and class names in the official label
    order. Read-only and not versioned: it is the raw input, and a missing official
    archive is downloaded to the one ``filepath``.

    Example catalog entry::

        cifar10_raw:
          type: cifar10_kedro.datasets.CIFAR10Dataset
          filepath: data/01_raw/cifar-10-python.tar.gz
          metadata:
            kedro-viz:
              preview_args:
                per_class: 4
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str | os.PathLike,
        url: str | None = OFFICIAL_URL,
        md5: str | None = OFFICIAL_MD5,
        workers: int = 4,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset over ``filepath``.

        Args:
            filepath: the official archive, an image-tree ``.tar.gz`` or a folder,
                on any fsspec filesystem (``s3://bucket/cifar-10-python.tar.gz``);
                without a protocol, a local path.
            url: where to download the official archive when ``filepath`` is a
                missing local file; ``None`` turns downloading off. A missing file
                on another filesystem is an error: loading never uploads.
            md5: expected md5 of the official archive; ``None`` skips the check.
                Image trees are not checked.
            workers: threads used to decode images.
            credentials: passed to the filesystem, e.g. ``{"key": ..., "secret": ...}``
                for ``s3fs``.
            fs_args: extra arguments for the filesystem's constructor, and under
                ``open_args_load`` for its ``open`` when the archive is read.
            metadata: free-form metadata, ignored by Kedro; ``kedro-viz:
                preview_args:`` are passed to :meth:`preview`.
        """
        fs_args = deepcopy(fs_args) or {}
        self._open_args = {"mode": "rb", **fs_args.pop("open_args_load", {})}
        # os.fspath: Kedro's parser takes str() of it, wrong for a PathLike that is no Path.
        protocol, path = get_protocol_and_path(os.fspath(filepath))
        self._protocol = protocol
        self._fs = fsspec.filesystem(
            protocol, **(deepcopy(credentials) or {}), **fs_args
        )
        self._path = get_filepath_str(PurePosixPath(path), protocol)
        # How messages name the file: a local path as given, others with their protocol.
        self._shown = (
            self._path
            if protocol in ("file", "http", "https")
            else f"{protocol}{PROTOCOL_DELIMITER}{self._path}"
        )
        self._url = url
        self._md5 = md5
        self._workers = workers
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._path,
            "protocol": self._protocol,
            "url": self._url,
            "md5": self._md5,
        }

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def _release(self) -> None:
        super()._release()
        self._fs.invalidate_cache(self._path)

    def save(self, data: dict[str, Any]) -> None:
        raise DatasetError("CIFAR10Dataset is read-only.")

    def load(self) -> dict[str, Any]:
        if not self._fs.exists(self._path):
            self._download_or_fail()
        if self._fs.isdir(self._path):
            return self._load_folder()
        batches: dict[str, bytes] = {}
        files: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        with self._open_archive() as tar, self._reading():
            for member, kind in _members(tar):
                payload = tar.extractfile(member).read()
                if isinstance(kind, str):
                    batches[kind] = payload
                else:
                    shown = f"{self._shown}:{member.name}"
                    files.setdefault(kind, []).append((shown, payload))
        if batches:
            return self._from_batches(batches)
        if files:
            return _arrays_from_tree(files, self._shown, self._workers)
        raise self._neither_form()

    def preview(self, per_class: int = 4, scale: int = 2) -> ImagePreview:
        """A PNG grid of ``per_class`` images of each class, for kedro-viz.

        Decodes only those images: an archive is read up to the first official
        batch or until every class has its images, a folder reads only their
        files. Nothing is downloaded; the official archive's md5 is checked (by
        reading it once) before its first batch is unpickled, as by :meth:`load`.

        Args:
            per_class: images shown per class (one row per class).
            scale: each 32x32 image is enlarged this many times.

        Returns:
            The base64-encoded PNG, as kedro-datasets' image previews.
        """
        if per_class < 1 or scale < 1:
            raise DatasetError(
                f"preview needs per_class >= 1 and scale >= 1, got {per_class}, {scale}."
            )
        if not self._fs.exists(self._path):
            raise DatasetError(f"CIFAR-10 not found at '{self._shown}'.")
        if self._fs.isdir(self._path):
            picked = self._preview_folder(per_class)
        else:
            picked = self._preview_archive(per_class)
        return _render_grid(picked, per_class, scale)

    def _download_or_fail(self) -> None:
        if self._url is None or self._protocol != "file":
            remote = (
                " (the official archive is downloaded only to a local path)"
                if self._url is not None
                else ""
            )
            raise DatasetError(
                f"CIFAR-10 not found at '{self._shown}'. Put the official "
                f"cifar-10-python.tar.gz ({OFFICIAL_URL}) or an image tree "
                "(train/<class>/*, test/<class>/*) there, or set CIFAR10_RAW_PATH"
                f"{remote}."
            )
        download(self._url, Path(self._path), self._md5)

    @contextmanager
    def _open_archive(self) -> Iterator[tarfile.TarFile]:
        # Opened in place through the filesystem: a local file is never copied.
        handle = None
        try:
            handle = self._fs.open(self._path, **self._open_args)
            tar = tarfile.open(fileobj=handle, mode="r:*")
        except (tarfile.TarError, OSError, EOFError) as exc:
            if handle is not None:
                handle.close()
            raise DatasetError(
                f"'{self._shown}' is not a readable .tar.gz archive: {exc}"
            ) from exc
        with handle, tar:
            yield tar

    @contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DatasetError(
                f"'{self._shown}' is truncated or corrupt (failed while reading it: "
                f"{exc})."
            ) from exc

    def _neither_form(self) -> DatasetError:
        return DatasetError(
            f"'{self._shown}' holds neither the official '{BATCH_FOLDER}/' batches nor "
            "an image tree train/<class>/*, test/<class>/*."
        )

    def _tree_files(self) -> list[tuple[str, str, tuple[str, str]]]:
        """The folder's images as (filesystem path, shown name, (split, class))."""
        root = PurePosixPath(self._fs._strip_protocol(self._path))  # noqa: SLF001
        found = []
        for path in sorted(self._fs.find(self._path)):
            relative = PurePosixPath(self._fs._strip_protocol(path)).relative_to(root)  # noqa: SLF001
            key = _split_and_class(relative.parts)
            if key and relative.suffix.lower() in IMAGE_SUFFIXES:
                found.append((path, f"{self._shown}/{relative}", key))
        if not found:
            raise DatasetError(
                f"Folder '{self._shown}' holds no image tree; expected "
                "train/<class>/*.png|jpg and test/<class>/*.png|jpg."
            )
        return found

    def _load_folder(self) -> dict[str, Any]:
        found = self._tree_files()
        # One call, so that remote filesystems fetch the files concurrently.
        payloads = self._fs.cat([path for path, _, _ in found])
        files: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        for path, shown, key in found:
            files.setdefault(key, []).append((shown, payloads[path]))
        return _arrays_from_tree(files, self._shown, self._workers)

    def _preview_folder(self, per_class: int) -> dict[int, list[np.ndarray]]:
        chosen: dict[str, list[tuple[str, str]]] = {c: [] for c in CLASS_NAMES}
        for path, shown, (_, cls) in self._tree_files():
            if cls in chosen and len(chosen[cls]) < per_class:
                chosen[cls].append((path, shown))
        paths = [path for pairs in chosen.values() for path, _ in pairs]
        payloads = self._fs.cat(paths) if paths else {}
        return {
            label: [_decode_image(shown, payloads[path]) for path, shown in chosen[cls]]
            for label, cls in enumerate(CLASS_NAMES)
        }

    def _preview_archive(self, per_class: int) -> dict[int, list[np.ndarray]]:
        picked: dict[int, list[np.ndarray]] = {i: [] for i in range(len(CLASS_NAMES))}
        needed = per_class * len(CLASS_NAMES)
        batch_names = {name for names in _BATCHES.values() for name in names}
        with self._open_archive() as tar, self._reading():
            for member, kind in _members(tar):
                if isinstance(kind, str):
                    if kind not in batch_names:
                        continue
                    # The first batch alone: only its first rows of each class.
                    self._check_md5()
                    source = f"{self._shown}:{member.name}"
                    data, labels = _read_batch(tar.extractfile(member).read(), source)
                    return _first_rows_per_class(data, labels, per_class)
                label = CLASS_NAMES.index(kind[1]) if kind[1] in CLASS_NAMES else None
                if label is None or len(picked[label]) >= per_class:
                    continue
                payload = tar.extractfile(member).read()
                picked[label].append(
                    _decode_image(f"{self._shown}:{member.name}", payload)
                )
                needed -= 1
                if not needed:
                    break  # the rest of the archive is never read
        if not any(picked.values()):
            raise self._neither_form()
        return picked

    def _check_md5(self) -> None:
        """Refuse an official archive that is not the expected file.

        Runs before any batch is unpickled: unpickling can run code.
        """
        if self._md5 is None:
            return
        with self._fs.open(self._path, **self._open_args) as handle:
            actual = _md5_of(handle)
        if actual != self._md5:
            raise DatasetError(
                f"'{self._shown}' has md5 {actual}, expected {self._md5} (the "
                f"official cifar-10-python.tar.gz). Delete it to download it again "
                f"from {self._url or OFFICIAL_URL}."
            )

    def _from_batches(self, batches: dict[str, bytes]) -> dict[str, Any]:
        self._check_md5()
        result: dict[str, Any] = {"class_names": list(CLASS_NAMES)}
        for split, names in _BATCHES.items():
            xs, ys = [], []
            for name in names:
                if name not in batches:
                    raise DatasetError(
                        f"'{self._shown}' lacks the batch '{BATCH_FOLDER}/{name}'."
                    )
                data, labels = _read_batch(
                    batches[name], f"{self._shown}:{BATCH_FOLDER}/{name}"
                )
                xs.append(_to_images(data))
                ys.append(labels)
            result[f"x_{split}"] = np.concatenate(xs)
            result[f"y_{split}"] = np.concatenate(ys)
        return result


def _members(
    tar: tarfile.TarFile,
) -> Iterator[tuple[tarfile.TarInfo, str | tuple[str, str]]]:
    """The archive's files that matter, in order, with :func:`_member_kind`'s role."""
    for member in tar:
        if member.isfile() and (kind := _member_kind(member.name)) is not None:
            yield member, kind


def _first_rows_per_class(
    data: np.ndarray, labels: np.ndarray, per_class: int
) -> dict[int, list[np.ndarray]]:
    return {
        label: list(_to_images(data[np.flatnonzero(labels == label)[:per_class]]))
        for label in range(len(CLASS_NAMES))
    }


def _render_grid(
    picked: dict[int, list[np.ndarray]], per_class: int, scale: int
) -> ImagePreview:
    """One row per class: its name, then its images (right-aligned cells)."""
    font = ImageFont.load_default()
    cell = 32 * scale + PREVIEW_GAP
    label_width = (
        int(max(font.getlength(name) for name in CLASS_NAMES)) + 3 * PREVIEW_GAP
    )
    width = label_width + per_class * cell
    canvas = Image.new("RGB", (width, len(CLASS_NAMES) * cell + PREVIEW_GAP), "white")
    draw = ImageDraw.Draw(canvas)
    for label, name in enumerate(CLASS_NAMES):
        top = PREVIEW_GAP + label * cell
        _, text_top, _, text_bottom = font.getbbox(name)
        middle = top + (cell - PREVIEW_GAP - text_top - text_bottom) // 2
        draw.text((PREVIEW_GAP, middle), name, fill="black", font=font)
        for k, image in enumerate(picked.get(label, [])[:per_class]):
            tile = Image.fromarray(image).resize(
                (32 * scale, 32 * scale), Image.NEAREST
            )
            canvas.paste(tile, (width - (per_class - k) * cell, top))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return ImagePreview(base64.b64encode(buffer.getvalue()).decode("ascii"))


def _read_batch(payload: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Unpickle and check one official batch: (N, 3072) uint8 rows and int64 labels."""
    try:
        batch = pickle.loads(payload, encoding="bytes")  # noqa: S301 - checksum-verified archive
    except Exception as exc:
        raise DatasetError(f"Batch '{source}' is not a readable pickle: {exc}") from exc
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DatasetError(
            f"Batch '{source}' has keys {keys}; expected b'data' and b'labels'."
        )
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"])
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:  # noqa: PLR2004
        raise DatasetError(
            f"Batch '{source}' has data of shape {data.shape} and dtype {data.dtype}; "
            "expected (N, 3072) uint8."
        )
    if labels.shape != (data.shape[0],):
        raise DatasetError(
            f"Batch '{source}' has {labels.shape} labels for {data.shape[0]} images."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(
            f"Batch '{source}' has labels of type {labels.dtype}; expected integers."
        )
    outside = np.unique(labels[(labels < 0) | (labels >= len(CLASS_NAMES))])
    if outside.size:
        raise DatasetError(
            f"Batch '{source}' has labels {outside[:10].tolist()} outside 0..9; "
            "expected the CIFAR-10 class indices 0..9."
        )
    return data, labels.astype(np.int64)


def _to_images(rows: np.ndarray) -> np.ndarray:
    """Official (N, 3072) channel-first rows as (N, 32, 32, 3) uint8 images."""
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
