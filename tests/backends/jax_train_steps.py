"""Build and train the default model for a few steps; run with KERAS_BACKEND set (by the test)."""

import json
import sys

import keras
import numpy as np

from cifar10_kedro.pipelines.model_training.nodes import build_model, train_model
from cifar10_kedro.pipelines.reporting.nodes import predict_test


def main(params_json: str, checkpoint: str) -> None:
    params = json.loads(params_json)
    params["checkpoint"]["filepath"] = checkpoint
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(10, dtype=np.uint8), 12)
    # Class-coloured noise: learnable in a few steps.
    x = (
        rng.integers(0, 60, (y.size, 32, 32, 3)) + (y * 20)[:, None, None, None]
    ).astype(np.uint8)
    model = build_model(params, x, y)
    trained, history = train_model(model, x, y, x[::3], y[::3], params)
    probabilities = predict_test(trained, x[:20], {"batch_size": 10, "tta_flip": True})
    print(
        json.dumps(
            {
                "backend": keras.backend.backend(),
                "epochs": len(history),
                "loss": history["loss"].tolist(),
                "tta_shape": list(probabilities["tta"].shape),
                "sums": probabilities["plain"].sum(axis=1).round(4).tolist(),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
