"""plan_training: the estimate before the first epoch, and the epochs that fit a time
budget (model_training.fit.time_budget_minutes). The probe's clock is replaced by one
whose intervals are known, so that nothing here depends on the machine's speed."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from cifar10_kedro.pipelines.model_training import planning
from cifar10_kedro.pipelines.model_training.nodes import (
    build_model,
    compile_model,
    describe_training,
)
from cifar10_kedro.pipelines.model_training.optimizers import WarmupLinearDecay
from cifar10_kedro.pipelines.model_training.planning import plan_training
from tests.conftest import base_params
from tests.pipelines.model_training.helpers import tiny_data, tiny_params
from tests.pipelines.test_pipelines import latest, make_project_copy, versions
from tests.tracking.conftest import EXPERIMENT, store_uri

# tiny_params and tiny_data: 200 training images in batches of 50 (4 steps an epoch,
# the last smaller batch dropped), 50 validation images (1 batch), probe_steps 3.
STEPS, VALIDATION_BATCHES = 4, 1
# The probe's intervals: the warm-up step, 3 steps, the validation warm-up, 1 batch.
PROBE = [5.0, 1.0, 1.0, 1.0, 3.0, 0.5]
EPOCH = STEPS * 1.0 + VALIDATION_BATCHES * 0.5  # 4.5 s
SETUP = (5.0 - 1.0) + (3.0 - 0.5)  # 6.5 s: the warm-ups' extra time


class FakeClock:
    """A clock whose n-th timed interval (two calls: start, end) lasts
    ``durations[n]`` seconds."""

    def __init__(self, durations: Iterable[float]) -> None:
        self.durations = iter(durations)
        self.now, self.calls = 0.0, 0

    def __call__(self) -> float:
        if self.calls % 2:
            self.now += next(self.durations)
        self.calls += 1
        return self.now


@pytest.fixture
def clock(monkeypatch):
    def install(durations: Iterable[float]) -> FakeClock:
        fake = FakeClock(durations)
        monkeypatch.setattr(planning, "_clock", fake)
        return fake

    return install


def planned(params, data=None):
    x_train, y_train, x_val, _ = data or tiny_data()
    model = build_model(params.model, params.seed, x_train)
    plan = plan_training(
        model, x_train, y_train, x_val, params.fit, params.compile, params.seed
    )
    return model, *plan


def test_the_estimate_is_the_probes_steps_and_validation(tmp_path, clock, caplog):
    clock(PROBE)
    params = tiny_params(tmp_path)
    with caplog.at_level(logging.INFO, logger=planning.__name__):
        _, plan, fit, compile_params = planned(params)
    assert plan["steps_per_epoch"] == STEPS
    assert plan["validation_batches"] == VALIDATION_BATCHES
    assert plan["seconds_per_step"] == 1.0
    assert plan["seconds_per_validation_batch"] == 0.5
    assert plan["setup_seconds"] == SETUP
    assert plan["estimated_epoch_seconds"] == EPOCH
    assert plan["estimated_training_seconds"] == 2 * EPOCH + SETUP
    assert plan["train_images_per_second"] == 50.0
    assert (plan["configured_epochs"], plan["epochs"]) == (2, 2)
    assert plan["time_budget_minutes"] is None
    assert plan["probe_steps"] == 3
    assert plan["precision"] == "float32"
    assert plan["device"].startswith(("cpu", "gpu"))
    json.dumps(plan)  # JSON-ready
    # Without a budget the training is the configured one, unchanged.
    assert fit is params.fit
    assert compile_params is params.compile
    (line,) = [r.getMessage() for r in caplog.records if "will take" in r.message]
    assert line.startswith("Training will take about 16 s on this machine")
    assert "2 epochs x (4 steps x 1 s a step + 1 validation batches x 0.5 s)" in line
    assert "a probe of 3 steps" in line


# With progressive resizing (4 epochs, the first half at 16x16): the 16x16 warm-up and
# 3 steps, the 32x32 warm-up and 3 steps, the validation warm-up and 1 batch.
RESIZED_PROBE = [5.0, 0.5, 0.5, 0.5, 2.0, 1.0, 1.0, 1.0, 3.0, 0.5]
RESIZED_SETUP = (5.0 - 0.5) + (3.0 - 0.5)  # training traces once: the first warm-up
HALF_AT_16 = {"epochs": 4, "progressive_resizing": [{"size": 16, "share": 0.5}]}


def test_with_progressive_resizing_each_size_is_probed_and_counted(
    tmp_path, clock, caplog
):
    clock(RESIZED_PROBE)
    params = tiny_params(tmp_path, fit=HALF_AT_16)
    with caplog.at_level(logging.INFO, logger=planning.__name__):
        _, plan, fit, _ = planned(params)
    assert plan["seconds_per_step_by_size"] == {16: 0.5, 32: 1.0}
    assert plan["seconds_per_step"] == 1.0  # full size
    assert plan["epoch_sizes"] == [16, 16, 32, 32]
    assert plan["setup_seconds"] == RESIZED_SETUP
    small, full = STEPS * 0.5 + 0.5, STEPS * 1.0 + 0.5
    assert plan["estimated_epoch_seconds"] == full
    assert plan["estimated_training_seconds"] == 2 * small + 2 * full + RESIZED_SETUP
    assert fit is params.fit
    (line,) = [r.getMessage() for r in caplog.records if "will take" in r.message]
    assert (
        "4 epochs x (4 steps (2 epochs at 16x16: 0.5 s a step; 2 epochs at 32x32: "
        "1 s a step) + 1 validation batches x 0.5 s)"
    ) in line


def test_a_budget_counts_the_sizes_of_the_epochs_it_chooses(tmp_path, clock):
    """2 epochs are one at 16x16 and one at 32x32 (7 s + setup); 3 epochs are two
    at 16x16 and one at 32x32 (9.5 s + setup): a budget between them gives 2."""
    clock(RESIZED_PROBE)
    small, full = STEPS * 0.5 + 0.5, STEPS * 1.0 + 0.5
    budget = (RESIZED_SETUP + small + full + 1.0) / 60
    params = tiny_params(tmp_path, fit={**HALF_AT_16, "time_budget_minutes": budget})
    _, plan, fit, _ = planned(params)
    assert (plan["epochs"], fit.epochs) == (2, 2)
    assert plan["epoch_sizes"] == [16, 32]
    assert plan["estimated_training_seconds"] == RESIZED_SETUP + small + full


def test_validation_is_counted_only_where_it_runs(tmp_path, clock):
    clock(PROBE)
    params = tiny_params(tmp_path, fit={"epochs": 3, "validate_last_epochs": 1})
    _, plan, *_ = planned(params)
    # 3 epochs of steps, one validation.
    assert plan["estimated_training_seconds"] == 3 * STEPS * 1.0 + 0.5 + SETUP


def test_the_measured_probe_leaves_the_model_untouched(tmp_path):
    """With the real clock: the arithmetic of the estimate holds, and the model
    given to plan_training has its weights and no optimizer afterwards."""
    params = tiny_params(tmp_path)
    x_train, *_ = data = tiny_data()
    before = build_model(params.model, params.seed, x_train).get_weights()
    model, plan, *_ = planned(params, data)
    assert all(
        np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)
    )
    assert getattr(model, "optimizer", None) is None  # not compiled
    assert plan["seconds_per_step"] > 0
    assert plan["estimated_epoch_seconds"] == pytest.approx(
        STEPS * plan["seconds_per_step"]
        + VALIDATION_BATCHES * plan["seconds_per_validation_batch"]
    )
    assert plan["estimated_training_seconds"] == pytest.approx(
        2 * plan["estimated_epoch_seconds"] + plan["setup_seconds"]
    )


def test_a_budget_that_allows_fewer_epochs_gives_a_shorter_whole_schedule(
    tmp_path, clock
):
    clock(PROBE)
    # 3 epochs and the setup fit in 22 s, not 4.
    budget = (SETUP + 3 * EPOCH + 2.0) / 60
    params = tiny_params(tmp_path, fit={"epochs": 10, "time_budget_minutes": budget})
    x_train, y_train, *_ = data = tiny_data()
    model, plan, fit, compile_params = planned(params, data)
    assert (plan["configured_epochs"], plan["epochs"]) == (10, 3)
    assert plan["time_budget_minutes"] == budget
    assert plan["estimated_training_seconds"] == 3 * EPOCH + SETUP
    assert fit.epochs == 3
    # The warm-up keeps its share of the run: 2.3 of 10 epochs, 0.69 of 3.
    assert compile_params.lr_schedule.warmup_epochs == pytest.approx(0.69)
    assert plan["warmup_epochs"] == compile_params.lr_schedule.warmup_epochs
    compiled = compile_model(model, compile_params, fit, y_train)
    schedule = compiled.optimizer._learning_rate  # noqa: SLF001 - the schedule object
    assert isinstance(schedule, WarmupLinearDecay)
    assert schedule.total_steps == 3 * STEPS
    assert schedule.warmup_steps == round(0.69 * STEPS)
    peak = params.compile.optimizer.learning_rate
    final = params.compile.lr_schedule.final_fraction
    assert float(schedule(schedule.total_steps)) == pytest.approx(peak * final)
    assert compiled.optimizer.total_steps == 3 * STEPS  # lookahead's progress too
    # The fingerprint has the planned epochs: a resume never continues another
    # schedule. The budget itself is not in it (only what it decided).
    config = describe_training(params.model, compile_params, fit, params.seed, *data)
    assert config["model_training"]["fit"]["epochs"] == 3
    assert "time_budget_minutes" not in config["model_training"]["fit"]
    fixed = tiny_params(tmp_path, fit={"epochs": 3})
    same = describe_training(
        fixed.model,
        fixed.compile.model_copy(
            update={
                "lr_schedule": fixed.compile.lr_schedule.model_copy(
                    update={"warmup_epochs": 2.3 * 3 / 10}
                )
            }
        ),
        fixed.fit,
        fixed.seed,
        *data,
    )
    assert same["fingerprint"] == config["fingerprint"]


def test_a_budget_larger_than_the_epochs_trains_the_configured_epochs(tmp_path, clock):
    clock(PROBE)
    params = tiny_params(tmp_path, fit={"time_budget_minutes": 60})
    _, plan, fit, compile_params = planned(params)
    assert plan["epochs"] == 2
    assert fit is params.fit and compile_params is params.compile


def test_a_budget_too_small_for_one_epoch_is_an_error_before_training(tmp_path, clock):
    clock(PROBE)
    params = tiny_params(tmp_path, fit={"time_budget_minutes": 0.1})
    with pytest.raises(ValueError) as error:
        planned(params)
    message = str(error.value)
    assert "model_training.fit.time_budget_minutes is 0.1 (6.0 s)" in message
    assert "one epoch takes about 4.5 s" in message
    assert "6.5 s of setup" in message
    assert "Nothing was trained" in message
    assert not (tmp_path / "checkpoints").exists()


def test_without_a_probe_nothing_is_measured(tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("measured")

    monkeypatch.setattr(planning, "measure", never)
    params = tiny_params(tmp_path, fit={"probe_steps": 0})
    _, plan, fit, _ = planned(params)
    assert plan["epochs"] == 2
    assert plan["seconds_per_step"] is None
    assert plan["estimated_training_seconds"] is None
    assert fit is params.fit


@pytest.mark.parametrize(
    ("fit", "named"),
    [
        ({"probe_steps": 0, "time_budget_minutes": 5}, "probe_steps"),
        (
            {"time_budget_minutes": 5, "distribution": {"mode": "multi_process"}},
            "distribution",
        ),
    ],
)
def test_a_budget_without_a_probe_or_under_data_parallelism_is_invalid(
    tmp_path, fit, named
):
    with pytest.raises(ValueError, match=rf"time_budget_minutes.*{named}"):
        tiny_params(tmp_path, fit=fit)


# --------------------------------------------------------------- a Kedro session


@pytest.mark.slow
def test_a_run_with_a_budget_trains_the_planned_epochs_and_records_them(
    tmp_path, cifar10_subset, monkeypatch
):
    """`kedro run --pipeline model_training` of the smoke env, its probe on and a
    budget that allows 2 of 3 epochs (every probed interval lasts 1 s)."""
    project = make_project_copy(tmp_path)
    uri = store_uri(project)
    monkeypatch.chdir(project)
    monkeypatch.setenv("CIFAR10_RAW_PATH", str(cifar10_subset))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("CIFAR10_KEDRO_TRACKING", raising=False)
    monkeypatch.setattr(planning, "_clock", FakeClock(itertools.repeat(1.0)))
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="smoke") as session:
        session.run(pipeline_name="data_ingestion")
        catalog = session.load_context().catalog
        train, val = len(catalog.load("y_train")), len(catalog.load("y_val"))
    fit = base_params("model_training.fit", env="smoke")
    epoch = train // fit.batch_size + -(-val // fit.batch_size)  # seconds
    budget = 2.5 * epoch / 60
    changes = {"fit": {"epochs": 3, "probe_steps": 2, "time_budget_minutes": budget}}
    with KedroSession.create(
        project_path=project, env="smoke", runtime_params={"model_training": changes}
    ) as session:
        session.run(pipeline_name="model_training")

    data = project / "data" / "smoke"
    history = pd.read_csv(latest(data, "07_model_output/training_history.csv"))
    assert list(history["epoch"]) == [1, 2]
    plan = json.loads(latest(data, "06_models/training_plan.json").read_text())
    assert (plan["configured_epochs"], plan["epochs"]) == (3, 2)
    assert plan["seconds_per_step"] == 1.0
    assert plan["estimated_training_seconds"] == 2 * epoch
    # Saved with the model's version, and the training configuration has the plan.
    assert versions(data, "06_models/training_plan.json") == versions(
        data, "06_models/model.keras"
    )
    config = json.loads(latest(data, "06_models/training_config.json").read_text())
    assert config["model_training"]["fit"]["epochs"] == 2
    warmup = config["model_training"]["compile"]["lr_schedule"]["warmup_epochs"]
    assert warmup == pytest.approx(0.46 * 2 / 3)

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    params = run.data.params
    assert params["model_training.fit.epochs"] == "3"  # as configured
    assert params["model_training.fit.time_budget_minutes"] == str(budget)
    assert params["planned_epochs"] == "2"
    assert params["time_budget_minutes"] == str(budget)
    assert params["probe_seconds_per_step"] == "1.0"
    assert params["estimated_training_seconds"] == str(float(2 * epoch))
    steps = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in steps] == [1, 2]
