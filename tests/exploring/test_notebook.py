"""notebooks/explore_results.ipynb runs as `kedro jupyter` runs it, on a smoke run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.exploring.conftest import TEST_OUTPUT

NOTEBOOK = Path("notebooks") / "explore_results.ipynb"
# The sample grid, the loss and accuracy curves, the confusion matrix, the predictions,
# the reliability diagram, and the prediction for "your own image".
FIGURES = 7


def test_notebook_is_committed_without_outputs():
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(PROJECT_ROOT / NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source
    # `kedro jupyter lab/notebook` open it in the kernel they create for the project.
    assert notebook.metadata.kernelspec.name == "kedro_cifar10_kedro"


def write_kernel(kernels: Path, name: str, *extra_args: str) -> None:
    """A kernel spec running this interpreter, like the one `kedro jupyter` installs."""
    spec = kernels / "kernels" / name
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec_json = {
        "argv": [*argv, *extra_args],
        "display_name": name,
        "language": "python",
    }
    (spec / "kernel.json").write_text(json.dumps(spec_json))


@pytest.mark.slow
@pytest.mark.parametrize(
    "kernel",
    [
        # What `kedro jupyter lab` starts: the extension is loaded with the kernel.
        "kedro_cifar10_kedro",
        # Any other kernel, e.g. `jupyter nbconvert --execute`: the notebook loads it.
        "plain_python",
    ],
)
def test_notebook_runs_on_a_smoke_run(smoke_project, tmp_path, monkeypatch, kernel):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")

    write_kernel(tmp_path, "kedro_cifar10_kedro", "--ext", "kedro.ipython")
    write_kernel(tmp_path, "plain_python")
    # Kernel specs are looked up on JUPYTER_PATH first; the kernel inherits KEDRO_ENV.
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setenv("KEDRO_ENV", "smoke")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")

    notebook = nbformat.read(smoke_project / NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        kernel_name=kernel,
        timeout=300,
        # Jupyter runs a notebook in its own folder; Kedro finds the project above it.
        resources={"metadata": {"path": str(smoke_project / NOTEBOOK.parent)}},
    )
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        executed = TEST_OUTPUT / "notebooks" / f"explore_results.{kernel}.ipynb"
        executed.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, executed)

    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    text = "".join(output.get("text", "") for output in outputs)
    assert "Kedro environment: smoke" in text
    assert f"Project: {smoke_project}" in text
    # conf/smoke's subset: 20 test images per class, 20 % of 600 for validation.
    assert "Test images: 200" in text
    assert "Validation images: 120" in text
    assert (
        "Architecture: fast_cnn, optimizer: sgd, batch size: 64, at most 2 epochs"
        in text
    )
    assert ", log loss: " in text and "expected calibration error: " in text
    assert "With test-time augmentation (6 views)" in text
    # The smoke run did not choose the test-time augmentation (tta_selection).
    assert "kedro run --pipeline tta_selection" in text
    # The smoke run did not run the compare pipeline.
    assert "No comparison yet: run `kedro run --pipeline compare`" in text
    tables = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    # The pipelines table lists compare; the calibration table is before and after.
    assert "<th>compare</th>" in tables
    assert "<th>validation, before</th>" in tables
    assert "<th>test, temperature-scaled</th>" in tables
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == FIGURES
