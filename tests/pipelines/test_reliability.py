"""Long runs can be trusted: a killed run resumes, and every bad input fails early
with a clear message, a non-zero exit and the earlier outputs untouched."""

from __future__ import annotations

import contextlib
import io
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DatasetError
from kedro.validation.exceptions import ParameterValidationError
from PIL import Image

from cifar10_kedro.datasets.cifar10_dataset import CLASS_NAMES, OFFICIAL_MD5
from cifar10_kedro.params_base import InvalidParametersError
from tests.datasets.test_cifar10_dataset import official_members, write_tar_gz
from tests.pipelines.test_pipelines import (
    latest,
    make_project_copy,
    snapshot,
    versions,
)
from tests.processes import environment, kedro, kedro_args, start, stop

# --------------------------------------------------------------------------- helpers


def png(image: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def tree_members(
    train_per_class: int = 16, test_per_class: int = 4
) -> dict[str, bytes]:
    """A tiny CIFAR-10 image tree of class-coloured noise (learnable, fast to decode)."""
    rng = np.random.default_rng(0)
    members = {}
    for label, cls in enumerate(CLASS_NAMES):
        colour = np.array([40 + 20 * label, 220 - 20 * label, 128])
        for split, count in (("train", train_per_class), ("test", test_per_class)):
            for i in range(count):
                noise = rng.integers(-30, 31, (32, 32, 3))
                image = np.clip(colour + noise, 0, 255).astype(np.uint8)
                members[f"{split}/{cls}/{i:03d}.png"] = png(image)
    return members


def session_run(project: Path, raw: Path, **run_args: Any) -> None:
    """``kedro run --env smoke`` in-process, reading ``raw``; run_args as KedroSession's."""
    runtime_params = run_args.pop("runtime_params", None)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(project)
        mp.setenv("CIFAR10_RAW_PATH", str(raw))
        bootstrap_project(project)
        with KedroSession.create(
            project_path=project, env="smoke", runtime_params=runtime_params
        ) as session:
            session.run(**run_args)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict[str, Path]:
    """A project after one complete smoke run (1 epoch) on a tiny image tree."""
    root = tmp_path_factory.mktemp("reliability")
    project = make_project_copy(root / "project")
    raw = write_tar_gz(root / "tiny.tar.gz", tree_members())
    session_run(project, raw, runtime_params={"model_training": {"fit": {"epochs": 1}}})
    return {"project": project, "data": project / "data" / "smoke", "raw": raw}


# Where a run fails before its first node: the error, and the functions it is raised
# from (found in its traceback).
KEDRO_VALIDATION = (ParameterValidationError, ("validate_raw_params",))
PREFLIGHT_PARAMETERS = (
    InvalidParametersError,
    ("before_pipeline_run", "validate_parameters"),
)
PREFLIGHT_MODEL = (DatasetError, ("before_pipeline_run", "check"))
PREFLIGHT_VERSIONS = (DatasetError, ("before_pipeline_run", "_check_same_run"))


def fails_cleanly(
    baseline,
    raw: Path,
    expected: list[str],
    where: tuple[type[Exception], tuple[str, ...]] = (Exception, ()),
    **run_args: Any,
) -> str:
    """Run, expect an error whose message holds every ``expected`` text, raised
    ``where`` says, and check that nothing under data/ was written, changed or
    removed. Return the message."""
    error, raised_in = where
    before = snapshot(baseline["data"])
    with pytest.raises(error) as info:
        session_run(baseline["project"], raw, **run_args)
    message = str(info.value)
    for text in expected:
        assert text in message, message
    functions = {entry.name for entry in info.traceback}
    assert set(raised_in) <= functions, sorted(functions)
    assert snapshot(baseline["data"]) == before
    return message


# ----------------------------------------------------------------- bad raw data


def _without(prefix: str) -> dict[str, bytes]:
    return {k: v for k, v in tree_members().items() if not k.startswith(prefix)}


def _with(name: str, payload: bytes) -> dict[str, bytes]:
    return {**tree_members(), name: payload}


def _one_deer() -> dict[str, bytes]:
    members = _without("train/deer/")
    members["train/deer/000.png"] = tree_members()["train/deer/000.png"]
    return members


BAD_TREES = {
    "missing-class-folder": (
        _without("train/frog/"),
        ["split 'train' has no images for class folder(s) ['frog']; expected all of"],
    ),
    "unreadable-image": (
        _with("train/cat/broken.png", b"\x89PNG but not really"),
        ["{raw}:train/cat/broken.png' cannot be read as PNG or JPEG"],
    ),
    "image-not-32x32": (
        _with("train/ship/odd.png", png(np.zeros((16, 16, 3), np.uint8))),
        ["{raw}:train/ship/odd.png' is 16x16 RGB; expected a 32x32 RGB image."],
    ),
    "image-not-rgb": (
        _with("test/dog/grey.png", png(np.zeros((32, 32), np.uint8), "L")),
        ["{raw}:test/dog/grey.png' is 32x32 L; expected a 32x32 RGB image."],
    ),
    "empty-split": (
        _without("test/"),
        ["split 'test' is empty; expected images under 'test/<class>/'"],
    ),
    "class-lost-by-the-validation-split": (
        _one_deer(),
        [
            "data_ingestion.validation_fraction=0.2 cannot split 145 training images",
            "have only 1 member",
        ],
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_TREES), ids=list(BAD_TREES))
def test_bad_image_tree_fails_before_anything_is_written(baseline, tmp_path, case):
    members, expected = BAD_TREES[case]
    raw = write_tar_gz(tmp_path / "bad.tar.gz", members)
    fails_cleanly(baseline, raw, [e.format(raw=raw) for e in expected])


@pytest.mark.slow
def test_missing_raw_file_says_where_to_put_it(baseline, tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    raw = tmp_path / "raw" / "cifar-10-python.tar.gz"
    fails_cleanly(
        baseline,
        raw,
        [
            "Could not download CIFAR-10 from https://www.cs.toronto.edu/",
            f"Download cifar-10-python.tar.gz by hand and put it at {raw}",
            "CIFAR10_RAW_PATH",
        ],
    )
    assert not raw.parent.exists() or not any(raw.parent.iterdir())


@pytest.mark.slow
def test_official_archive_with_wrong_md5_is_refused(baseline, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (120, 32, 32, 3), dtype=np.uint8)
    raw = write_tar_gz(
        tmp_path / "cifar-10-python.tar.gz", official_members(x, np.arange(120) % 10)
    )
    fails_cleanly(
        baseline, raw, [f"'{raw}' has md5 ", f"expected {OFFICIAL_MD5} (the official"]
    )


@pytest.mark.slow
def test_truncated_archive_is_refused(baseline, tmp_path):
    full = write_tar_gz(tmp_path / "full.tar.gz", tree_members())
    raw = tmp_path / "cifar10.tar.gz"
    raw.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    fails_cleanly(baseline, raw, [f"'{raw}' is truncated or corrupt"])


# --------------------------------------------------------------- bad parameters


@pytest.mark.slow
def test_bad_typed_parameters_are_all_reported_before_any_node(baseline):
    """Kedro validates every typed group when it builds the catalog: every mistake
    of every group at once, each named by its group and key."""
    bad = {
        "model_training": {
            "model": {"architecture": "resnet"},
            "compile": {"optimizer": {"name": "rmsprop", "learning_rate": 0}},
            "fit": {"epochs": 0, "batch_size": 12.5, "epocs": 3},
        },
        "data_ingestion": {"validation_fraction": 1.5},
        "reporting": {"tta": {"flip": "yes"}},
    }
    fails_cleanly(
        baseline,
        baseline["raw"],
        [
            "Parameter validation failed:",
            "- Parameter 'data_ingestion': ",
            "  - validation_fraction: Input should be less than 1; got 1.5",
            "- Parameter 'model_training.model': ",
            "  - architecture: Input should be 'fast_cnn' or 'notebook_cnn'; got 'resnet'",
            "- Parameter 'model_training.compile': ",
            "  - optimizer.name: Input should be 'adam', 'adamw' or 'sgd'; got 'rmsprop'",
            "  - optimizer.learning_rate: Input should be greater than 0; got 0",
            "- Parameter 'model_training.fit': ",
            "  - batch_size: Input should be a valid integer; got 12.5",
            "  - epochs: Input should be greater than 0; got 0",
            "  - epocs: unknown parameter (a typo?); expected one of",
            "- Parameter 'reporting': ",
            "  - tta.flip: Input should be a valid boolean; got 'yes'",
        ],
        where=KEDRO_VALIDATION,
        runtime_params=bad,
    )


@pytest.mark.slow
def test_cross_field_mistakes_are_reported_before_any_node(baseline):
    fails_cleanly(
        baseline,
        baseline["raw"],
        [
            "- Parameter 'model_training.compile': ",
            "label_smoothing is 0.2 but loss is 'sparse_categorical_crossentropy', "
            "which cannot smooth labels",
        ],
        where=KEDRO_VALIDATION,
        runtime_params={
            "model_training": {
                "compile": {
                    "loss": "sparse_categorical_crossentropy",
                    "metrics": ["accuracy"],
                }
            }
        },
    )


@pytest.mark.slow
def test_mistakes_outside_the_typed_groups_are_reported_by_the_hook(baseline):
    """Keys that no node reads as a typed group (a misspelt group, a stray key, the
    seed) pass Kedro's validation; the preflight hook's schema names them all."""
    fails_cleanly(
        baseline,
        baseline["raw"],
        [
            "invalid parameter(s); fix them in conf/<env>/parameters_*.yml or --params "
            "(nothing was run or written):",
            "  - model_training.epocs: unknown parameter (a typo?); expected one of "
            "['compile', 'fit', 'model', 'seed']",
            "  - model_training.seed: Input should be greater than or equal to 0; "
            "got -1",
            "  - reportng: unknown parameter (a typo?); expected one of "
            "['data_ingestion', 'export', 'inference', 'model_training', 'notebook', "
            "'reporting', 'serving', 'tta_selection']",
        ],
        where=PREFLIGHT_PARAMETERS,
        runtime_params={
            "model_training": {"epocs": 3, "seed": -1},
            "reportng": {"batch_size": 10},
        },
    )


def kedro_run_cli(baseline, *args: str) -> tuple[int, str]:
    """``kedro run --env smoke ARGS`` in a subprocess; return (exit code, output)."""
    completed = kedro(
        baseline["project"],
        "run",
        "--env",
        "smoke",
        *args,
        env=environment(CIFAR10_RAW_PATH=str(baseline["raw"])),
        timeout=300,
    )
    return completed.returncode, completed.output


@pytest.mark.slow
def test_bad_parameter_exits_non_zero_from_the_command_line(baseline):
    before = snapshot(baseline["data"])
    code, output = kedro_run_cli(
        baseline,
        "--params",
        "model_training.fit.epochs=0,model_training.fit.optimizr=sgd",
    )
    assert code != 0
    assert "ParameterValidationError" in output
    assert "Parameter 'model_training.fit'" in output
    assert "epochs: Input should be greater than 0; got 0" in output
    assert "optimizr: unknown parameter (a typo?)" in output
    assert "Running node" not in output
    assert snapshot(baseline["data"]) == before


@pytest.mark.slow
def test_misspelt_group_exits_non_zero_from_the_command_line(baseline):
    before = snapshot(baseline["data"])
    code, output = kedro_run_cli(baseline, "--params", "model_trainng.fit.epochs=1")
    assert code != 0
    assert "InvalidParametersError" in output
    assert "1 invalid parameter(s)" in output
    assert "model_trainng: unknown parameter (a typo?)" in output
    assert "Running node" not in output
    assert snapshot(baseline["data"]) == before


# --------------------------------------------------------------- bad model file


def _put_model_version(data: Path, write) -> Path:
    """Write a newer version of trained_model with ``write(path)``; return the path."""
    path = data / "06_models/model.keras/9999-12-31T23.59.59.999Z/model.keras"
    path.parent.mkdir(parents=True)
    write(path)
    return path


@contextlib.contextmanager
def model_version(data: Path, write) -> Iterator[Path]:
    """A newer version of trained_model written by ``write``, removed afterwards."""
    path = _put_model_version(data, write)
    try:
        yield path
    finally:
        path.unlink()
        path.parent.rmdir()


@pytest.mark.slow
def test_model_file_that_is_not_a_keras_file_is_named(baseline):
    with model_version(baseline["data"], lambda p: p.write_text("not a zip")) as path:
        fails_cleanly(
            baseline,
            baseline["raw"],
            [f"'{path}' is not a loadable .keras model: it is not a zip archive"],
            where=PREFLIGHT_MODEL,
            pipeline_names=["reporting"],
        )


@pytest.mark.slow
def test_model_file_with_python_code_is_refused_and_never_run(baseline, tmp_path):
    marker = tmp_path / "code-ran"

    # Stands for any code an attacker would put in a model file: it leaves a mark.
    code = (
        f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('!'), x)[1]"
    )

    def save(path: Path) -> None:
        model = keras.Sequential(
            [
                keras.Input((32, 32, 3)),
                keras.layers.Lambda(eval(code)),  # noqa: S307 - the test's own code
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.save(path)
        marker.unlink()  # building the model here ran the lambda once

    with model_version(baseline["data"], save) as path:
        fails_cleanly(
            baseline,
            baseline["raw"],
            [
                f"'{path}' is not a loadable .keras model: it needs Python code from "
                "outside Keras (a Lambda layer's Python function), and models are "
                "loaded with safe_mode=True, which never runs code from a model file."
            ],
            where=PREFLIGHT_MODEL,
            pipeline_names=["reporting"],
        )
    assert not marker.exists()


@pytest.mark.slow
def test_model_file_with_a_custom_class_is_refused(baseline):
    def save(path: Path) -> None:
        @keras.saving.register_keras_serializable(package="elsewhere")
        class Doubling(keras.layers.Layer):
            def call(self, x):
                return x * 2

        keras.Sequential(
            [
                keras.Input((32, 32, 3)),
                Doubling(),
                keras.layers.Flatten(),
                keras.layers.Dense(10, activation="softmax"),
            ]
        ).save(path)
        del keras.saving.get_custom_objects()["elsewhere>Doubling"]  # not our code

    with model_version(baseline["data"], save) as path:
        fails_cleanly(
            baseline,
            baseline["raw"],
            [
                f"'{path}' is not a loadable .keras model: it needs Python code from "
                "outside Keras (the custom class 'elsewhere>Doubling')"
            ],
            where=PREFLIGHT_MODEL,
            pipeline_names=["reporting"],
        )


@pytest.mark.slow
def test_reporting_refuses_a_model_and_history_of_different_runs(baseline):
    """After a second training, ``--load-versions trained_model:<first>`` alone would
    report the first model with the second's history: refused, nothing written."""
    data = baseline["data"]
    first = versions(data, "06_models/model.keras")[-1]
    session_run(
        baseline["project"],
        baseline["raw"],
        runtime_params={"model_training": {"fit": {"epochs": 1}, "seed": 7}},
        pipeline_names=["model_training"],
    )
    second = versions(data, "06_models/model.keras")[-1]
    assert second != first
    # One training, one version for all that it saved.
    assert versions(data, "07_model_output/training_history.csv")[-1] == second
    assert versions(data, "06_models/training_config.json")[-1] == second

    fails_cleanly(
        baseline,
        baseline["raw"],
        [
            "The model and the training history it is reported with come from "
            f"different training runs (trained_model {first}, training_history "
            f"{second})",
            "Expected one version for all: pass --load-versions "
            "trained_model:<version>,training_history:<version>.",
        ],
        where=PREFLIGHT_VERSIONS,
        pipeline_names=["reporting"],
        load_versions={"trained_model": first},
    )
    # Likewise the history alone.
    fails_cleanly(
        baseline,
        baseline["raw"],
        [f"(trained_model {second}, training_history {first})"],
        where=PREFLIGHT_VERSIONS,
        pipeline_names=["reporting"],
        load_versions={"training_history": first},
    )


@pytest.mark.slow
def test_reporting_refuses_a_model_saved_without_its_history(baseline):
    """A run that saved the model but died before the history: the latest model and
    the latest history are of different runs."""
    data = baseline["data"]
    history = versions(data, "07_model_output/training_history.csv")[-1]
    model = latest(data, "06_models/model.keras")
    with model_version(data, lambda p: p.write_bytes(model.read_bytes())) as path:
        fails_cleanly(
            baseline,
            baseline["raw"],
            [
                "come from different training runs (trained_model "
                f"{path.parent.name}, training_history {history})"
            ],
            where=PREFLIGHT_VERSIONS,
            pipeline_names=["reporting"],
        )


# ----------------------------------------------------------------------- resume


def completed_epochs(state: Path) -> int:
    try:
        return json.loads(state.read_text())["epoch"]
    except (OSError, ValueError):
        return 0


def checkpoint_state(checkpoints: Path) -> Path:
    """The state file of the one checkpoint folder under ``checkpoints`` (a folder per
    training configuration), or where it will be."""
    found = list(checkpoints.glob("*/state.json"))
    return found[0] if found else checkpoints / "none" / "state.json"


def kill_after_epochs(
    project: Path, args: list[str], env: dict[str, str], log: Path, checkpoints: Path
) -> int:
    """Run `kedro ARGS` in ``project`` and kill it with SIGKILL (no clean-up of any
    kind) once two epochs are checkpointed under ``checkpoints``; return how many
    epochs were by then."""
    killed = start(kedro_args(*args), cwd=project, env=env, log=log)
    try:
        deadline = time.monotonic() + 300
        while completed_epochs(checkpoint_state(checkpoints)) < 2:  # noqa: PLR2004
            assert killed.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.02)
        killed.kill()
        killed.wait()
    finally:
        stop(killed)
    return completed_epochs(checkpoint_state(checkpoints))


@pytest.mark.slow
def test_killed_kedro_run_resumes_from_the_last_completed_epoch(tmp_path):
    project = make_project_copy(tmp_path / "project")
    raw = write_tar_gz(tmp_path / "tiny.tar.gz", tree_members())
    data = project / "data" / "smoke"
    checkpoints = data / "06_models/checkpoints"
    epochs = 6
    command = ["run", "--env", "smoke"]
    command += ["--params", f"model_training.fit.epochs={epochs}"]

    env = environment(CIFAR10_RAW_PATH=str(raw))
    log = tmp_path / "killed.log"
    done = kill_after_epochs(project, command, env, log, checkpoints)
    folder = checkpoint_state(checkpoints).parent
    assert 2 <= done < epochs  # noqa: PLR2004
    assert not versions(data, "06_models/model.keras")  # the killed run saved none

    rerun = kedro(project, *command, env=env, timeout=300)
    output = rerun.output
    assert rerun.returncode == 0, output[-3000:]
    assert f"Resuming training at epoch {done + 1} of {epochs}" in output
    history = pd.read_csv(latest(data, "07_model_output/training_history.csv"))
    assert history["epoch"].tolist() == list(range(1, epochs + 1))
    assert len(versions(data, "06_models/model.keras")) == 1
    assert not folder.exists()  # finished and saved: nothing left to resume
