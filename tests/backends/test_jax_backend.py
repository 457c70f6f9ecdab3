"""The model code is backend-neutral Keras 3: the default model trains under JAX too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

pytest.importorskip("jax")


def default_params(tmp_path: Path) -> dict:
    text = (PROJECT_ROOT / "conf/base/parameters_model_training.yml").read_text()
    params = yaml.safe_load(text.replace("${globals:data_root}", str(tmp_path)))[
        "model_training"
    ]
    params["architectures"]["fast_cnn"].update(stem_width=8, widths=[8, 16, 16])
    params.update(epochs=3, batch_size=40, verbose=0)
    params["optimizer"]["learning_rate"] = 0.05
    return params


@pytest.mark.slow
def test_default_model_trains_a_few_steps_under_jax(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    script = Path(__file__).with_name("jax_train_steps.py")
    completed = subprocess.run(
        [
            sys.executable,
            str(script),
            json.dumps(default_params(tmp_path)),
            str(tmp_path / "best.keras"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    assert result["epochs"] == 3
    assert result["loss"][-1] < result["loss"][0]
    assert result["tta_shape"] == [20, 10]
    assert result["sums"] == [1.0] * 20
    assert (tmp_path / "best.keras").is_file()
