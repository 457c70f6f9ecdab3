"""Datasets for the exported model: ONNX and TensorFlow SavedModel, versioned, on fsspec.

Both save a Keras model through Keras' own exporter (``model.export``) into a local
temporary folder first and copy the finished result into place, so that a failed
export never leaves a partial file under the catalog's path.
"""

from __future__ import annotations

import json
import tempfile
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    get_filepath_str,
    get_protocol_and_path,
)
from kedro_datasets._typing import JSONPreview

# Names the exported ONNX graph is given (Keras/tf2onnx call them unk__87, Identity:0).
ONNX_BATCH_DIM = "batch"
ONNX_OUTPUT_NAME = "probabilities"


class _FsspecVersionedDataset(AbstractVersionedDataset):
    def __init__(
        self,
        *,
        filepath: str,
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
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def _load_path(self) -> str:
        return get_filepath_str(self._get_load_path(), self._protocol)

    def _save_path(self) -> str:
        return get_filepath_str(self._get_save_path(), self._protocol)

    def _exists(self) -> bool:
        try:
            return bool(self._fs.exists(self._load_path()))
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "version": self._version,
        }

    def _release(self) -> None:
        super()._release()
        self._fs.invalidate_cache(get_filepath_str(self._filepath, self._protocol))


def tidy_onnx_names(proto: Any) -> Any:
    """Name the batch dimension and the single output of an exported graph; return it."""
    graph = proto.graph
    for value in (*graph.input, *graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_param = ONNX_BATCH_DIM
    if len(graph.output) == 1:
        old = graph.output[0].name
        for node in graph.node:
            node.output[:] = [ONNX_OUTPUT_NAME if o == old else o for o in node.output]
            node.input[:] = [ONNX_OUTPUT_NAME if i == old else i for i in node.input]
        graph.output[0].name = ONNX_OUTPUT_NAME
    return proto


class OnnxModelDataset(_FsspecVersionedDataset):
    """Saves a Keras model as an ONNX file (or an ``onnx.ModelProto`` as it is);
    loads the ``onnx.ModelProto``.

    A Keras model is exported with ``model.export(format="onnx")`` (tf2onnx under
    TensorFlow), its batch dimension named ``batch`` and its output ``probabilities``.
    The model must be float32 and free of random layers: export
    ``prediction.float32_inference_copy(model)``.

    Example catalog entry::

        onnx_model:
          type: cifar10_kedro.datasets.OnnxModelDataset
          filepath: data/06_models/exports/model.onnx
          versioned: true
    """

    def __init__(
        self,
        *,
        filepath: str,
        opset_version: int | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._opset_version = opset_version
        super().__init__(
            filepath=filepath,
            version=version,
            credentials=credentials,
            fs_args=fs_args,
            metadata=metadata,
        )

    def load(self) -> Any:
        import onnx  # noqa: PLC0415 - only the export and its users need it

        with self._fs.open(self._load_path(), "rb") as handle:
            return onnx.load_model_from_string(handle.read())

    def save(self, data: Any) -> None:
        import onnx  # noqa: PLC0415

        if isinstance(data, onnx.ModelProto):
            proto = data
        else:
            with tempfile.TemporaryDirectory(prefix="kedro_onnx_") as tmp:
                local = str(Path(tmp) / "model.onnx")
                data.export(
                    local,
                    format="onnx",
                    verbose=False,
                    opset_version=self._opset_version,
                )
                proto = tidy_onnx_names(onnx.load(local))
        onnx.checker.check_model(proto)
        with self._fs.open(self._save_path(), "wb") as handle:
            handle.write(proto.SerializeToString())

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "opset_version": self._opset_version}

    def preview(self) -> JSONPreview:
        """The graph's inputs, outputs and opset, as JSON for kedro-viz."""
        if not self._exists():
            return JSONPreview("{}")
        proto = self.load()

        def spec(value: Any) -> dict[str, Any]:
            tensor = value.type.tensor_type
            return {
                "name": value.name,
                "elem_type": tensor.elem_type,
                "shape": [d.dim_param or d.dim_value for d in tensor.shape.dim],
            }

        return JSONPreview(
            json.dumps(
                {
                    "inputs": [spec(v) for v in proto.graph.input],
                    "outputs": [spec(v) for v in proto.graph.output],
                    "opset": {
                        o.domain or "ai.onnx": o.version for o in proto.opset_import
                    },
                    "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
                }
            )
        )


class SavedModelDataset(_FsspecVersionedDataset):
    """Saves a Keras model as a TensorFlow SavedModel folder (``model.export``, the
    ``serve`` endpoint); loads it with ``tf.saved_model.load``. Needs TensorFlow.

    Example catalog entry::

        saved_model:
          type: cifar10_kedro.datasets.SavedModelDataset
          filepath: data/06_models/exports/saved_model
          versioned: true
    """

    def load(self) -> Any:
        import tensorflow as tf  # noqa: PLC0415

        path = self._load_path()
        if self._protocol == "file":
            return tf.saved_model.load(path)
        with tempfile.TemporaryDirectory(prefix="kedro_saved_model_") as tmp:
            local = str(Path(tmp) / "saved_model")
            self._fs.get(path, local, recursive=True)
            return tf.saved_model.load(local)

    def save(self, data: Any) -> None:
        path = self._save_path()
        with tempfile.TemporaryDirectory(prefix="kedro_saved_model_") as tmp:
            local = Path(tmp) / PurePosixPath(path).name
            data.export(str(local), format="tf_saved_model", verbose=False)
            # Only a finished export is copied under the (new) version's path.
            self._fs.put(str(local), path, recursive=True)
