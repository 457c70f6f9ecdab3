"""The reference recipe on this project's data: airbench94, unmodified, in PyTorch.

Issue 10's accuracy targets are airbench94's figures on the official CIFAR-10. The
data here is a JPEG copy (quality 75, 4:2:0 chroma; ../shared/data/README.md). Running
the reference itself on that copy says what the recipe can reach on it, and whether
the Keras recipe (``model_training``) matches it.

Needs a CUDA GPU with PyTorch and torchvision, and ``airbench94.py`` from
https://github.com/KellerJordan/cifar10-airbench (commit 01a2367; not copied here)::

    python benchmarks/airbench_reference.py --airbench PATH/airbench94.py --runs 5
    python benchmarks/airbench_reference.py --airbench PATH/airbench94.py \\
        --train-images 45000 --epochs 9.9 --runs 3    # as many images as our split

The images are read by the project's own ``CIFAR10Dataset`` and written where
airbench94 loads them (``cifar10/train.pt`` and ``test.pt`` under ``--workdir``); the
figures (its TTA test accuracy per run) go to a JSON file.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cifar10_kedro.datasets import CIFAR10Dataset

PROJECT = Path(__file__).resolve().parents[1]


def reference_arrays(
    data: dict[str, Any], train_images: int | None, seed: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Return ``{"train": (x, y), "test": (x, y)}``; the training set cut to a
    seeded random ``train_images`` when given (our validation split's size)."""
    x, y = data["x_train"], data["y_train"]
    if train_images is not None:
        if not 0 < train_images <= len(x):
            raise ValueError(
                f"--train-images must be in 1..{len(x)}, got {train_images}."
            )
        keep = np.random.default_rng(seed).permutation(len(x))[:train_images]
        x, y = x[keep], y[keep]
    return {"train": (x, y), "test": (data["x_test"], data["y_test"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airbench", type=Path, required=True, help="airbench94.py")
    parser.add_argument(
        "--archive",
        type=Path,
        default=Path(os.environ.get("CIFAR10_RAW_PATH", "data/01_raw/cifar10.tar.gz")),
        help="CIFAR-10 as CIFAR10Dataset reads it (default: $CIFAR10_RAW_PATH)",
    )
    parser.add_argument("--train-images", type=int, help="a random subset this big")
    parser.add_argument("--epochs", type=float, help="airbench94's train_epochs")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("data/airbench"))
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)

    import torch  # noqa: PLC0415 - the reference needs it; the project does not

    output = (
        args.output or PROJECT / "benchmarks" / "results" / "airbench94.json"
    ).resolve()

    data = CIFAR10Dataset(filepath=args.archive.resolve(), url=None).load()
    classes = list(data["class_names"])
    arrays = reference_arrays(data, args.train_images)
    (args.workdir / "cifar10").mkdir(parents=True, exist_ok=True)
    for split, (x, y) in arrays.items():
        torch.save(
            {"images": torch.tensor(x), "labels": torch.tensor(y), "classes": classes},
            args.workdir / "cifar10" / f"{split}.pt",
        )
    spec = importlib.util.spec_from_file_location("airbench94", args.airbench)
    airbench = importlib.util.module_from_spec(spec)
    sys.argv = [str(args.airbench)]  # it reads its own source from argv[0]
    spec.loader.exec_module(airbench)
    if args.epochs:
        airbench.hyp["opt"]["train_epochs"] = args.epochs
    os.chdir(args.workdir)  # it loads ./cifar10/{train,test}.pt
    airbench.print_columns(airbench.logging_columns_list, is_head=True)
    airbench.main("warmup")
    accuracies = [float(airbench.main(run)) for run in range(args.runs)]
    result = {
        "command": "python benchmarks/airbench_reference.py " + " ".join(argv or []),
        "date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "device": torch.cuda.get_device_name(),
        "train_images": len(arrays["train"][0]),
        "epochs": airbench.hyp["opt"]["train_epochs"],
        "tta_test_accuracy": accuracies,
        "mean": statistics.fmean(accuracies),
        "std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
    }
    print(f"TTA test accuracy: {result['mean']:.4f} +- {result['std']:.4f}")
    output.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
