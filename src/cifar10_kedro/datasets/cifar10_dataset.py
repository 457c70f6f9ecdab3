"""``CIFAR10Dataset`` reads CIFAR-10 from the official archive or from an image tree.

Two forms are understood, told apart by their content, not their name:

* the official ``cifar-10-python.tar.gz`` (pickled batches under
  ``cifar-10-batches-py/``), md5-checked, and downloaded when missing;
* an image tree ``train/<class>/*`` and ``test/<class>/*`` of PNG or JPEG files,
  as a folder or as a ``.tar.gz`` (optionally under one top-level folder).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError
from PIL import Image, UnidentifiedImageError
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
_BATCHES = {
    "train": [f"data_batch_{i}" for i in range(1, 6)],
    "test": ["test_batch"],
}


def md5sum(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return the hex md5 digest of a file."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
    order. Read-only.

    Example catalog entry::

        cifar10_raw:
          type: cifar10_kedro.datasets.CIFAR10Dataset
          filepath: data/01_raw/cifar-10-python.tar.gz
    """

    def __init__(
        self,
        filepath: str,
        url: str | None = OFFICIAL_URL,
        md5: str | None = OFFICIAL_MD5,
        workers: int = 4,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset over ``filepath``.

        Args:
            filepath: the official archive, an image-tree ``.tar.gz`` or a folder.
            url: where to download the official archive when ``filepath`` is
                missing; ``None`` turns downloading off.
            md5: expected md5 of the official archive; ``None`` skips the check.
                Image trees are not checked.
            workers: threads used to decode images.
            metadata: free-form metadata, ignored by Kedro.
        """
        self._filepath = Path(filepath)
        self._url = url
        self._md5 = md5
        self._workers = workers
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "url": self._url, "md5": self._md5}

    def _exists(self) -> bool:
        return self._filepath.exists()

    def save(self, data: dict[str, Any]) -> None:
        raise DatasetError("CIFAR10Dataset is read-only.")

    def load(self) -> dict[str, Any]:
        path = self._filepath
        if not path.exists():
            if self._url is None:
                raise DatasetError(
                    f"CIFAR-10 not found at '{path}'. Put the official "
                    f"cifar-10-python.tar.gz ({OFFICIAL_URL}) or an image tree "
                    "(train/<class>/*, test/<class>/*) there, or set CIFAR10_RAW_PATH."
                )
            download(self._url, path, self._md5)
        if path.is_dir():
            return self._load_folder(path)
        try:
            tar = tarfile.open(path, "r:*")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DatasetError(
                f"'{path}' is not a readable .tar.gz archive: {exc}"
            ) from exc
        with tar:
            return self._load_archive(tar)

    def _load_folder(self, root: Path) -> dict[str, Any]:
        files: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        for file in sorted(root.rglob("*")):
            key = _split_and_class(file.relative_to(root).parts)
            if key and file.suffix.lower() in IMAGE_SUFFIXES and file.is_file():
                files.setdefault(key, []).append((str(file), file.read_bytes()))
        if not files:
            raise DatasetError(
                f"Folder '{root}' holds no image tree; expected train/<class>/*.png|jpg "
                "and test/<class>/*.png|jpg."
            )
        return _arrays_from_tree(files, str(root), self._workers)

    def _load_archive(self, tar: tarfile.TarFile) -> dict[str, Any]:
        path = self._filepath
        batches: dict[str, bytes] = {}
        files: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
        try:
            for member in tar:
                if not member.isfile():
                    continue
                parts = PurePosixPath(member.name).parts
                if len(parts) >= 2 and parts[-2] == "cifar-10-batches-py":  # noqa: PLR2004
                    batches[parts[-1]] = tar.extractfile(member).read()
                    continue
                key = _split_and_class(parts)
                if key and PurePosixPath(member.name).suffix.lower() in IMAGE_SUFFIXES:
                    payload = tar.extractfile(member).read()
                    files.setdefault(key, []).append((f"{path}:{member.name}", payload))
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise DatasetError(
                f"'{path}' is truncated or corrupt (failed while reading it: {exc})."
            ) from exc
        if batches:
            return self._from_batches(batches)
        if files:
            return _arrays_from_tree(files, str(path), self._workers)
        raise DatasetError(
            f"'{path}' holds neither the official 'cifar-10-batches-py/' batches nor an "
            "image tree train/<class>/*, test/<class>/*."
        )

    def _from_batches(self, batches: dict[str, bytes]) -> dict[str, Any]:
        path = self._filepath
        if self._md5 is not None and (actual := md5sum(path)) != self._md5:
            raise DatasetError(
                f"'{path}' has md5 {actual}, expected {self._md5} (the official "
                f"cifar-10-python.tar.gz). Delete it to download it again from "
                f"{self._url or OFFICIAL_URL}."
            )
        result: dict[str, Any] = {"class_names": list(CLASS_NAMES)}
        for split, names in _BATCHES.items():
            xs, ys = [], []
            for name in names:
                if name not in batches:
                    raise DatasetError(
                        f"'{path}' lacks the batch 'cifar-10-batches-py/{name}'."
                    )
                x, y = _decode_batch(
                    batches[name], f"{path}:cifar-10-batches-py/{name}"
                )
                xs.append(x)
                ys.append(y)
            result[f"x_{split}"] = np.concatenate(xs)
            result[f"y_{split}"] = np.concatenate(ys)
        return result


def _decode_batch(payload: bytes, source: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode one official pickled batch into (N, 32, 32, 3) uint8 images and labels."""
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
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)
