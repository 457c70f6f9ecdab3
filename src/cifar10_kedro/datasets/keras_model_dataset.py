"""``KerasModelDataset``: a native ``.keras`` model file through Keras 3 alone.

Keras 3 writes and reads ``.keras`` files under any backend; kedro-datasets'
``TensorFlowModelDataset`` imports TensorFlow, which the GPU machines (JAX) do not have.
Loading is in Keras' safe mode unless ``load_args`` says otherwise, so a model file
never runs code.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from copy import deepcopy
from pathlib import Path, PurePosixPath
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
from kedro_datasets._typing import JSONPreview


class KerasModelDataset(AbstractVersionedDataset[keras.Model, keras.Model]):
    """Saves and loads a Keras 3 model in the native ``.keras`` format, on any fsspec path.

    Example catalog entry::

        trained_model:
          type: cifar10_kedro.datasets.KerasModelDataset
          filepath: data/06_models/model.keras
          versioned: true
    """

    DEFAULT_LOAD_ARGS: dict[str, Any] = {"safe_mode": True, "compile": False}

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str | os.PathLike,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset of the model at ``filepath``.

        Args:
            filepath: where the ``.keras`` file is, with a protocol prefix for
                remote filesystems (``s3://``, ``gs://``, ...).
            load_args: passed to ``keras.saving.load_model`` (safe mode and no
                compilation by default).
            save_args: passed to ``keras.saving.save_model``.
            version: Kedro's version to load and save.
            credentials: passed to the fsspec filesystem.
            fs_args: extra arguments of the fsspec filesystem.
            metadata: free-form metadata (kedro-viz reads its own keys).
        """
        protocol, path = get_protocol_and_path(os.fspath(filepath), version)
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

    def at_version(self, version: str) -> KerasModelDataset:
        """Return the file of ``version`` as a dataset of its own, unversioned (what
        an MLflow model stores as its artifact)."""
        path = get_filepath_str(self._get_versioned_path(version), self._protocol)
        return KerasModelDataset(
            filepath=path, load_args=self._load_args, metadata=self.metadata
        )

    def load(self) -> keras.Model:
        with self._local_copy() as (local, shown):
            return load_keras_file(local, shown, self._load_args)

    def check(self) -> dict[str, Any]:
        """Check, without building the model, that the file to load is a readable
        ``.keras`` archive that needs no Python code; return its configuration.

        Raises ``DatasetError`` naming the file and the reason otherwise.
        """
        with self._local_copy() as (local, shown):
            return inspect_keras_file(local, shown, self._load_args)

    def save(self, data: keras.Model) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        if self._protocol == "file":
            # Written beside the target and renamed: never seen half-written.
            target = Path(save_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".keras")
            os.close(fd)
            try:
                keras.saving.save_model(data, tmp, **self._save_args)
                os.replace(tmp, target)
            finally:
                Path(tmp).unlink(missing_ok=True)
        else:
            with tempfile.TemporaryDirectory(prefix="kedro_keras_") as tmp:
                local = f"{tmp}/model.keras"
                keras.saving.save_model(data, local, **self._save_args)
                self._fs.put(local, save_path)
        self._invalidate_cache()

    def preview(self) -> JSONPreview:
        """Return, for kedro-viz, the model's layers and parameter counts, read from
        the file's configuration without building the model."""
        config = self.check()
        layers = config.get("config", {}).get("layers", [])
        return JSONPreview(
            json.dumps(
                {
                    "class": config.get("class_name"),
                    "name": config.get("config", {}).get("name"),
                    "layers": [
                        f"{layer.get('class_name')} {layer.get('config', {}).get('name', '')}"
                        for layer in layers
                    ],
                }
            )
        )

    def _local_copy(self) -> Any:
        """Return a context giving (local path of the file to load, its shown name)."""
        load_path = get_filepath_str(self._get_load_path(), self._protocol)
        return _LocalCopy(self._fs, self._protocol, load_path)

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


class _LocalCopy:
    """A local file path for a model file on any filesystem (the file itself when
    local; a temporary copy otherwise)."""

    def __init__(self, fs: Any, protocol: str, path: str) -> None:
        self._fs, self._protocol, self._path = fs, protocol, path
        self._tmp: tempfile.TemporaryDirectory | None = None

    def __enter__(self) -> tuple[str, str]:
        if self._protocol == "file":
            return self._path, self._path
        self._tmp = tempfile.TemporaryDirectory(prefix="kedro_keras_")
        local = f"{self._tmp.name}/model.keras"
        self._fs.get(self._path, local)
        return local, f"{self._protocol}://{self._path}"

    def __exit__(self, *exc: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _not_a_model(shown_path: str, reason: str) -> DatasetError:
    return DatasetError(f"'{shown_path}' is not a loadable .keras model: {reason}")


def inspect_keras_file(
    local: str, shown_path: str, load_args: dict[str, Any]
) -> dict[str, Any]:
    """Return the model configuration of the ``.keras`` file at ``local``, after
    checking that it is a whole archive and, in safe mode, that it needs no code.

    Errors name ``shown_path`` and say why.
    """
    if not zipfile.is_zipfile(local):
        # Keras would report the file as "not found".
        raise _not_a_model(
            shown_path,
            "it is not a zip archive, as every .keras file that Keras writes is (a "
            "truncated copy, or another format saved under this name?).",
        )
    try:
        with zipfile.ZipFile(local) as archive:
            broken = archive.testzip()
            if broken is not None:
                raise _not_a_model(shown_path, f"its member '{broken}' is corrupt.")
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise _not_a_model(shown_path, f"{exc}.") from exc
    if load_args.get("safe_mode", True):
        code = _code_needed(config)
        if code:
            raise _not_a_model(shown_path, _SAFE_MODE.format(code=code))
    return config


_SAFE_MODE = (
    "it needs Python code from outside Keras ({code}), and models are loaded with "
    "safe_mode=True, which never runs code from a model file. Use a model written by "
    "this project's training."
)


def _code_needed(config: Any) -> str | None:
    """Return what Python code the serialized ``config`` asks for, if any: a Lambda
    layer, or a class that neither Keras nor a registered package provides."""
    if isinstance(config, list):
        return next((c for c in map(_code_needed, config) if c), None)
    if not isinstance(config, dict):
        return None
    name = config.get("class_name")
    if name in {"Lambda", "__lambda__"}:
        return "a Lambda layer's Python function"
    if isinstance(name, str) and "module" in config:
        module = config.get("module") or ""
        registered = config.get("registered_name")
        known = (
            module == "keras"
            or module.startswith("keras.")
            or (
                registered
                and keras.saving.get_registered_object(registered) is not None
            )
        )
        if not known:
            return f"the custom class '{registered or name}'"
    return next((c for c in map(_code_needed, config.values()) if c), None)


def load_keras_file(
    local: str, shown_path: str, load_args: dict[str, Any]
) -> keras.Model:
    """Load the ``.keras`` file at ``local``; errors name ``shown_path`` and say why."""
    inspect_keras_file(local, shown_path, load_args)
    try:
        return keras.saving.load_model(local, **load_args)
    except Exception as exc:
        code = _code_needed_from_message(str(exc))
        if code and load_args.get("safe_mode", True):
            raise _not_a_model(shown_path, _SAFE_MODE.format(code=code)) from exc
        raise _not_a_model(shown_path, f"(loaded with {load_args}) {exc}") from exc


def _code_needed_from_message(message: str) -> str | None:
    """Say what Python code a failed load asked for, if that is why it failed."""
    if "`Lambda` layer" in message:
        return "a Lambda layer's Python function"
    found = re.search(r"Could not locate (class|function) '([^']+)'", message)
    if found:
        return f"the custom {found[1]} '{found[2]}'"
    return None
