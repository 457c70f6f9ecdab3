"""Nodes that classify a user's image files with the trained model."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass

import keras
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cifar10_kedro.prediction import (
    ModelProto,
    check_model,
    predict_probabilities,
    top_classes,
)
from cifar10_kedro.preprocessing import (
    SIZE,
    PreparedImage,
    UnreadableImageError,
    prepare_many,
)

from .params import InferenceParams

logger = logging.getLogger(__name__)

# Files prepared between two checks of on_error=fail and two progress lines.
_CHUNK = 2048


class ImageReadError(ValueError):
    """A file under inference.input_path could not be read, with on_error: fail."""


@dataclass(frozen=True)
class PreparedBatch:
    """Every file of a batch: what the model sees of those that could be read.

    ``table`` has one row per file, in name order: file, width, height, format and
    error ("" when fine); ``pixels`` holds the (readable files, 32, 32, 3) uint8
    images of the rows whose error is "", in the same order.
    """

    table: pd.DataFrame
    pixels: np.ndarray

    @property
    def readable(self) -> np.ndarray:
        return (self.table["error"] == "").to_numpy()


def _reason(error: Exception) -> str:
    reason = getattr(error, "reason", None) or str(error) or type(error).__name__
    return reason.rstrip(".")


def prepare_images(
    images: dict[str, Callable[[], bytes]], params: InferenceParams
) -> PreparedBatch:
    """Return every file's 32x32x3 uint8 image, or the reason it cannot be read.

    Files are read, decoded and resized (``preprocessing.prepare_image``, with
    ``params.resize``) on one thread per core. An unreadable file is logged as a
    warning and kept with its reason, unless ``params.on_error`` is "fail": then the
    first one (in name order) stops the run with an ``ImageReadError`` naming it.
    """
    names = list(images)
    rows: list[dict[str, object]] = []
    pixels: list[np.ndarray] = []
    for start in range(0, len(names), _CHUNK):
        chunk = names[start : start + _CHUNK]
        results = prepare_many(
            [images[name] for name in chunk],
            resize=params.resize,
            max_pixels=params.max_pixels,
            workers=params.workers,
        )
        for name, result in zip(chunk, results, strict=True):
            if isinstance(result, PreparedImage):
                pixels.append(result.pixels)
                rows.append(
                    {
                        "file": name,
                        "width": result.width,
                        "height": result.height,
                        "format": result.format,
                        "error": "",
                    }
                )
                continue
            reason = _reason(result)
            if params.on_error == "fail":
                raise ImageReadError(
                    f"'{name}' under '{params.input_path}' cannot be read: {reason}. "
                    "inference.on_error is 'fail'; with 'skip' the file's row would "
                    "carry this reason and the other files would go on."
                )
            logger.warning("Cannot read '%s': %s; recorded in its row.", name, reason)
            rows.append(
                {
                    "file": name,
                    "width": None,
                    "height": None,
                    "format": "",
                    "error": reason,
                }
            )
        if len(names) > _CHUNK:
            logger.info("Prepared %d of %d files.", len(rows), len(names))
    table = pd.DataFrame(rows, columns=["file", "width", "height", "format", "error"])
    table = table.astype({"width": "Int64", "height": "Int64"})
    stacked = (
        np.stack(pixels) if pixels else np.zeros((0, SIZE, SIZE, 3), dtype=np.uint8)
    )
    return PreparedBatch(table=table, pixels=stacked)


def classify_images(
    model: keras.Model | ModelProto,
    batch: PreparedBatch,
    class_names: list[str],
    model_version: str,
    params: InferenceParams,
) -> pd.DataFrame:
    """Return one row per file: file, predicted_class, confidence, the top
    ``params.top_k`` classes with their probabilities (top_1_class,
    top_1_probability, ...), the image's width and height (as displayed), error
    ("" when fine) and model_version.

    The model predicts exactly as reporting's plain predictions do; ``model`` may
    also be the int8 ONNX export (``inference_int8``), run by onnxruntime.
    """
    check_model(model, class_names)
    probabilities = predict_probabilities(model, batch.pixels, params.batch_size)
    best = top_classes(probabilities, class_names, params.top_k)
    k = min(params.top_k, len(class_names))

    table = batch.table
    n = len(table)
    readable = batch.readable
    predicted = np.full(n, "", dtype=object)
    confidence = np.full(n, np.nan)
    top_names = [np.full(n, "", dtype=object) for _ in range(k)]
    top_probs = [np.full(n, np.nan) for _ in range(k)]
    rows = np.flatnonzero(readable)
    for row, ranked in zip(rows, best, strict=True):
        predicted[row], confidence[row] = ranked[0]
        for i, (name, probability) in enumerate(ranked):
            top_names[i][row], top_probs[i][row] = name, probability

    columns: dict[str, object] = {
        "file": table["file"],
        "predicted_class": predicted,
        "confidence": confidence,
    }
    for i in range(k):
        columns[f"top_{i + 1}_class"] = top_names[i]
        columns[f"top_{i + 1}_probability"] = top_probs[i]
    columns |= {
        "width": table["width"],
        "height": table["height"],
        "error": table["error"],
        "model_version": model_version,
    }
    return pd.DataFrame(columns)


def _errors(predictions: pd.DataFrame) -> pd.Series:
    # Read back from CSV, an empty error is NaN.
    return pd.Series(
        ["" if pd.isna(e) else str(e) for e in predictions["error"]],
        index=predictions.index,
    )


def plot_contact_sheet(
    batch: PreparedBatch, predictions: pd.DataFrame, params: InferenceParams
) -> Figure:
    """Return a sheet of the first ``contact_sheet.max_images`` files as the model saw
    them, each with its predicted class and confidence; predictions below
    ``contact_sheet.low_confidence`` are framed in red and marked "?", unreadable
    files shown as grey tiles."""
    sheet = params.contact_sheet
    shown = min(len(predictions), sheet.max_images)
    columns = min(sheet.columns, max(shown, 1))
    rows = max(1, -(-shown // columns))
    tile, gap, label = 64, 14, 30  # pixels: image, margin, caption
    width = columns * (tile + gap) + gap
    height = rows * (tile + gap + label) + gap
    mosaic = np.full((height, width, 3), 255, dtype=np.uint8)

    errors = _errors(predictions)
    pixel_index = np.cumsum((errors == "").to_numpy()) - 1
    dpi = 100
    fig = plt.figure(figsize=(width / dpi, (height + 40) / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, height / (height + 40)))
    ax.axis("off")
    low = 0
    for i in range(shown):
        r, c = divmod(i, columns)
        x, y = gap + c * (tile + gap), gap + r * (tile + gap + label)
        row = predictions.iloc[i]
        if errors.iloc[i]:
            mosaic[y : y + tile, x : x + tile] = 200
            caption, colour = "unreadable", "dimgrey"
        else:
            image = batch.pixels[pixel_index[i]]
            mosaic[y : y + tile, x : x + tile] = image.repeat(2, 0).repeat(2, 1)
            confident = row["confidence"] >= sheet.low_confidence
            low += not confident
            mark = "" if confident else "? "
            caption = f"{mark}{row['predicted_class']} {row['confidence']:.0%}"
            colour = "black" if confident else "red"
            if not confident:
                ax.add_patch(
                    Rectangle(
                        (x - 2.5, y - 2.5),
                        tile + 4,
                        tile + 4,
                        fill=False,
                        edgecolor="red",
                        linewidth=2,
                    )
                )
        name = str(row["file"])
        name = name if len(name) <= 14 else "…" + name[-13:]  # noqa: PLR2004
        ax.text(
            x + tile / 2,
            y + tile + 4,
            caption,
            ha="center",
            va="top",
            fontsize=7,
            color=colour,
        )
        ax.text(
            x + tile / 2,
            y + tile + 16,
            name,
            ha="center",
            va="top",
            fontsize=6,
            color="dimgrey",
        )
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    version = predictions["model_version"].iloc[0] if len(predictions) else "?"
    fig.suptitle(
        f"{shown} of {len(predictions)} files as the model saw them (model {version}); "
        f"red, '?': confidence below {sheet.low_confidence:.0%} ({low} shown)",
        fontsize=8,
        y=1 - 12 / (height + 40),
    )
    return fig


def summarize_inference(
    predictions: pd.DataFrame, params: InferenceParams
) -> dict[str, object]:
    """Return (and log) the counts of a batch: files, classified, unreadable, below
    the low-confidence threshold, and per predicted class."""
    errors = _errors(predictions)
    ok = predictions[errors == ""]
    low = int((ok["confidence"] < params.contact_sheet.low_confidence).sum())
    summary: dict[str, object] = {
        "input_path": params.input_path,
        "model_version": (
            str(predictions["model_version"].iloc[0]) if len(predictions) else None
        ),
        "resize": params.resize,
        "files": len(predictions),
        "classified": len(ok),
        "unreadable": int((errors != "").sum()),
        "low_confidence": low,
        "low_confidence_threshold": params.contact_sheet.low_confidence,
        "per_class": {
            str(k): int(v)
            for k, v in ok["predicted_class"].value_counts().sort_index().items()
        },
    }
    logger.info(
        "Inference on '%s' done: %d file(s), %d classified, %d unreadable, %d below "
        "%.0f%% confidence (inference_predictions has one row per file).",
        params.input_path,
        summary["files"],
        summary["classified"],
        summary["unreadable"],
        low,
        100 * params.contact_sheet.low_confidence,
    )
    return summary


# The MLflow model of a training run (``create_request_pipeline``): a table of images in,
# a table of predictions out.


def read_request(request: pd.DataFrame) -> dict[str, Callable[[], bytes]]:
    """Return a reader of each row's image, by name (``file``, or ``row <n>``).

    The request has a column ``image`` (each image file's bytes in base64) and
    optionally ``file``. A value that is not base64 gives a reader that raises, so
    that its row carries the reason, as an unreadable file's does.
    """
    if "image" not in request.columns:
        raise ValueError(
            f"The request has the columns {list(request.columns)}; expected 'image' "
            "(each image file's bytes, base64-encoded) and optionally 'file'."
        )
    names = (
        request["file"].fillna("").astype(str).tolist()
        if "file" in request.columns
        else [""] * len(request)
    )
    readers: dict[str, Callable[[], bytes]] = {}
    for row, (name, value) in enumerate(zip(names, request["image"], strict=True)):
        key = name or f"row {row}"
        if key in readers:  # two rows of one name keep their own results
            key = f"{key} (row {row})"
        readers[key] = _decoder(value)
    return readers


def _decoder(value: object) -> Callable[[], bytes]:
    def load() -> bytes:
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        try:
            return base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UnreadableImageError(f"'image' is not base64: {exc}") from None

    return load


def classify_request(
    model: keras.Model,
    batch: PreparedBatch,
    class_names: list[str],
    params: InferenceParams,
) -> pd.DataFrame:
    """Return ``classify_images``' table without ``model_version``: the registered
    model's version is the one the caller asked for."""
    table = classify_images(model, batch, class_names, "", params)
    return table.drop(columns="model_version")
