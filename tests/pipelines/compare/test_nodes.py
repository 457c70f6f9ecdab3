"""Tests for the compare pipeline's node: a table and a figure from hand-made results."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from cifar10_kedro.pipelines.compare import create_pipeline
from cifar10_kedro.pipelines.compare.nodes import compare_variants
from cifar10_kedro.variants import variant_names


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def history(val_accuracy, accuracy, seconds, best_epoch) -> pd.DataFrame:
    epochs = len(val_accuracy)
    return pd.DataFrame(
        {
            "epoch": list(range(1, epochs + 1)),
            "loss": np.linspace(2.0, 1.0, epochs),
            "accuracy": accuracy,
            "val_loss": np.linspace(1.8, 1.1, epochs),
            "val_accuracy": val_accuracy,
            "learning_rate": [0.1] * epochs,
            "seconds": seconds,
            "best": [e == best_epoch for e in range(1, epochs + 1)],
        }
    )


@pytest.fixture
def results() -> dict:
    return {
        "default__history": history(
            [0.5, 0.7, 0.8], [0.4, 0.6, 0.75], [30.0, 30.0, 60.0], best_epoch=3
        ),
        "default__metrics": {
            "accuracy": 0.79,
            "log_loss": 0.65,
            "tta": {"accuracy": 0.81, "log_loss": 0.6},
        },
        "notebook__history": history(
            [0.3, 0.45, 0.42, 0.44], [0.25, 0.4, 0.5, 0.55], [60.0] * 4, best_epoch=2
        ),
        # The notebook's configuration has no test-time augmentation.
        "notebook__metrics": {"accuracy": 0.44, "log_loss": 1.6},
    }


def test_compare_variants_table(results) -> None:
    table, _ = compare_variants(**results)

    assert isinstance(table, pd.DataFrame)
    assert table["variant"].tolist() == ["default", "notebook"]
    rows = table.set_index("variant")
    assert rows.loc["default"].to_dict() == {
        "epochs": 3,
        "training_seconds": 120.0,
        "best_epoch": 3,
        "best_val_accuracy": 0.8,
        "test_accuracy": 0.79,
        "test_accuracy_tta": 0.81,
        "test_log_loss": 0.65,
    }
    notebook = rows.loc["notebook"]
    assert notebook["epochs"] == 4
    assert notebook["training_seconds"] == 240.0
    # The returned model's epoch, not the last or the highest accuracy's.
    assert notebook["best_epoch"] == 2
    assert notebook["best_val_accuracy"] == pytest.approx(0.45)
    assert notebook["test_accuracy"] == pytest.approx(0.44)
    assert pd.isna(notebook["test_accuracy_tta"])
    assert notebook["test_log_loss"] == pytest.approx(1.6)


def test_compare_variants_without_a_best_row(results) -> None:
    results["notebook__history"]["best"] = False
    table, _ = compare_variants(**results)
    notebook = table.set_index("variant").loc["notebook"]
    assert pd.isna(notebook["best_epoch"])
    assert pd.isna(notebook["best_val_accuracy"])


def test_compare_variants_figure_has_both_variants(results) -> None:
    _, fig = compare_variants(**results)

    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    for ax, column in zip(fig.axes, ("val_accuracy", "accuracy"), strict=True):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert set(lines) == {"default", "notebook"}
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == ["default", "notebook"]
        assert ax.get_xlabel() == "training time (minutes)"
        for variant, line in lines.items():
            run = results[f"{variant}__history"]
            # Each epoch at the training time elapsed by its end.
            np.testing.assert_allclose(line.get_xdata(), run["seconds"].cumsum() / 60)
            np.testing.assert_allclose(line.get_ydata(), run[column])
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_xdata(), [0.5, 1.0, 2.0])
    assert fig.axes[0].get_title().startswith("validation accuracy")
    assert fig.axes[1].get_title().startswith("training accuracy")


def test_the_compare_pipeline_feeds_every_variant_to_the_node() -> None:
    (node,) = [n for n in create_pipeline().nodes if n.name == "compare_variants"]
    assert node.outputs == ["comparison", "comparison_plot"]
    expected = {"test_metrics", "training_history"}
    assert variant_names() == ("notebook",)
    for variant in variant_names():
        expected |= {f"{variant}.test_metrics", f"{variant}.training_history"}
    assert set(node.inputs) == expected
    # Every variant trains and reports on the shared arrays, under its namespace.
    for variant in variant_names():
        names = {n.name for n in create_pipeline().nodes}
        assert {f"{variant}.train_model", f"{variant}.predict_test"} <= names
