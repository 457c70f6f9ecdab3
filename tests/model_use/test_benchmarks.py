"""The inference and service benchmarks run and write every figure (tiny sizes)."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests import processes
from tests.conftest import PROJECT_ROOT
from tests.model_use.conftest import EXPORTS
from tests.pipelines.test_pipelines import versions

pytestmark = pytest.mark.slow


def run(script: str, project, archive, *args: str) -> str:
    completed = processes.run(
        [sys.executable, str(PROJECT_ROOT / "benchmarks" / script), *args],
        cwd=project,
        env=processes.environment(CIFAR10_RAW_PATH=str(archive)),
        timeout=600,
    )
    assert completed.returncode == 0, (
        completed.stdout[-3000:] + completed.stderr[-3000:]
    )
    return completed.stdout


def test_inference_benchmark(trained_project, exported, cifar10_subset, tmp_path):
    output = tmp_path / "inference.json"
    out = run(
        "inference_benchmark.py",
        trained_project,
        cifar10_subset,
        "--env",
        "smoke",
        "--images",
        "300",
        "--project",
        str(trained_project),
        "--output",
        str(output),
    )
    figures = json.loads(output.read_text())
    assert figures["images"] == 300
    assert figures["end_to_end_img_s"] > 0 and "end_to_end_img_s" in out
    # The same with the int8 export of the same version (`exported` made it).
    assert figures["end_to_end_int8_img_s"] > 0 and "end_to_end_int8_img_s" in out
    assert len(versions(exported, f"{EXPORTS}/model.int8.onnx")) == 1
    assert all(v > 0 for v in figures["read_decode_resize_img_s"].values())
    engines = set(figures["predict_img_s_batch_1000"])
    # The model as trained, in the precision `auto` chose on this machine.
    (trained,) = (name for name in engines if name.startswith("keras_as_trained_"))
    assert trained.removeprefix("keras_as_trained_") in {"float32", "mixed_bfloat16"}
    assert engines - {trained} == {
        "keras_float32_copy",
        "onnxruntime_float32",
        "onnxruntime_int8",
        "tf_saved_model_float32",
    }
    assert all(rate > 0 for rate in figures["predict_img_s_batch_1000"].values())
    assert figures["machine"]["cores"] == os.cpu_count()
    assert len(figures["keras_model_predict_passes_img_s"]) == 4
    assert "keras_model_predict_passes_img_s" in out
    compute = figures["compute"]
    assert compute["float32_gemm_gflop_s"] > 0 and "gemm_bound_img_s" in out
    assert compute["gemm_bound_img_s"] == pytest.approx(
        compute["float32_gemm_gflop_s"] / compute["gflop_per_image"], rel=1e-2
    )
    assert set(compute["share_of_bound"]) == set(figures["predict_img_s_batch_1000"])


def test_service_benchmark(trained_project, cifar10_subset, tmp_path):
    output = tmp_path / "service.json"
    out = run(
        "service_benchmark.py",
        trained_project,
        cifar10_subset,
        "--env",
        "smoke",
        "--requests",
        "30",
        "--seconds",
        "3",
        "--clients",
        "2",
        "--batch",
        "8",
        "--project",
        str(trained_project),
        "--output",
        str(output),
    )
    figures = json.loads(output.read_text())
    assert figures["one_image_latency"]["p50_ms"] > 0 and "p99_ms" in out
    assert figures["concurrent_batches"]["images"] > 0
    assert figures["concurrent_batches"]["img_s"] > 0
