"""Batch inference speed: the inference pipeline end to end on a folder of JPEG files,
and each stage and prediction engine alone, in one run.

Usage (from the project root, after a training run of the environment, e.g.
``kedro run --env smoke``; the smoke model has the default architecture)::

    python benchmarks/inference_benchmark.py --env smoke
    python benchmarks/inference_benchmark.py --env smoke --images 2000 --folder PATH

Without ``--folder`` it writes the first ``--images`` CIFAR-10 test images (JPEG, from
the archive that CIFAR10_RAW_PATH names) as files into a temporary folder. It prints and
writes to ``--output`` (JSON):

* end to end: ``kedro run --pipeline inference`` on the folder through a KedroSession
  (listing, reading, decoding and resizing, prediction, the CSV, the contact sheet and
  the summary; model loading included, Python start-up not), in images/s; and the
  same with ``--pipeline inference_int8`` (the int8 ONNX export of the same model
  version; the benchmark runs ``kedro run --pipeline export`` first, untimed, when the
  newest export is of another version);
* listing, and reading + decoding + resizing with ``workers`` 1 and the default (one
  thread per core, but one thread for small files such as 32x32 JPEGs), for the test
  files and for camera-sized JPEGs (1024x768, made from test images);
* prediction alone (batch 1000, the better of two passes) with the model as trained
  (mixed bfloat16 where the training machine chose it), its float32 inference copy, the
  ONNX graph under onnxruntime, float32 and int8 (the export pipeline's quantization,
  calibrated on the environment's validation images), and the TensorFlow SavedModel;
* ``model.predict`` pass by pass, beside the ``predict_on_batch`` loop the project uses;
* the bound that arithmetic sets: the model's multiply-adds an image (convolutions and
  dense layers), this machine's best float32 matrix-multiply rate (NumPy's BLAS on
  every core), the images/s that rate would allow, and each engine's share of it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from kedro.framework.session import KedroSession  # noqa: E402
from kedro.framework.startup import bootstrap_project  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
BATCH = 1000
PHOTOS = 300


def exported_version(env: str) -> str | None:
    """The trained_model version of the newest int8 export, or None if none."""
    from kedro.io import DatasetError  # noqa: PLC0415

    from cifar10_kedro.pipelines.names import INT8_MODEL  # noqa: PLC0415
    from cifar10_kedro.prediction import onnx_model_version  # noqa: PLC0415

    with session(env) as s:
        try:
            return onnx_model_version(s.load_context().catalog.load(INT8_MODEL))
        except (DatasetError, ValueError):  # none, or one that predates the metadata
            return None


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was."""
    from cifar10_kedro.hardware import describe_cpu, has_native_bfloat16  # noqa: PLC0415

    return {
        **describe_cpu(),
        "avx512_bf16": has_native_bfloat16(),
        "load_average_1_5_15": list(os.getloadavg())
        if hasattr(os, "getloadavg")
        else None,
        "python": platform.python_version(),
    }


def write_test_images(archive: Path, folder: Path, count: int) -> int:
    """Write the first ``count`` test JPEGs of the CIFAR-10 image-tree archive."""
    written = 0
    with tarfile.open(archive) as tarred:
        for member in tarred:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) < 3 or parts[-3] != "test":  # noqa: PLR2004
                continue
            target = folder / parts[-2] / parts[-1]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tarred.extractfile(member).read())
            written += 1
            if written == count:
                break
    return written


def session(env: str | None, params: dict[str, Any] | None = None) -> KedroSession:
    bootstrap_project(Path.cwd())
    return KedroSession.create(project_path=Path.cwd(), env=env, runtime_params=params)


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1)


def engines(
    model: Any, tmp: Path, x_val: np.ndarray, export: Any
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Predict functions (batch 1000) of the trained model and of each export."""
    from cifar10_kedro.datasets.export_datasets import (  # noqa: PLC0415
        OnnxModelDataset,
        SavedModelDataset,
    )
    from cifar10_kedro.model_card import model_precision  # noqa: PLC0415
    from cifar10_kedro.pipelines.export.nodes import quantize_int8  # noqa: PLC0415
    from cifar10_kedro.prediction import (  # noqa: PLC0415
        float32_inference_copy,
        onnx_predictor,
        predict_probabilities,
    )

    copy = float32_inference_copy(model)
    onnx_dataset = OnnxModelDataset(filepath=str(tmp / "model.onnx"))
    onnx_dataset.save(copy)
    int8 = quantize_int8(onnx_dataset.load(), x_val, "benchmark", export)

    def onnx_runner(proto: Any) -> Callable[[np.ndarray], np.ndarray]:
        predict = onnx_predictor(proto)  # one session, made before the timing
        return lambda x: np.concatenate(
            [predict(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]
        )

    found = {
        f"keras_as_trained_{model_precision(model)}": lambda x: predict_probabilities(
            model, x, BATCH
        ),
        "keras_float32_copy": lambda x: predict_probabilities(copy, x, BATCH),
        "onnxruntime_float32": onnx_runner(onnx_dataset.load()),
        "onnxruntime_int8": onnx_runner(int8),
    }
    if _has_tensorflow():
        saved = SavedModelDataset(filepath=str(tmp / "saved_model"))
        saved.save(copy)
        restored = saved.load()
        found["tf_saved_model_float32"] = lambda x: np.concatenate(
            [
                np.asarray(restored.serve(x[i : i + BATCH]))
                for i in range(0, len(x), BATCH)
            ]
        )
    return found


def pass_rates(
    predict: Callable[[np.ndarray], Any], pixels: np.ndarray, passes: int
) -> list[float]:
    """Images/s of each of ``passes`` calls of ``predict`` on all of ``pixels``, after
    one warm-up call on a batch (tracing, allocation)."""
    predict(pixels[:BATCH])
    return [rate(len(pixels), timed(lambda: predict(pixels))[0]) for _ in range(passes)]


def multiply_adds(model: Any) -> int:
    """Return the multiply-adds of one image through ``model``'s convolutions and dense
    layers (every layer with a ``kernel``; the rest, such as BatchNorm, activations and
    pooling, costs a few per output value and is left out)."""
    total = 0
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            # Each kernel weight is used once per output position (1 for a dense layer).
            positions = int(np.prod(layer.output.shape[1:-1]))
            total += positions * int(np.prod(kernel.shape))
        elif hasattr(layer, "layers"):  # a nested model or block
            total += multiply_adds(layer)
    return total


# ONEDNN_MAX_CPU_ISA -> OpenBLAS's core type of the same vector width.
OPENBLAS_CORETYPES = {"AVX2": "Haswell", "AVX512_CORE": "SkylakeX"}


def gemm_gflop_s(size: int = 4096, repeats: int = 5, isa: str | None = None) -> float:
    """Return this machine's best float32 matrix-multiply rate, GFLOP/s (2 FLOP a
    multiply-add), over ``repeats`` NumPy products of two ``size`` x ``size`` matrices
    on every core: about the most any engine gets out of these cores' float32 units.

    Measured in a process of its own, so that no other library's threads spin on the
    cores and, with ``isa`` (an ``ONEDNN_MAX_CPU_ISA`` value), OpenBLAS takes the
    kernel of that instruction set (``OPENBLAS_CORETYPES``): the bound under the cap.
    """
    code = (
        "import time, numpy as np\n"
        "rng = np.random.default_rng(0)\n"
        f"a, b = (rng.standard_normal(({size},) * 2, dtype=np.float32) for _ in 'ab')\n"
        "a @ b\n"  # warm-up: threads, caches
        "times = []\n"
        f"for _ in range({repeats}):\n"
        "    start = time.perf_counter(); a @ b; times.append(time.perf_counter() - start)\n"
        f"print(2 * {size}**3 / min(times) / 1e9)\n"
    )
    env = {**os.environ}
    if isa is not None:
        if isa not in OPENBLAS_CORETYPES:
            raise ValueError(
                f"isa: the matmul bound knows {sorted(OPENBLAS_CORETYPES)}, got {isa!r}"
            )
        env["OPENBLAS_CORETYPE"] = OPENBLAS_CORETYPES[isa]
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return round(float(done.stdout.split()[-1]), 1)


def compute_bound(
    model: Any, predict: dict[str, float], rate_gflop_s: float
) -> dict[str, Any]:
    """The images/s that ``rate_gflop_s`` (``gemm_gflop_s()``) allows the model, and the
    share of it each prediction engine reaches."""
    macs = multiply_adds(model)
    gflop = 2 * macs / 1e9
    bound = rate_gflop_s / gflop
    return {
        "multiply_adds_per_image": macs,
        "gflop_per_image": round(gflop, 4),
        "float32_gemm_gflop_s": rate_gflop_s,
        "gemm_bound_img_s": round(bound, 1),
        "share_of_bound": {name: round(v / bound, 3) for name, v in predict.items()},
    }


def photo_rates(pixels: np.ndarray, inference: Any) -> dict[str, Any]:
    """Decoding and resizing of camera-sized JPEGs (1024x768), where decoding, not
    Python, dominates: one thread against one per core."""
    import io  # noqa: PLC0415

    from PIL import Image  # noqa: PLC0415

    from cifar10_kedro.preprocessing import prepare_many  # noqa: PLC0415

    photos = []
    for image in pixels[:PHOTOS]:
        buffer = io.BytesIO()
        big = Image.fromarray(image).resize((1024, 768), Image.Resampling.BICUBIC)
        big.save(buffer, "JPEG", quality=90)
        photos.append(buffer.getvalue())
    rates: dict[str, Any] = {"size": "1024x768", "count": len(photos)}
    for label, workers in (("workers_1", 1), ("workers_default", None)):
        seconds, _ = timed(
            lambda w=workers: prepare_many(
                [lambda d=d: d for d in photos],
                resize=inference.resize,
                max_pixels=inference.max_pixels,
                workers=w,
            )
        )
        rates[label] = rate(len(photos), seconds)
    return rates


def _has_tensorflow() -> bool:
    from importlib.util import find_spec  # noqa: PLC0415

    return find_spec("tensorflow") is not None


def main(argv: list[str] | None = None) -> dict[str, Any]:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--env", default=None, help="configuration environment (default: base)"
    )
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument(
        "--folder", type=Path, help="images to use instead of the test set"
    )
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument(
        "--output",
        type=Path,
        default=PROJECT / "benchmarks" / "results" / "inference.json",
    )
    args = parser.parse_args(argv)
    os.chdir(args.project)
    results: dict[str, Any] = {
        "command": "python benchmarks/inference_benchmark.py "
        + " ".join(argv or sys.argv[1:]),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
    }
    with tempfile.TemporaryDirectory(prefix="inference_benchmark_") as tmp_name:
        tmp = Path(tmp_name)
        folder = args.folder
        if folder is None:
            archive = Path(os.environ.get("CIFAR10_RAW_PATH", ""))
            if not archive.is_file():
                parser.error(
                    "set CIFAR10_RAW_PATH to the CIFAR-10 JPEG archive, or give --folder"
                )
            folder = tmp / "images"
            write_test_images(archive, folder, args.images)
        # Before Keras is imported: no other library's threads spin on the cores yet.
        rate_gflop_s = gemm_gflop_s()

        from cifar10_kedro.datasets.image_source_dataset import (  # noqa: PLC0415
            ImageSourceDataset,
        )
        from cifar10_kedro.model_version import resolve_model_version  # noqa: PLC0415
        from cifar10_kedro.pipelines.export.params import (  # noqa: PLC0415
            ExportParams,
        )
        from cifar10_kedro.pipelines.inference.params import (  # noqa: PLC0415
            InferenceParams,
        )
        from cifar10_kedro.preprocessing import prepare_many  # noqa: PLC0415

        seconds, loaders = timed(ImageSourceDataset(path=str(folder)).load)
        count = len(loaders)
        results["images"] = count
        results["listing_img_s"] = rate(count, seconds)

        with session(args.env) as s:
            context = s.load_context()
            inference = context.params["inference"]
            if isinstance(inference, dict):  # not yet validated into its model
                inference = InferenceParams.model_validate(inference)
            export = context.params["export"]
            if isinstance(export, dict):
                export = ExportParams.model_validate(export)
            model = context.catalog.load("trained_model")
            x_val = context.catalog.load("x_val")
            results["model_version"] = resolve_model_version(context.catalog)

        decoded = {}
        for label, workers in (("workers_1", 1), ("workers_default", None)):
            seconds, prepared = timed(
                lambda w=workers: prepare_many(
                    list(loaders.values()),
                    resize=inference.resize,
                    max_pixels=inference.max_pixels,
                    workers=w,
                )
            )
            decoded[label] = rate(count, seconds)
        results["read_decode_resize_img_s"] = decoded
        pixels = np.stack([p.pixels for p in prepared])
        results["photos_decode_resize_img_s"] = photo_rates(pixels, inference)

        predict = {}
        for name, function in engines(model, tmp, x_val, export).items():
            # The better of two passes: on a shared 2-core machine one pass can lose a
            # third of its speed to a neighbour.
            predict[name] = max(pass_rates(function, pixels, 2))
        results["predict_img_s_batch_1000"] = predict
        # Keras' own loop, which the project does not use (predict_probabilities calls
        # predict_on_batch): on few cores its tf.data input pipeline competes with the
        # model, and some passes run much slower than others.
        results["keras_model_predict_passes_img_s"] = pass_rates(
            lambda x: model.predict(x, batch_size=BATCH, verbose=0), pixels, 4
        )
        results["compute"] = compute_bound(model, predict, rate_gflop_s)

        params = {"inference": {"input_path": str(folder)}}
        with session(args.env, params) as s:
            seconds, _ = timed(lambda: s.run(pipeline_names=["inference"]))
        results["end_to_end_s"] = round(seconds, 2)
        results["end_to_end_img_s"] = rate(count, seconds)

        if exported_version(args.env) != results["model_version"]:
            with session(args.env) as s:
                s.run(pipeline_names=["export"])
        with session(args.env, params) as s:
            seconds, _ = timed(lambda: s.run(pipeline_names=["inference_int8"]))
        results["end_to_end_int8_s"] = round(seconds, 2)
        results["end_to_end_int8_img_s"] = rate(count, seconds)

    results["machine"]["load_average_after"] = list(os.getloadavg())
    print(f"images: {count}")
    for key in ("end_to_end", "end_to_end_int8"):
        print(f"{key}_img_s: {results[f'{key}_img_s']:,.0f} ({results[f'{key}_s']} s)")
    print(f"listing_img_s: {results['listing_img_s']:,.0f}")
    for label, value in decoded.items():
        print(f"read_decode_resize_img_s[{label}]: {value:,.0f}")
    photos = results["photos_decode_resize_img_s"]
    for label in (k for k in photos if k.startswith("workers")):
        print(f"photos_1024x768_decode_resize_img_s[{label}]: {photos[label]:,.0f}")
    for name, value in predict.items():
        print(f"predict_img_s[{name}]: {value:,.0f}")
    passes = ", ".join(f"{v:,.0f}" for v in results["keras_model_predict_passes_img_s"])
    print(f"keras_model_predict_passes_img_s: {passes}")
    compute = results["compute"]
    for key in ("gflop_per_image", "float32_gemm_gflop_s", "gemm_bound_img_s"):
        print(f"{key}: {compute[key]:,}")
    print(f"machine: {json.dumps(results['machine'])}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {args.output}")
    return results


if __name__ == "__main__":
    main()
