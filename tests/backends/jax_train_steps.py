"""Train the default recipe for a few steps; run with KERAS_BACKEND set (by the test).

Prints one JSON line: the backend, the history and the TTA predictions' shape, and
whether the lookahead's slow weights equal the weights after training.
"""

import json
import sys

import keras
import numpy as np

from cifar10_kedro.pipelines.model_training.nodes import (
    build_model,
    compile_model,
    describe_training,
    train_model,
)
from cifar10_kedro.pipelines.model_training.params import ModelTrainingParams
from cifar10_kedro.pipelines.reporting.nodes import predict_test
from cifar10_kedro.pipelines.reporting.params import ReportingParams


def main(params_json: str) -> None:
    groups = json.loads(params_json)
    params = ModelTrainingParams.model_validate(groups["model_training"])
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10, dtype=np.uint8), 12)
    # Class-coloured noise: learnable in a few steps.
    x = (
        rng.integers(0, 60, (y.size, 32, 32, 3)) + (y * 20)[:, None, None, None]
    ).astype(np.uint8)
    data = (x, y, x[::3], y[::3])
    config = describe_training(
        params.model, params.compile, params.fit, params.seed, *data
    )
    model = compile_model(
        build_model(params.model, params.seed, x), params.compile, params.fit, y
    )
    trained, history = train_model(model, *data, params.fit, params.seed, config)
    optimizer = model.optimizer
    probabilities = predict_test(
        trained,
        x[:20],
        ReportingParams.model_validate(groups["reporting"]),
    )
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "optimizer": type(optimizer).__name__,
                "epochs": len(history),
                "loss": history["loss"].tolist(),
                "lookahead_synced": all(
                    np.array_equal(
                        keras.ops.convert_to_numpy(s), keras.ops.convert_to_numpy(v)
                    )
                    for s, v in zip(
                        optimizer._slow,  # noqa: SLF001
                        optimizer._trainable_variables,  # noqa: SLF001
                        strict=True,
                    )
                ),
                "tta_shape": list(probabilities["tta"].shape),
                "sums": probabilities["plain"].sum(axis=1).round(4).tolist(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1])
