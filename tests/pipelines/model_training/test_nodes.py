"""Tests for the model_training nodes: describe, build, compile and a tiny training."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from cifar10_kedro import hardware
from cifar10_kedro.pipelines.model_training import nodes
from cifar10_kedro.pipelines.model_training.architectures import (
    WHITENING_LAYER,
    dirac_kernel,
    whitening_weights,
)
from cifar10_kedro.pipelines.model_training.nodes import (
    build_model,
    compile_model,
    describe_training,
    resolve_precision,
    steps_per_epoch,
)
from cifar10_kedro.pipelines.model_training.optimizers import (
    RecipeSGD,
    WarmupLinearDecay,
)
from cifar10_kedro.pipelines.model_training.params import ModelTrainingParams
from cifar10_kedro.pipelines.model_training.training_state import HISTORY_COLUMNS
from cifar10_kedro.tracking.callbacks import EpochLogger
from tests.conftest import base_params
from tests.pipelines.model_training.helpers import (
    compiled,
    tiny_data,
    tiny_params,
    train,
    weights_equal,
)


def blank(n: int) -> np.ndarray:
    """``n`` black images: for building models, not training them."""
    return np.zeros((n, 32, 32, 3), np.uint8)


# ------------------------------------------------------------- the notebook model


@pytest.fixture(scope="module")
def notebook_params() -> ModelTrainingParams:
    return base_params("model_training", env="notebook")


@pytest.fixture(scope="module")
def notebook_model(notebook_params) -> keras.Model:
    return compiled(notebook_params, blank(100), np.zeros(45000, np.uint8))


def test_notebook_environment_is_the_notebook_configuration(notebook_params) -> None:
    p = notebook_params
    assert p.model.architecture == "notebook_cnn"
    assert p.model.precision == "float32"
    assert (p.compile.optimizer.name, p.compile.optimizer.learning_rate) == (
        "adam",
        0.005,
    )
    assert p.compile.lr_schedule.name == "constant"
    assert p.compile.loss == "sparse_categorical_crossentropy"
    assert p.compile.label_smoothing == 0.0
    assert p.compile.metrics == ["sparse_categorical_accuracy"]
    assert (p.fit.batch_size, p.fit.epochs) == (32, 50)
    assert p.fit.augmentation.flip == "none"
    assert p.fit.augmentation.translate == 0
    layers = p.model.augmentation_layers
    assert (layers.rotation_degrees, layers.width_shift, layers.height_shift) == (
        10,
        0.3,
        0.3,
    )
    assert (p.fit.early_stopping.monitor, p.fit.early_stopping.patience) == (
        "val_loss",
        5,
    )
    assert p.fit.checkpoint.monitor == "val_loss"


def test_compare_pipelines_notebook_variant_is_the_same_configuration(
    notebook_params,
) -> None:
    """`--env notebook` and the compare pipeline's notebook variant train alike (the
    checkpoint folder aside, which is the environment's)."""
    variant = base_params("notebook.model_training")
    assert variant.model == notebook_params.model
    assert variant.compile == notebook_params.compile
    assert variant.fit.model_copy(update={"checkpoint": None}) == (
        notebook_params.fit.model_copy(update={"checkpoint": None})
    )


def test_notebook_model_parameter_count(notebook_model) -> None:
    assert notebook_model.count_params() == 7_385_110


def test_notebook_model_optimizer_and_loss(notebook_model) -> None:
    optimizer = notebook_model.optimizer
    assert type(optimizer) is keras.optimizers.Adam
    assert float(optimizer.learning_rate) == pytest.approx(0.005)
    assert isinstance(notebook_model.loss, keras.losses.SparseCategoricalCrossentropy)


def test_notebook_model_layer_sequence(notebook_model) -> None:
    assert notebook_model.inputs[0].dtype == "uint8"
    assert notebook_model.inputs[0].shape == (None, 32, 32, 3)
    kinds = [type(layer).__name__ for layer in notebook_model.layers]
    assert kinds == [
        "Rescaling",  # uint8 -> float
        "Sequential",  # augmentation
        "BatchNormalization",
        "Conv2D",
        "BatchNormalization",
        "Activation",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
        "Activation",  # softmax
    ]
    conv = notebook_model.layers[3]
    assert (conv.filters, conv.kernel_size, conv.strides) == (32, (3, 3), (1, 1))
    assert notebook_model.layers[8].units == 1024
    assert notebook_model.layers[9].rate == 0.5


def test_notebook_model_augmentation(notebook_model) -> None:
    rotation, translation = notebook_model.get_layer("augmentation").layers
    assert isinstance(rotation, keras.layers.RandomRotation)
    assert rotation.factor == pytest.approx((-10 / 360, 10 / 360))
    assert isinstance(translation, keras.layers.RandomTranslation)
    assert translation.height_factor == pytest.approx(0.3)
    assert translation.width_factor == pytest.approx(0.3)
    assert translation.fill_mode == "nearest"
    assert translation.interpolation == "bilinear"


def test_notebook_augmentation_only_in_training(notebook_model) -> None:
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    augment = notebook_model.get_layer("augmentation")
    as_float = x.astype("float32")
    assert np.array_equal(
        keras.ops.convert_to_numpy(augment(as_float, training=False)), as_float
    )
    assert not np.array_equal(
        keras.ops.convert_to_numpy(augment(as_float, training=True)), as_float
    )


# ----------------------------------------------------------------- the fast_cnn


@pytest.fixture(scope="module")
def default_params() -> ModelTrainingParams:
    return base_params("model_training")


@pytest.fixture(scope="module")
def default_model(default_params) -> keras.Model:
    x = np.random.default_rng(0).integers(0, 256, (200, 32, 32, 3), dtype=np.uint8)
    return compiled(default_params, x, np.zeros(45000, np.uint8))


def test_default_model_is_the_recipe(default_model) -> None:
    # airbench94's network: 64/256/256 after a 24-channel whitening stem, 1.97 M
    # parameters (theirs counts the BN biases and a 10-way head alike).
    assert default_model.count_params() == 1_973_944
    assert "augmentation" not in {layer.name for layer in default_model.layers}
    norms = [
        layer
        for layer in default_model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(norms) == 6
    assert all(n.momentum == 0.6 and n.epsilon == 1e-12 and not n.scale for n in norms)
    activations = {
        layer.get_config()["activation"]
        for layer in default_model.layers
        if isinstance(layer, keras.layers.Activation)
    }
    assert activations == {"gelu", "softmax"}
    assert default_model.get_layer("head_scale").scale == pytest.approx(1 / 9)
    assert isinstance(default_model.optimizer, RecipeSGD)


def test_default_model_predicts_probabilities(default_model) -> None:
    x = np.random.default_rng(1).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    probabilities = keras.ops.convert_to_numpy(default_model(x, training=False))
    assert probabilities.shape == (5, 10)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_dirac_initialisation(default_model) -> None:
    convs = [
        layer
        for layer in default_model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.name != WHITENING_LAYER
    ]
    assert len(convs) == 6
    for conv in convs:
        kernel = keras.ops.convert_to_numpy(conv.kernel)
        count = min(kernel.shape[2], kernel.shape[3])
        identity = np.zeros((3, 3, kernel.shape[2], count), np.float32)
        identity[1, 1, np.arange(count), np.arange(count)] = 1.0
        np.testing.assert_array_equal(kernel[..., :count], identity)
        assert np.any(kernel[..., count:]) or count == kernel.shape[3]


def test_dirac_kernel_passes_the_input_through() -> None:
    x = np.random.default_rng(0).normal(size=(1, 6, 6, 4)).astype("float32")
    kernel = dirac_kernel(np.ones((3, 3, 4, 6), np.float32))
    y = keras.ops.convert_to_numpy(keras.ops.conv(x, kernel, padding="same"))
    np.testing.assert_allclose(y[..., :4], x, rtol=1e-6)
    np.testing.assert_array_equal(kernel[..., 4:], 1.0)  # the others untouched


def test_build_model_is_seeded(tmp_path) -> None:
    params = tiny_params(tmp_path)
    x = tiny_data()[0]
    a = build_model(params.model, 7, x)
    b = build_model(params.model, 7, x)
    c = build_model(params.model, 8, x)
    assert weights_equal(a, b)
    assert not weights_equal(a, c)


def test_whitening_weights_decorrelate_patches() -> None:
    x = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    x[..., 1] = x[..., 0] // 2 + x[..., 1] // 2  # correlated channels
    kernel, bias = whitening_weights(x)
    assert kernel.shape == (2, 2, 3, 24)
    patches = (
        np.lib.stride_tricks.sliding_window_view(x / 255.0, (2, 2), axis=(1, 2))
        .transpose(0, 1, 2, 4, 5, 3)
        .reshape(-1, 12)
    )
    features = patches @ kernel.reshape(12, 24)[:, :12] + bias[:12]
    np.testing.assert_allclose(features.mean(axis=0), 0, atol=1e-6)
    covariance = np.cov(features, rowvar=False)
    # Unit variance up to the eps that keeps tiny eigenvalues from exploding.
    np.testing.assert_allclose(covariance - np.diag(np.diag(covariance)), 0, atol=1e-6)
    assert np.all((np.diag(covariance) > 0.9) & (np.diag(covariance) <= 1.0))


def test_whitening_kernel_never_trains_and_its_bias_stops_after_its_epochs(
    tmp_path,
) -> None:
    params = tiny_params(
        tmp_path,
        compile={"optimizer": {"whitening_bias_epochs": 1, "lookahead": None}},
        fit={"epochs": 3},
    )
    x_train, y_train, x_val, y_val = tiny_data()
    model = compiled(params, x_train, y_train)
    layer = model.get_layer(WHITENING_LAYER)
    kernel0 = keras.ops.convert_to_numpy(layer.kernel).copy()
    biases = [keras.ops.convert_to_numpy(layer.bias).copy()]

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            biases.append(keras.ops.convert_to_numpy(layer.bias).copy())

    labels = keras.utils.to_categorical(y_train, 10)
    model.fit(x_train, labels, batch_size=50, epochs=3, verbose=0, callbacks=[Record()])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel), kernel0)
    first = np.abs(biases[1] - biases[0]).max()
    assert first > 0  # it trains in epoch 1
    # Then it stays (the lookahead, off here, would not move it either).
    np.testing.assert_array_equal(biases[2], biases[1])
    np.testing.assert_array_equal(biases[3], biases[1])


def test_whitening_stem_is_set_from_a_seeded_sample_of_the_training_images(
    tmp_path,
) -> None:
    params = tiny_params(tmp_path)
    x = tiny_data()[0]
    model = build_model(params.model, params.seed, x)
    sample = np.random.default_rng(params.seed).choice(len(x), 100, replace=False)
    kernel, bias = whitening_weights(x[np.sort(sample)])
    layer = model.get_layer(WHITENING_LAYER)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.kernel), kernel)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.bias), bias)
    assert not layer.kernel.trainable


# ------------------------------------------------------------------- precision


@pytest.mark.parametrize(
    ("gpu", "cpuinfo", "expected"),
    [
        (True, "flags: avx2", "mixed_bfloat16"),
        (False, "flags: avx2 avx512_bf16", "mixed_bfloat16"),
        (False, "flags: avx2 amx_bf16", "mixed_bfloat16"),
        (False, "flags: avx2 fma", "float32"),
    ],
)
def test_resolve_precision_auto(monkeypatch, tmp_path, gpu, cpuinfo, expected) -> None:
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)  # the CPU's own kernels
    info = tmp_path / "cpuinfo"
    info.write_text(cpuinfo)
    monkeypatch.setattr(nodes, "has_gpu", lambda: gpu)
    monkeypatch.setattr(hardware, "CPUINFO", info)
    assert resolve_precision("auto") == expected


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_resolve_precision_explicit(monkeypatch, precision) -> None:
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert resolve_precision(precision) == precision


def _capped_cpu(monkeypatch, tmp_path, flags: str, cap: str) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text(f"flags: {flags}")
    monkeypatch.setattr(hardware, "CPUINFO", info)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)


def test_bfloat16_under_an_avx2_cap_on_an_avx512_cpu_is_a_clear_error(
    monkeypatch, tmp_path
) -> None:
    # TensorFlow would send the bfloat16 convolutions to a oneDNN without a kernel
    # for them ("could not create a primitive descriptor") at the first step.
    _capped_cpu(monkeypatch, tmp_path, "avx2 avx512f avx512_bf16", "avx2")
    with pytest.raises(ValueError, match=r"model_training\.model\.precision") as error:
        resolve_precision("mixed_bfloat16")
    assert "ONEDNN_MAX_CPU_ISA=avx2" in str(error.value)
    assert resolve_precision("auto") == "float32"
    assert resolve_precision("float32") == "float32"


@pytest.mark.parametrize(
    ("flags", "cap"),
    [
        ("avx2 fma", "AVX2"),  # a real AVX2 CPU: TensorFlow uses Eigen's kernels
        ("avx2 avx512f avx512_bf16", "AVX512_CORE"),  # oneDNN emulates bfloat16
        ("avx2 avx512f avx512_bf16", "AVX512_CORE_BF16"),
    ],
)
def test_bfloat16_is_allowed_where_its_kernels_exist(
    monkeypatch, tmp_path, flags, cap
) -> None:
    _capped_cpu(monkeypatch, tmp_path, flags, cap)
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"


def test_mixed_float16_gets_loss_scaling(tmp_path) -> None:
    params = tiny_params(tmp_path, model={"precision": "mixed_float16"})
    x_train, y_train, *_ = tiny_data()
    model = compiled(params, x_train, y_train)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(model.optimizer.inner_optimizer, RecipeSGD)


# --------------------------------------------------------------------- compile


def test_plain_keras_optimizer_without_recipe_ingredients(tmp_path) -> None:
    params = tiny_params(
        tmp_path,
        model={"fast_cnn": {"stem": "conv"}},
        compile={
            "optimizer": {
                "lookahead": None,
                "batchnorm_bias_lr_scale": 1.0,
                "whitening_bias_epochs": 0,
            }
        },
    )
    x_train, y_train, *_ = tiny_data()
    assert type(compiled(params, x_train, y_train).optimizer) is keras.optimizers.SGD


def test_warmup_linear_schedule() -> None:
    schedule = WarmupLinearDecay(
        peak=1.0, initial=0.2, final=0.07, warmup_steps=10, total_steps=50
    )
    rates = [float(schedule(step)) for step in (0, 5, 10, 30, 50, 60)]
    np.testing.assert_allclose(rates, [0.2, 0.6, 1.0, 0.535, 0.07, 0.07], rtol=1e-6)


def test_compile_spans_the_schedule_over_the_run(tmp_path) -> None:
    params = tiny_params(tmp_path, fit={"epochs": 4, "drop_remainder": True})
    x_train, y_train, *_ = tiny_data()  # 200 images, batches of 50: 4 steps an epoch
    model = compiled(params, x_train, y_train)
    schedule = model.optimizer._learning_rate  # noqa: SLF001 - the schedule object
    assert isinstance(schedule, WarmupLinearDecay)
    assert schedule.total_steps == 16
    assert schedule.warmup_steps == round(2.3 * 4)
    assert steps_per_epoch(201, params.fit) == 4
    assert (
        steps_per_epoch(201, params.fit.model_copy(update={"drop_remainder": False}))
        == 5
    )


# ---------------------------------------------------------- describe_training


def test_describe_training_fingerprints_what_changes_the_result(tmp_path) -> None:
    params = tiny_params(tmp_path)
    data = tiny_data()

    def fingerprint(p: ModelTrainingParams, arrays=data) -> str:
        return describe_training(p.model, p.compile, p.fit, p.seed, *arrays)[
            "fingerprint"
        ]

    base = fingerprint(params)
    assert fingerprint(params) == base
    same = [
        params.model_copy(
            update={
                "fit": params.fit.model_copy(update={"verbose": 2, "resume": False})
            }
        ),
        tiny_params(tmp_path / "elsewhere"),  # another checkpoint folder
    ]
    assert all(fingerprint(p) == base for p in same)
    other = [
        params.model_copy(update={"seed": 1}),
        params.model_copy(update={"fit": params.fit.model_copy(update={"epochs": 3})}),
        tiny_params(tmp_path, compile={"optimizer": {"learning_rate": 0.1}}),
        tiny_params(tmp_path, fit={"checkpoint": {"monitor": "val_loss"}}),
        tiny_params(
            tmp_path, fit={"progressive_resizing": [{"size": 16, "share": 0.5}]}
        ),
    ]
    assert len({base, *map(fingerprint, other)}) == len(other) + 1
    changed = list(data)
    changed[0] = changed[0].copy()
    changed[0][0, 0, 0, 0] ^= 1
    assert fingerprint(params, changed) != base


def test_describe_training_covers_versions_and_backend(tmp_path, monkeypatch) -> None:
    params = tiny_params(tmp_path)
    data = tiny_data()
    config = describe_training(
        params.model, params.compile, params.fit, params.seed, *data
    )
    assert config["versions"]["keras"] == keras.__version__
    assert config["versions"]["backend"] == keras.backend.backend()
    monkeypatch.setattr(keras, "__version__", "0.0.0")
    again = describe_training(
        params.model, params.compile, params.fit, params.seed, *data
    )
    assert again["fingerprint"] != config["fingerprint"]


# ------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    tmp_path = tmp_path_factory.mktemp("trained")
    params = tiny_params(tmp_path, fit={"epochs": 3})
    model, history = train(params)
    return {"params": params, "model": model, "history": history, "tmp": tmp_path}


def test_train_model_history_table(trained) -> None:
    history = trained["history"]
    assert list(history.columns) == HISTORY_COLUMNS
    assert list(history["epoch"]) == [1, 2, 3]
    assert history[["loss", "val_loss", "seconds", "learning_rate"]].gt(0).all().all()
    assert history[["accuracy", "val_accuracy"]].stack().between(0, 1).all()
    assert history["best"].sum() == 1


def test_train_model_returns_the_best_epochs_model(trained, tmp_path) -> None:
    """The model returned is the one of the epoch the history marks best."""
    history = trained["history"]
    best = history.loc[history["best"], "epoch"].item()
    assert best == history.loc[history["val_accuracy"].idxmax(), "epoch"]
    x_train, y_train, x_val, y_val = tiny_data()
    probabilities = keras.ops.convert_to_numpy(trained["model"](x_val, training=False))
    accuracy = np.mean(probabilities.argmax(axis=1) == y_val)
    assert accuracy == pytest.approx(
        history.loc[history["best"], "val_accuracy"].item()
    )
    # A finished training leaves its checkpoint for the hook to delete once saved.
    folders = list((trained["tmp"] / "checkpoints").iterdir())
    assert len(folders) == 1


def test_train_model_with_progressive_resizing(trained, tmp_path) -> None:
    """The first epoch on 16x16 images trains the same network (one fit, every
    size); the model returned takes full-size images, and the run differs from the
    full-size one from its first epoch."""
    resized = {"epochs": 3, "progressive_resizing": [{"size": 16, "share": 0.34}]}
    model, history = train(tiny_params(tmp_path, fit=resized))
    assert list(history["epoch"]) == [1, 2, 3]
    assert history[["loss", "val_loss"]].map(np.isfinite).all().all()
    full = trained["history"]
    assert history["loss"][0] != full["loss"][0]
    x_val = tiny_data()[2]
    assert keras.ops.convert_to_numpy(model(x_val[:2])).shape == (2, 10)


def test_validation_only_in_the_last_epochs(trained, tmp_path) -> None:
    """fit.validate_last_epochs 1: epochs 1 and 2 are not validated (NaN in the
    history, no validation figure for the tracker), the checkpoint chooses among the
    validated ones, and the training itself is the one validated every epoch."""
    params = tiny_params(tmp_path, fit={"epochs": 3, "validate_last_epochs": 1})
    logged: dict[int, dict[str, float]] = {}
    _, history = train(params, callbacks=[EpochLogger(logged.update)])
    assert history["val_accuracy"].isna().tolist() == [True, True, False]
    assert history["best"].tolist() == [False, False, True]
    assert sorted(logged) == [1, 2, 3]
    assert "val_loss" not in logged[1] and "loss" in logged[1]
    assert logged[3]["val_accuracy"] == history["val_accuracy"].iloc[2]
    every = trained["history"]
    np.testing.assert_allclose(history["loss"], every["loss"], rtol=1e-6)
    assert history["val_accuracy"].iloc[2] == pytest.approx(every["val_accuracy"][2])


def test_train_model_is_deterministic(trained, tmp_path) -> None:
    params = trained["params"].model_copy(
        update={
            "fit": trained["params"].fit.model_copy(
                update={
                    "checkpoint": trained["params"].fit.checkpoint.model_copy(
                        update={"state_dir": str(tmp_path / "again")}
                    )
                }
            )
        }
    )
    model, history = train(params)
    columns = [c for c in HISTORY_COLUMNS if c != "seconds"]
    pd.testing.assert_frame_equal(history[columns], trained["history"][columns])
    assert weights_equal(model, trained["model"])


def test_train_model_sparse_labels_constant_rate(tmp_path) -> None:
    params = tiny_params(
        tmp_path,
        compile={
            "optimizer": {
                "name": "adam",
                "learning_rate": 0.001,
                "batchnorm_bias_lr_scale": 1.0,
            },
            "lr_schedule": {"name": "constant"},
            "loss": "sparse_categorical_crossentropy",
            "label_smoothing": 0.0,
            "metrics": ["sparse_categorical_accuracy"],
        },
    )
    model, history = train(params)
    assert history["learning_rate"].tolist() == pytest.approx([0.001, 0.001])
    assert isinstance(model, keras.Model)


def test_train_model_logs_where_checkpoints_go(tmp_path, caplog) -> None:
    params = tiny_params(tmp_path, fit={"epochs": 1})
    with caplog.at_level("INFO"):
        train(params)
    assert f"go to {tmp_path / 'checkpoints'}" in caplog.text


def test_lookahead_leaves_the_averaged_weights_at_every_epoch_end(tmp_path) -> None:
    """With lookahead, the weights after an epoch equal the optimizer's slow copies."""
    params = tiny_params(tmp_path, fit={"epochs": 1})
    x_train, y_train, *_ = tiny_data()
    model = compiled(params, x_train, y_train)
    labels = keras.utils.to_categorical(y_train, 10)
    # 4 steps: not a multiple of lookahead's 5, but the end of an epoch.
    model.fit(x_train, labels, batch_size=50, epochs=1, verbose=0)
    optimizer = model.optimizer
    for slow, variable in zip(
        optimizer._slow,
        optimizer._trainable_variables,
        strict=True,  # noqa: SLF001
    ):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(slow), keras.ops.convert_to_numpy(variable)
        )


def test_batchnorm_bias_learns_faster_by_its_scale() -> None:
    """One SGD step: a BatchNorm bias moves 64 times as far as another variable with
    the same gradient, and decays at the same rate."""
    optimizer = RecipeSGD(
        learning_rate=0.1, weight_decay=0.5, batchnorm_bias_lr_scale=64.0
    )
    layer = keras.layers.BatchNormalization()
    layer.build((None, 2))
    other = keras.Variable([1.0, 1.0], name="kernel")
    beta = layer.beta
    beta.assign([1.0, 1.0])
    optimizer.apply([np.ones(2, "float32")] * 2, [beta, other])
    moved_other = 1.0 - keras.ops.convert_to_numpy(other)
    moved_beta = 1.0 - keras.ops.convert_to_numpy(beta)
    decay = 0.1 * 0.5  # lr * weight decay, on the value 1
    np.testing.assert_allclose(moved_other, decay + 0.1, rtol=1e-6)
    np.testing.assert_allclose(moved_beta, decay + 64 * 0.1, rtol=1e-6)


def test_neutral_values_switch_the_recipes_optimizer_off() -> None:
    """With lookahead, the BatchNorm bias scale and the whitening bias off (conf/base's
    values for them: null, 1.0, 0), compile_model builds Keras' own SGD."""
    params = base_params(
        "model_training",
        {
            "model": {"precision": "float32", "fast_cnn": {"widths": [8, 16]}},
            "compile": {
                "optimizer": {
                    "lookahead": None,
                    "batchnorm_bias_lr_scale": 1.0,
                    "whitening_bias_epochs": 0,
                }
            },
        },
    )
    x_train, y_train, *_ = tiny_data()
    model = compiled(params, x_train, y_train)
    assert type(model.optimizer) is keras.optimizers.SGD
    assert not isinstance(model.optimizer, RecipeSGD)


def test_compile_model_accepts_every_optimizer(tmp_path) -> None:
    x_train, y_train, *_ = tiny_data()
    for name in ("sgd", "adam", "adamw"):
        params = tiny_params(
            tmp_path,
            compile={"optimizer": {"name": name, "batchnorm_bias_lr_scale": 1.0}},
        )
        model = compile_model(
            build_model(params.model, 0, x_train), params.compile, params.fit, y_train
        )
        assert type(model.optimizer).__name__.lower().endswith(name)


def test_training_path_of_the_notebook(tmp_path) -> None:
    """The notebook's configuration trains through the same nodes (a tiny run)."""
    params = tiny_params(tmp_path, env="notebook", fit={"epochs": 1, "batch_size": 50})
    model, history = train(params)
    assert list(history["epoch"]) == [1]
    assert Path(tmp_path / "checkpoints").is_dir()
    assert model.count_params() == 7_385_110
