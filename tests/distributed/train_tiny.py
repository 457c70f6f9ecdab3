"""Train the tiny model (every ingredient of the recipe on) under each MODE given.

    python train_tiny.py OUT_DIR MODE [MODE ...]      (KERAS_BACKEND=jax)

MODE is none, data_parallel or multi_process (then the KERAS_DISTRIBUTION_*
variables say which process this is). For each MODE, every process writes
OUT_DIR/<MODE>-<process>.npz (the trained weights) and .json (the loss history, the
devices the model's variables lived on while training, the process's topology).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from cifar10_kedro.pipelines.model_training import distribution
from cifar10_kedro.pipelines.model_training.nodes import describe_training, train_model
from cifar10_kedro.pipelines.model_training.params import DistributionParams
from tests.pipelines.model_training.helpers import compiled, tiny_data, tiny_params


def main(out: Path, modes: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for mode in modes:
        topology = distribution.configure(DistributionParams(mode=mode))
        params = tiny_params(
            out / f"checkpoints-{mode}", fit={"epochs": 3, "batch_size": 50}
        )
        data = tiny_data()
        config = describe_training(
            params.model, params.compile, params.fit, params.seed, *data
        )
        model = compiled(params, data[0], data[1])
        devices = len(model.weights[0].value.sharding.device_set)
        trained, history = train_model(model, *data, params.fit, params.seed, config)
        tag = f"{mode}-{topology.process_index}"
        np.savez(out / f"{tag}.npz", *trained.get_weights())
        (out / f"{tag}.json").write_text(
            json.dumps(
                {
                    "loss": history["loss"].tolist(),
                    "val_loss": history["val_loss"].tolist(),
                    "variable_devices": devices,
                    "devices": topology.devices,
                    "process_index": topology.process_index,
                    "process_count": topology.process_count,
                }
            )
        )
        distribution.reset()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
