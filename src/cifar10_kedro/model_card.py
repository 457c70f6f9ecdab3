"""The model card: what a user of an exported or served model needs to know about it.

Built by the export pipeline (with the test metrics of every format) and by the HTTP
service (``GET /v1/model``), from the same function.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from cifar10_kedro.prediction import INPUT_NAME
from cifar10_kedro.preprocessing import (
    BACKGROUND,
    PAD_FILL,
    SIZE,
    SUPPORTED_TEXT,
)

CARD_FORMAT = 1


def _versions(*packages: str) -> dict[str, str]:
    found = {}
    for package in packages:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def model_precision(model: Any) -> str:
    """The dtype policy of the layers with weights ('float32', 'mixed_bfloat16', ...)."""
    names = {layer.dtype_policy.name for layer in model.layers if layer.weights}
    if not names:
        return "float32"
    return names.pop() if len(names) == 1 else "mixed: " + ", ".join(sorted(names))


def preprocessing_spec(resize: str, max_pixels: int) -> dict[str, Any]:
    """How any image file becomes the model's input (``preprocessing.prepare_image``)."""
    return {
        "function": "cifar10_kedro.preprocessing.prepare_image",
        "formats": SUPPORTED_TEXT,
        "steps": [
            "decode the first frame; apply the EXIF orientation",
            f"convert to 8-bit RGB: transparency over RGB {list(BACKGROUND)}, "
            "16-bit samples divided by 257",
            f"images already {SIZE}x{SIZE} are used as decoded; others are resized "
            f"to {SIZE}x{SIZE} with a Lanczos (antialiasing) filter by the resize "
            "policy",
            "no scaling or normalisation: the model takes uint8 0..255 and rescales "
            "inside",
        ],
        "resize": resize,
        "resize_policies": {
            "crop": "the largest centred square, resized",
            "pad": f"the whole image fitted into a square on RGB {list(PAD_FILL)}",
            "stretch": "the whole image resized to a square (distorted)",
        },
        "max_pixels": max_pixels,
    }


def build_model_card(
    *,
    model: Any,
    class_names: list[str],
    model_version: str,
    training_config: dict[str, Any],
    resize: str,
    max_pixels: int,
    test_metrics: dict[str, Any] | None = None,
    exports: dict[str, Any] | None = None,
    training_plan: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the model card as a JSON-ready dict.

    ``training_config`` is the model's own (``describe_training``'s output, saved with
    the model under the same version): its fingerprint identifies the training.
    ``training_plan`` (``plan_training``'s, of the same version) says how many epochs
    trained and why: the configured epochs, the time budget, the probe's speed and
    the machine; None for a model saved without one.
    """
    return {
        "card_format": CARD_FORMAT,
        "model_version": model_version,
        "architecture": model.name,
        "parameters": int(model.count_params()),
        "trained_precision": model_precision(model),
        "class_names": list(class_names),
        "input": {
            "name": INPUT_NAME,
            "dtype": "uint8",
            "shape": [None, SIZE, SIZE, 3],
            "layout": "NHWC",
            "channels": "RGB",
            "range": [0, 255],
        },
        "output": {
            "dtype": "float32",
            "shape": [None, len(class_names)],
            "meaning": "class probabilities (softmax), in the order of class_names",
        },
        "preprocessing": preprocessing_spec(resize, max_pixels),
        "training": {
            # SHA-256 of what determined the training: the model_training parameters,
            # the precision, a digest of the data, the package/Keras versions, backend.
            "fingerprint": training_config["fingerprint"],
            "precision": training_config["precision"],
            "versions": training_config["versions"],
        },
        "training_plan": training_plan,
        "exports": exports or {},
        "test_metrics": test_metrics,
        "software": _versions(
            "cifar10_kedro",
            "keras",
            "tensorflow",
            "onnx",
            "onnxruntime",
            "tf2onnx",
            "pillow",
        ),
    }
