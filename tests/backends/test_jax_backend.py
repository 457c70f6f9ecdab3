"""The model code is backend-neutral Keras 3: the default model trains under JAX too."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import base_params
from tests.processes import environment, run

pytest.importorskip("jax")


def default_params(tmp_path: Path) -> dict:
    """The default recipe, every ingredient on, shrunk to a few steps, and the
    reporting with test-time augmentation, as the script reads them."""
    training = base_params(
        "model_training",
        {
            "model": {"fast_cnn": {"widths": [8, 16, 16], "whitening_images": 100}},
            "compile": {"optimizer": {"learning_rate": 0.1}},
            "fit": {
                "epochs": 3,
                "batch_size": 40,
                "verbose": 0,
                "checkpoint": {"state_dir": str(tmp_path / "checkpoints")},
            },
        },
    )
    reporting = base_params(
        "reporting", {"batch_size": 10, "tta": {"flip": True, "translate": 1}}
    )
    return {
        "model_training": training.model_dump(),
        "reporting": reporting.model_dump(),
    }


@pytest.mark.slow
def test_default_model_trains_a_few_steps_under_jax(tmp_path):
    env = environment(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    script = Path(__file__).with_name("jax_train_steps.py")
    completed = run(
        [sys.executable, str(script), json.dumps(default_params(tmp_path))],
        env=env,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    assert result["optimizer"] == "RecipeSGD"
    assert result["lookahead_synced"]  # the weights after the last epoch: averaged
    assert result["epochs"] == 3
    assert result["loss"][-1] < result["loss"][0]
    assert result["tta_shape"] == [20, 10]
    assert result["sums"] == [1.0] * 20
    assert any((tmp_path / "checkpoints").iterdir())
