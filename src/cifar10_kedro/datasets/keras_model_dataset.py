"""``KerasModelDataset``: a native ``.keras`` model file through Keras 3 alone.

kedro-datasets' ``TensorFlowModelDataset`` (used by ``conf/base``) imports TensorFlow; GPU
machines that carry only JAX or PyTorch use this one instead (``conf/gpu``). Loading is in
Keras' safe mode unless ``load_args`` says otherwise, so a model file never runs code.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

import fsspec
import keras
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)


class KerasModelDataset(AbstractVersionedDataset[keras.Model, keras.Model]):
    """Saves and loads a Keras 3 model in the native ``.keras`` format, on any fsspec path.

    Example catalog entry::

        trained_model:
          type: cifar10_kedro.datasets.KerasModelDataset
          filepath: data/06_models/model.keras
          versioned: true
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"safe_mode": True}

    def __init__(
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        fs_args = deepcopy(fs_args) or {}
        if protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **fs_args)
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self._save_args = dict(save_args or {})
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def load(self) -> keras.Model:
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        with tempfile.TemporaryDirectory(prefix="kedro_keras_") as tmp:
            local = f"{tmp}/model.keras"
            self._fs.get(load_path, local)
            return load_keras_file(local, load_path, self._load_args)

    def save(self, data: keras.Model) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        with tempfile.TemporaryDirectory(prefix="kedro_keras_") as tmp:
            local = f"{tmp}/model.keras"
            keras.saving.save_model(data, local, **self._save_args)
            # The complete file is written locally first, then copied in one piece.
            self._fs.put(local, save_path)
        self._invalidate_cache()

    def _exists(self) -> bool:
        try:
            load_path = get_filepath_str(self._get_load_path(), self._protocol)
        except DatasetError:
            return False
        return self._fs.exists(load_path)

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "load_args": self._load_args,
            "save_args": self._save_args,
            "version": self._version,
        }

    def _release(self) -> None:
        super()._release()
        self._invalidate_cache()

    def _invalidate_cache(self) -> None:
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))


def load_keras_file(
    local: str, shown_path: str, load_args: dict[str, Any]
) -> keras.Model:
    """Load the ``.keras`` file at ``local``; errors name ``shown_path`` and say why.

    Shared with the preflight hook, which opens ``TensorFlowModelDataset`` files the same
    way so that a bad model file fails before a run writes anything.
    """
    if not zipfile.is_zipfile(local):
        # Keras would report the file as "not found".
        raise DatasetError(
            f"'{shown_path}' is not a loadable .keras model: it is not a zip "
            "archive, as every .keras file that Keras writes is (a truncated "
            "copy, or another format saved under this name?)."
        )
    try:
        return keras.saving.load_model(local, **load_args)
    except Exception as exc:
        code = _needs_code(str(exc))
        if code and load_args.get("safe_mode", True):
            raise DatasetError(
                f"'{shown_path}' is not a loadable .keras model: it needs "
                f"Python code from outside Keras ({code}), and models are "
                "loaded with safe_mode=True, which never runs code from a "
                "model file. Use a model written by this project's training."
            ) from exc
        raise DatasetError(
            f"'{shown_path}' is not a loadable .keras model (loaded with "
            f"{load_args}): {exc}"
        ) from exc


def _needs_code(message: str) -> str | None:
    """Say what Python code a failed load asked for, if that is why it failed."""
    if "`Lambda` layer" in message:
        return "a Lambda layer's Python function"
    found = re.search(r"Could not locate (class|function) '([^']+)'", message)
    if found:
        return f"the custom {found[1]} '{found[2]}'"
    return None
