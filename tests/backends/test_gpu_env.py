"""conf/gpu on a machine with JAX and no TensorFlow, tried on this CPU with a tiny budget."""

from __future__ import annotations

import json
import os

import pytest

from tests.pipelines.test_pipelines import latest, make_project_copy
from tests.processes import environment, kedro

pytest.importorskip("jax")


@pytest.mark.slow
def test_gpu_environment_runs_end_to_end_under_jax_without_tensorflow(
    tmp_path, cifar10_subset
):
    project = make_project_copy(tmp_path / "project")
    # GPU machines carry JAX but no TensorFlow: make `import tensorflow` fail here too.
    blocker = tmp_path / "no_tensorflow" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ImportError('TensorFlow is not installed on this machine')\n"
    )
    env = environment(
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join(
            [str(blocker.parent), os.environ.get("PYTHONPATH", "")]
        ),
        CIFAR10_RAW_PATH=str(cifar10_subset),
    )
    params = ",".join(
        [
            "data_ingestion.train_per_class=20",
            "data_ingestion.test_per_class=10",
            "data_ingestion.validation_fraction=0.5",
            "model_training.fit.epochs=1",
            "model_training.fit.batch_size=50",
        ]
    )
    completed = kedro(
        project, "run", "--env", "gpu", "--params", params, env=env, timeout=900
    )
    log = completed.output
    assert completed.returncode == 0, log[-4000:]
    root = project / "data" / "gpu"
    metrics = json.loads(latest(root, "08_reporting/test_metrics.json").read_text())
    assert metrics["num_test_images"] == 100
    assert 0.0 <= metrics["tta"]["accuracy"] <= 1.0
    model_file = latest(root, "06_models/model.keras")
    assert model_file.stat().st_size > 1_000_000  # the GPU model, [64, 256, 256]
    config = json.loads(latest(root, "06_models/training_config.json").read_text())
    assert config["versions"]["backend"] == "jax"
