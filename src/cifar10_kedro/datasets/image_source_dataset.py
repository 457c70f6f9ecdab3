"""``ImageSourceDataset``: the image files under a path, for batch inference (read-only).

The path may be a folder (searched recursively), a ``.zip``, a ``.tar`` (optionally
compressed: ``.tar.gz``, ``.tgz``, ``.tar.bz2``, ``.tar.xz``) or one image file;
archives are told apart by their content, not their name. Loading lists the images
and returns, like kedro-datasets' ``PartitionedDataset``, one function per file that
reads its bytes when called, so that a batch of any size is never all in memory and
a file that cannot be read fails alone. Nothing under the path is ever written.
"""

from __future__ import annotations

import logging
import tarfile
import threading
import zipfile
from collections.abc import Callable
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path
from kedro_datasets._typing import TablePreview

from cifar10_kedro.preprocessing import IMAGE_SUFFIXES

logger = logging.getLogger(__name__)

ImageLoaders = dict[str, Callable[[], bytes]]
_JUNK_FOLDERS = ("__MACOSX",)
_SHOWN = 5  # file names quoted in a message


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _is_hidden(relative: str) -> bool:
    """Hidden files and folders (.DS_Store, ._x.jpg, .git/) and macOS zip debris."""
    return any(
        part.startswith(".") or part in _JUNK_FOLDERS
        for part in PurePosixPath(relative).parts
    )


def _quoted(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


class ImageSourceDataset(AbstractDataset[None, ImageLoaders]):
    """Lists the images under ``path`` and returns ``{relative name: read function}``.

    Names are relative to ``path`` (POSIX separators; the member name in an archive;
    the file name for a single file), sorted. Files whose names do not end in an image
    suffix (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.gif``, ``.webp``, ``.tif``,
    ``.tiff``, ...) and hidden files are skipped, and the log says how many. A compressed
    tar is read in one pass, into memory (it cannot be read from the middle); a folder,
    a zip or a plain tar is read file by file.

    Example catalog entry::

        inference_images:
          type: cifar10_kedro.datasets.ImageSourceDataset
          path: ${runtime_params:inference.input_path,null}
          path_parameter: inference.input_path
    """

    def __init__(
        self,
        *,
        path: str | None,
        path_parameter: str | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset over ``path``.

        Args:
            path: a folder, an archive or an image file, on any fsspec filesystem;
                None when not set (loading then says how to set it).
            path_parameter: the parameter that sets ``path``, named in error messages.
            credentials, fs_args: passed to the fsspec filesystem.
            metadata: any, e.g. for kedro-viz; not used by the dataset.
        """
        self._path = None if path is None else str(path)
        self._path_parameter = path_parameter
        self._credentials = deepcopy(credentials) or {}
        self._fs_args = deepcopy(fs_args) or {}
        self.metadata = metadata
        if self._path is not None:
            self._protocol, self._fs_path = get_protocol_and_path(self._path)
            self._fs = fsspec.filesystem(
                self._protocol, **self._credentials, **self._fs_args
            )

    # ------------------------------------------------------------------ loading

    def load(self) -> ImageLoaders:
        if self._path is None:
            how = (
                f"--params {self._path_parameter}=PATH"
                if self._path_parameter
                else "a path"
            )
            raise DatasetError(
                f"No images to read: set {how} (a folder, a .zip, .tar or .tar.gz "
                "archive, or one image file)."
            )
        fs, path = self._fs, self._fs_path
        if not fs.exists(path):
            setting = f" ({self._path_parameter})" if self._path_parameter else ""
            raise DatasetError(
                f"'{self._path}'{setting} does not exist; expected a folder, a .zip, "
                ".tar or .tar.gz archive, or an image file."
            )
        if fs.isdir(path):
            loaders, skipped = self._folder(fs, path)
            kind = "folder"
        else:
            loaders, skipped, kind = self._file(fs, path)
        if not loaders:
            if not skipped:
                raise DatasetError(
                    f"'{self._path}' is an empty {kind}; expected image files "
                    f"({', '.join(IMAGE_SUFFIXES)}) in it"
                    + (" or its subfolders." if kind == "folder" else ".")
                )
            raise DatasetError(
                f"'{self._path}' has no image files: {len(skipped)} other file(s) "
                f"({_quoted(skipped)}); expected files ending in "
                f"{', '.join(IMAGE_SUFFIXES)}."
            )
        if skipped:
            logger.info(
                "Skipped %d file(s) under '%s' that are not images by name or are "
                "hidden: %s.",
                len(skipped),
                self._path,
                _quoted(skipped),
            )
        return dict(sorted(loaders.items()))

    def _folder(self, fs: Any, root: str) -> tuple[ImageLoaders, list[str]]:
        loaders: ImageLoaders = {}
        skipped: list[str] = []
        root = root.rstrip("/")
        for full in sorted(fs.find(root, withdirs=False)):
            relative = str(PurePosixPath(full).relative_to(root))
            if _is_hidden(relative) or not _is_image_name(relative):
                skipped.append(relative)
                continue
            loaders[relative] = _file_reader(fs, full)
        return loaders, skipped

    def _file(self, fs: Any, path: str) -> tuple[ImageLoaders, list[str], str]:
        with fs.open(path, "rb") as handle:
            is_zip = zipfile.is_zipfile(handle)
        if is_zip:
            return (*self._zip(fs, path), "zip archive")
        tar = self._tar(fs, path)
        if tar is not None:
            return (*tar, "tar archive")
        # One file, named by the user: tried as an image whatever its name.
        name = PurePosixPath(path).name
        return {name: _file_reader(fs, path)}, [], "file"

    def _zip(self, fs: Any, path: str) -> tuple[ImageLoaders, list[str]]:
        try:
            archive = zipfile.ZipFile(fs.open(path, "rb"))
            members = [m for m in archive.infolist() if not m.is_dir()]
        except (zipfile.BadZipFile, OSError) as exc:
            raise DatasetError(
                f"'{self._path}' is not a readable zip archive: {exc}."
            ) from exc
        loaders: ImageLoaders = {}
        skipped: list[str] = []
        for member in members:
            name = member.filename
            if _is_hidden(name) or not _is_image_name(name):
                skipped.append(name)
                continue
            # ZipFile serialises reads of its shared file: safe from threads.
            loaders[name] = _zip_reader(archive, member)
        return loaders, sorted(skipped)

    def _tar(self, fs: Any, path: str) -> tuple[ImageLoaders, list[str]] | None:
        """The images of a tar archive, or None if ``path`` is not one."""
        handle = fs.open(path, "rb")
        try:
            archive = tarfile.open(fileobj=handle, mode="r:*")
        except tarfile.TarError:
            handle.close()
            return None
        loaders: ImageLoaders = {}
        skipped: list[str] = []
        try:
            compressed = archive.fileobj is not handle  # gzip, bz2 or xz stream
            if compressed:
                # Read in one pass: a compressed stream cannot be read from the middle.
                for member in archive:
                    if not member.isfile():
                        continue
                    name = member.name
                    if _is_hidden(name) or not _is_image_name(name):
                        skipped.append(name)
                        continue
                    extracted = archive.extractfile(member)
                    loaders[name] = _bytes_reader(
                        extracted.read() if extracted else b""
                    )
                archive.close()
                handle.close()
            else:
                lock = threading.Lock()
                for member in archive.getmembers():
                    if not member.isfile():
                        continue
                    if _is_hidden(member.name) or not _is_image_name(member.name):
                        skipped.append(member.name)
                        continue
                    loaders[member.name] = _tar_reader(archive, member, lock)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise DatasetError(
                f"'{self._path}' is a truncated or corrupt tar archive: {exc}."
            ) from exc
        return loaders, sorted(skipped)

    # ------------------------------------------------------------- the rest

    def save(self, data: Any) -> None:
        raise DatasetError(
            "ImageSourceDataset is read-only: it never writes under the images' path."
        )

    def _exists(self) -> bool:
        return self._path is not None and bool(self._fs.exists(self._fs_path))

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "path_parameter": self._path_parameter}

    def preview(self, nrows: int = 20) -> TablePreview:
        """The first ``nrows`` image names, as a kedro-viz table."""
        names = list(self.load())[:nrows] if self._exists() else []
        return TablePreview(
            {
                "index": list(range(len(names))),
                "columns": ["file"],
                "data": [[name] for name in names],
            }
        )


def _file_reader(fs: Any, path: str) -> Callable[[], bytes]:
    if fs.protocol in ("file", ("file", "local")):
        # Python's own open: fsspec's file wrapper costs as much as decoding a 32x32 JPEG.
        return lambda: Path(path).read_bytes()

    def read() -> bytes:
        with fs.open(path, "rb") as handle:
            return handle.read()

    return read


def _zip_reader(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo
) -> Callable[[], bytes]:
    def read() -> bytes:
        try:
            return archive.read(member)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
            raise OSError(f"cannot be read from the zip archive: {exc}") from exc

    return read


def _tar_reader(
    archive: tarfile.TarFile, member: tarfile.TarInfo, lock: threading.Lock
) -> Callable[[], bytes]:
    def read() -> bytes:
        with lock:  # members share one file position
            try:
                extracted = archive.extractfile(member)
                return extracted.read() if extracted else b""
            except (tarfile.TarError, EOFError) as exc:
                raise OSError(f"cannot be read from the tar archive: {exc}") from exc

    return read


def _bytes_reader(data: bytes) -> Callable[[], bytes]:
    return lambda: data
