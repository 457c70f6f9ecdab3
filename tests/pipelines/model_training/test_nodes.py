"""Tests for the model_training nodes: building, compiling and a tiny training run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from cifar10_kedro.pipelines.model_training import nodes
from cifar10_kedro.pipelines.model_training.architectures import whitening_weights
from cifar10_kedro.pipelines.model_training.nodes import (
    HISTORY_COLUMNS,
    build_model,
    resolve_precision,
    train_model,
)

CONF = Path(__file__).resolve().parents[3] / "conf"


def load_params(*environments: str) -> dict[str, Any]:
    """model_training parameters of conf/base with each environment merged over it."""
    configs = [
        OmegaConf.load(CONF / env / "parameters_model_training.yml")
        for env in ("base", *environments)
    ]
    # resolve=False: the checkpoint path refers to ${globals:...}, a Kedro resolver.
    return OmegaConf.to_container(OmegaConf.merge(*configs), resolve=False)[
        "model_training"
    ]


def tiny_params(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """The default (fast_cnn) parameters shrunk to train in seconds on a CPU."""
    params = load_params()
    params["architectures"]["fast_cnn"] = {
        "stem_width": 8,
        "widths": [8, 16],
        "dropout": 0.1,
    }
    params.update(
        precision="float32",
        batch_size=50,
        epochs=2,
        verbose=0,
        checkpoint={
            "filepath": str(tmp_path / "ckpt" / "best.keras"),
            "monitor": "val_accuracy",
            "state_dir": str(tmp_path / "ckpt" / "resume"),
        },
    )
    params.update(overrides)
    return params


def tiny_data(seed: int = 0) -> tuple[np.ndarray, ...]:
    """200 training and 50 validation 32x32 RGB uint8 images, balanced classes.

    Each class has its own mean colour, so that a model can learn something.
    """
    rng = np.random.default_rng(seed)
    palette = rng.integers(40, 216, (10, 3))

    def make(per_class: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.permutation(np.repeat(np.arange(10), per_class))
        noise = rng.integers(-40, 41, (len(y), 32, 32, 3))
        x = np.clip(palette[y][:, None, None, :] + noise, 0, 255).astype(np.uint8)
        return x, y.astype(np.uint8)

    x_train, y_train = make(20)
    x_val, y_val = make(5)
    return x_train, y_train, x_val, y_val


def blank_data(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` black images and zero labels: for building models, not training them."""
    return np.zeros((n, 32, 32, 3), np.uint8), np.zeros(n, np.uint8)


# ---------------------------------------------------------------------- build_model


@pytest.fixture(scope="module")
def notebook_params() -> dict[str, Any]:
    return load_params("notebook")


@pytest.fixture(scope="module")
def notebook_model(notebook_params) -> keras.Model:
    return build_model(copy.deepcopy(notebook_params), *blank_data(1000))


def test_notebook_config_is_the_notebook(notebook_params) -> None:
    assert notebook_params["architecture"] == "notebook_cnn"
    assert notebook_params["optimizer"]["name"] == "adam"
    assert notebook_params["loss"] == "sparse_categorical_crossentropy"
    assert notebook_params["batch_size"] == 32


def test_notebook_model_parameter_count(notebook_model) -> None:
    assert notebook_model.count_params() == 7_385_110


def test_notebook_model_optimizer_and_loss(notebook_model) -> None:
    optimizer = notebook_model.optimizer
    assert type(optimizer) is keras.optimizers.Adam
    assert float(optimizer.learning_rate) == pytest.approx(0.005)
    assert isinstance(notebook_model.loss, keras.losses.SparseCategoricalCrossentropy)


def test_notebook_model_layer_sequence(notebook_model) -> None:
    layers = notebook_model.layers
    assert notebook_model.inputs[0].dtype == "uint8"
    assert notebook_model.inputs[0].shape == (None, 32, 32, 3)
    assert layers[0].name == "to_float"
    assert layers[1].name == "augmentation"
    core = layers[2:]
    assert [type(layer).__name__ for layer in core] == [
        "BatchNormalization",
        "Conv2D",
        "BatchNormalization",
        "Activation",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
        "Activation",
    ]
    conv, dense, dropout, head = core[1], core[6], core[7], core[8]
    assert conv.filters == 32
    assert tuple(conv.kernel_size) == (3, 3)
    assert tuple(conv.strides) == (1, 1)
    assert conv.padding == "valid"
    assert core[3].get_config()["activation"] == "relu"
    assert tuple(core[4].pool_size) == (2, 2)
    assert dense.units == 1024
    assert dense.get_config()["activation"] == "relu"
    assert dropout.rate == 0.5
    assert head.units == 10
    assert head.get_config()["activation"] == "linear"
    assert core[9].name == "softmax"
    assert core[9].get_config()["activation"] == "softmax"
    assert core[9].dtype_policy.compute_dtype == "float32"


def test_notebook_model_augmentation(notebook_model) -> None:
    augmentation = notebook_model.get_layer("augmentation").layers
    assert [type(layer).__name__ for layer in augmentation] == [
        "RandomRotation",
        "RandomTranslation",
    ]
    rotation, translation = augmentation
    assert rotation.factor == pytest.approx((-10 / 360, 10 / 360))
    assert rotation.fill_mode == "nearest"
    config = translation.get_config()
    assert config["height_factor"] == pytest.approx(0.3)
    assert config["width_factor"] == pytest.approx(0.3)
    assert config["interpolation"] == "bilinear"
    assert config["fill_mode"] == "nearest"


def test_notebook_model_outputs_probabilities(notebook_model) -> None:
    x, *_ = tiny_data()
    probabilities = np.asarray(notebook_model.predict(x[:4], verbose=0))
    assert probabilities.shape == (4, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_fast_cnn_default_builds_and_predicts_probabilities() -> None:
    params = load_params()
    assert params["architecture"] == "fast_cnn"
    model = build_model(params, *blank_data(45000))

    assert model.name == "fast_cnn"
    assert type(model.optimizer) is keras.optimizers.SGD
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    assert model.loss.get_config()["label_smoothing"] == pytest.approx(0.2)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [24, 64, 64, 128, 128, 256, 256]
    assert convs[0].name == "whitening" and not convs[0].trainable
    x, *_ = tiny_data()
    probabilities = np.asarray(model.predict(x[:6], verbose=0))
    assert probabilities.shape == (6, 10)
    assert probabilities.dtype == np.float32
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_build_model_is_seeded() -> None:
    params = tiny_params(Path("unused"))
    a = build_model(copy.deepcopy(params), *blank_data(200))
    b = build_model(copy.deepcopy(params), *blank_data(200))
    c = build_model({**copy.deepcopy(params), "seed": 43}, *blank_data(200))
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not all(
        np.array_equal(wa, wc)
        for wa, wc in zip(a.get_weights(), c.get_weights(), strict=True)
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "architecture",
            "resnet",
            r"architecture is 'resnet'; expected one of \['fast_cnn', 'notebook_cnn'\]",
        ),
        (
            "optimizer",
            {"name": "rmsprop", "learning_rate": 0.1},
            r"optimizer.name is 'rmsprop'; expected one of \['adam', 'adamw', 'sgd'\]",
        ),
        (
            "loss",
            "hinge",
            r"loss is 'hinge'; expected one of "
            r"\['sparse_categorical_crossentropy', 'categorical_crossentropy'\]",
        ),
        (
            "lr_schedule",
            {"name": "step"},
            r"lr_schedule.name is 'step'; expected 'constant' or 'warmup_cosine'",
        ),
    ],
    ids=["architecture", "optimizer", "loss", "lr_schedule"],
)
def test_build_model_rejects_unknown_choices(
    tmp_path: Path, key: str, value: Any, message: str
) -> None:
    params = tiny_params(tmp_path, **{key: value})
    with pytest.raises(ValueError, match=message):
        build_model(params, *blank_data(200))


def test_augmentation_only_in_training(tmp_path: Path) -> None:
    model = build_model(tiny_params(tmp_path), *blank_data(200))
    augmentation = model.get_layer("augmentation")
    assert [type(layer).__name__ for layer in augmentation.layers] == [
        "RandomFlip",
        "RandomTranslation",
    ]
    x = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("float32")

    inference = keras.ops.convert_to_numpy(augmentation(x, training=False))
    training = keras.ops.convert_to_numpy(augmentation(x, training=True))

    np.testing.assert_array_equal(inference, x)
    assert training.shape == x.shape
    changed = [not np.array_equal(training[i], x[i]) for i in range(len(x))]
    assert sum(changed) >= 6


def test_notebook_augmentation_only_in_training(notebook_model) -> None:
    augmentation = notebook_model.get_layer("augmentation")
    x = np.random.default_rng(1).integers(0, 256, (8, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(augmentation(x, training=False)), x
    )
    training = keras.ops.convert_to_numpy(augmentation(x, training=True))
    assert sum(not np.array_equal(training[i], x[i]) for i in range(len(x))) >= 6


OFF = {
    "rotation_degrees": 0,
    "width_shift": 0,
    "height_shift": 0,
    "horizontal_flip": False,
    "vertical_flip": False,
}


@pytest.mark.parametrize(
    "augmentation", [None, {}, OFF], ids=["null", "empty", "all-off"]
)
def test_no_augmentation_is_identity(tmp_path: Path, augmentation) -> None:
    model = build_model(
        tiny_params(tmp_path, augmentation=augmentation), *blank_data(200)
    )
    block = model.get_layer("augmentation")
    assert [type(layer).__name__ for layer in block.layers] == ["Identity"]
    x = np.random.default_rng(2).integers(0, 256, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(block(x, training=True)), x
    )
    assert model.predict(x.astype(np.uint8), verbose=0).shape == (4, 10)


@pytest.mark.parametrize(
    ("cpuinfo", "expected"),
    [
        ("flags : fpu avx2 avx512f avx512_bf16", "mixed_bfloat16"),
        ("flags : fpu amx_bf16 amx_tile", "mixed_bfloat16"),
        ("flags : fpu avx2 fma", "float32"),
    ],
)
def test_resolve_precision_auto(monkeypatch, cpuinfo: str, expected: str) -> None:
    class FakePath:
        def __init__(self, *args: object) -> None:
            pass

        def read_text(self) -> str:
            return cpuinfo

    monkeypatch.setattr(nodes, "Path", FakePath)
    assert resolve_precision("auto") == expected


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_resolve_precision_explicit(precision: str) -> None:
    assert resolve_precision(precision) == precision


# ---------------------------------------------------------------------- train_model


def run_training(
    params: dict[str, Any],
) -> tuple[keras.Model, keras.Model, pd.DataFrame]:
    x_train, y_train, x_val, y_val = tiny_data()
    model = build_model(copy.deepcopy(params), x_train, y_train)
    best, history = train_model(
        model, x_train, y_train, x_val, y_val, copy.deepcopy(params)
    )
    return model, best, history


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Any]:
    """One tiny 2-epoch run of the default recipe (one-hot labels, warm-up + cosine)."""
    tmp_path = tmp_path_factory.mktemp("training")
    params = tiny_params(tmp_path)
    checkpoint = Path(params["checkpoint"]["filepath"])
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"stale checkpoint from an earlier run")
    model, best, history = run_training(params)
    return {
        "params": params,
        "model": model,
        "best": best,
        "history": history,
        "checkpoint": checkpoint,
    }


def test_train_model_history_table(trained) -> None:
    history = trained["history"]
    assert list(history.columns) == HISTORY_COLUMNS
    assert len(history) == 2
    assert history["epoch"].tolist() == [1, 2]
    for column in ("loss", "val_loss"):
        assert np.isfinite(history[column]).all()
        assert (history[column] > 0).all()
    for column in ("accuracy", "val_accuracy"):
        assert history[column].between(0, 1).all()
    assert (history["seconds"] > 0).all()
    # Warm-up over the first epoch to the peak 0.2, then cosine decay to 0 at the end.
    np.testing.assert_allclose(history["learning_rate"], [0.2, 0.0], atol=1e-6)


def test_train_model_writes_checkpoint_and_returns_best(trained) -> None:
    checkpoint = trained["checkpoint"]
    assert checkpoint.is_file()
    assert checkpoint.stat().st_size > 10_000  # the stale file was replaced
    _, _, x_val, y_val = tiny_data()
    best = trained["best"]
    probabilities = np.asarray(best.predict(x_val, verbose=0))
    assert probabilities.shape == (50, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    # The returned model is the checkpoint: the epoch with the best validation accuracy.
    accuracy = float(np.mean(probabilities.argmax(axis=1) == y_val))
    assert accuracy == pytest.approx(trained["history"]["val_accuracy"].max())
    reloaded = keras.saving.load_model(checkpoint)
    np.testing.assert_allclose(
        reloaded.predict(x_val, verbose=0), probabilities, rtol=1e-6
    )


def test_train_model_is_deterministic(trained, tmp_path: Path) -> None:
    params = copy.deepcopy(trained["params"])
    params["checkpoint"]["filepath"] = str(tmp_path / "again.keras")
    params["checkpoint"]["state_dir"] = str(tmp_path / "again")
    _, best, history = run_training(params)

    columns = [c for c in HISTORY_COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(
        history[columns], trained["history"][columns], check_exact=True
    )
    for a, b in zip(best.get_weights(), trained["best"].get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_model_sparse_labels_constant_rate(tmp_path: Path) -> None:
    """The notebook's loss, metric and optimizer on the tiny fast_cnn, no augmentation."""
    params = tiny_params(
        tmp_path,
        augmentation=None,
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
        optimizer={"name": "adam", "learning_rate": 0.005, "adam": {}},
        lr_schedule={"name": "constant"},
        early_stopping={"monitor": "val_loss", "patience": 5},
        checkpoint={
            "filepath": str(tmp_path / "best.keras"),
            "monitor": "val_loss",
            "state_dir": str(tmp_path / "resume"),
        },
    )
    _, best, history = run_training(params)

    assert list(history.columns) == HISTORY_COLUMNS
    assert len(history) == 2
    np.testing.assert_allclose(history["learning_rate"], [0.005, 0.005], rtol=1e-6)
    assert history["accuracy"].between(0, 1).all()
    assert (tmp_path / "best.keras").is_file()
    _, _, x_val, y_val = tiny_data()
    probabilities = np.asarray(best.predict(x_val, verbose=0))
    assert probabilities.shape == (50, 10)
    # Checkpoint on val_loss: the returned model has the lowest validation loss.
    loss = -np.mean(np.log(probabilities[np.arange(len(y_val)), y_val]))
    assert loss == pytest.approx(history["val_loss"].min(), rel=1e-4)


def test_progress_bar_counts_the_epochs_of_the_whole_run(capsys) -> None:
    from cifar10_kedro.pipelines.model_training.callbacks import RunProgress  # noqa: PLC0415

    progress = RunProgress(epochs=26)
    progress.set_params({"verbose": 1, "epochs": 5, "steps": 3})
    progress.on_epoch_begin(4)
    assert "Epoch 5/26" in capsys.readouterr().out


def test_fit_inputs_yields_every_sample_once_in_order() -> None:
    x = np.arange(10 * 32 * 32 * 3, dtype=np.uint8).reshape(10, 32, 32, 3)
    y = np.arange(10)
    data = nodes.fit_inputs(x, y, batch_size=4)
    if "y" in data:  # arrays: Keras batches them itself
        batches = [(data["x"][i : i + 4], data["y"][i : i + 4]) for i in (0, 4, 8)]
    else:
        batches = [tuple(map(np.asarray, b)) for b in data["x"]]
        options = data["x"].options()
        assert options.autotune.enabled is False  # see fit_inputs: avoids ~25 s stalls
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)


def test_whitening_weights_decorrelate_patches() -> None:
    rng = np.random.default_rng(0)
    # Smooth, correlated images: neighbouring pixels and channels move together.
    base = rng.normal(128, 40, (300, 33, 33, 1))
    smooth = (base[:, 1:, 1:] + base[:, :-1, :-1]) / 2 + rng.normal(
        0, 8, (300, 32, 32, 3)
    )
    images = np.clip(smooth, 0, 255).astype(np.uint8)
    kernel, bias = whitening_weights(images, eps=1e-9)
    assert kernel.shape == (2, 2, 3, 24) and bias.shape == (24,)
    np.testing.assert_allclose(kernel[..., 12:], -kernel[..., :12])
    patches = np.lib.stride_tricks.sliding_window_view(
        images / 255.0, (2, 2), axis=(1, 2)
    )
    patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 12)
    features = patches @ kernel.reshape(12, 24)[:, :12] + bias[:12]
    np.testing.assert_allclose(features.mean(axis=0), 0, atol=1e-3)
    np.testing.assert_allclose(np.cov(features, rowvar=False), np.eye(12), atol=1e-2)


def test_whitening_stem_is_set_from_training_images_and_never_trained(
    tmp_path: Path,
) -> None:
    params = tiny_params(tmp_path, epochs=1)
    params["architectures"]["fast_cnn"].update(stem="whitening", whitening_images=500)
    x_train, y_train, x_val, y_val = tiny_data()
    model = build_model(copy.deepcopy(params), x_train, y_train)
    layer = model.get_layer("whitening")
    assert not layer.trainable
    kernel, bias = whitening_weights(x_train)  # 200 of 500: all of them are used
    np.testing.assert_allclose(layer.get_weights()[0], kernel, rtol=1e-6)
    np.testing.assert_allclose(layer.get_weights()[1], bias, rtol=1e-6)
    best, _ = train_model(model, x_train, y_train, x_val, y_val, params)
    np.testing.assert_allclose(best.get_layer("whitening").get_weights()[0], kernel)
