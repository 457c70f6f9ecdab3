"""`kedro run --pipeline inference` through real Kedro sessions on a trained project."""

from __future__ import annotations

import json
import logging
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError
from PIL import Image

from cifar10_kedro.pipelines.inference.nodes import ImageReadError
from tests.conftest import OFFICIAL_CLASS_NAMES
from tests.datasets.test_image_source_dataset import snapshot
from tests.image_files import BROKEN, write_every_format
from tests.model_use.conftest import run_project
from tests.pipelines.test_pipelines import latest, versions

pytestmark = pytest.mark.slow

OUTPUTS = [
    "07_model_output/inference_predictions.csv",
    "08_reporting/inference_contact_sheet.png",
    "08_reporting/inference_summary.json",
]


def data_root(project: Path) -> Path:
    return project / "data" / "smoke"


def infer(
    project: Path, path: Path | str | None, load_versions: dict | None = None, **params
) -> dict:
    """`kedro run --pipeline inference --params inference.input_path=PATH,...`."""
    inference = {"input_path": None if path is None else str(path), **params}
    return run_project(
        project,
        runtime_params={"inference": inference},
        pipeline_names=["inference"],
        load_versions=load_versions,
    )


def predictions(project: Path) -> pd.DataFrame:
    return pd.read_csv(latest(data_root(project), OUTPUTS[0]))


@pytest.fixture
def every_format_folder(tmp_path) -> tuple[Path, dict[str, bytes]]:
    folder = tmp_path / "my photos"
    images = write_every_format(folder)
    (folder / "notes.txt").write_text("not an image")
    return folder, images


def test_every_format_is_classified_and_unreadable_files_only_noted(
    trained_project, every_format_folder, caplog
):
    folder, images = every_format_folder
    before = snapshot(folder)
    with caplog.at_level(logging.INFO):
        infer(trained_project, folder)

    table = predictions(trained_project)
    assert list(table["file"]) == sorted(images)
    errors = table.set_index("file")["error"].fillna("")
    assert {f for f, e in errors.items() if e} == BROKEN
    assert "not an image" in errors["not_an_image.jpg"]
    ok = table[errors.to_numpy() == ""]
    assert set(ok["predicted_class"]) <= set(OFFICIAL_CLASS_NAMES)
    assert ok["confidence"].between(0, 1).all()
    assert {"top_3_class", "top_3_probability", "width", "height"} <= set(table.columns)
    assert table["model_version"].nunique() == 1

    summary = json.loads(latest(data_root(trained_project), OUTPUTS[2]).read_text())
    assert (summary["files"], summary["unreadable"]) == (len(images), 2)
    with Image.open(latest(data_root(trained_project), OUTPUTS[1])) as sheet:
        assert sheet.format == "PNG" and sheet.size[0] > 300

    # A warning names each unreadable file; the log ends with the counts.
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert all(any(f"'{name}'" in w for w in warnings) for name in BROKEN)
    ours = [
        r.getMessage() for r in caplog.records if r.name.startswith("cifar10_kedro")
    ]
    assert ours[-1].startswith(f"Inference on '{folder}' done: {len(images)} file(s)")
    # Nothing under the path was touched.
    assert snapshot(folder) == before


def test_an_archive_works_as_a_folder_does(
    trained_project, every_format_folder, tmp_path
):
    folder, images = every_format_folder
    archive = tmp_path / "photos.tar.gz"
    with tarfile.open(archive, "w:gz") as tarred:
        tarred.add(folder, arcname="photos")
    infer(
        trained_project,
        archive,
        contact_sheet={"max_images": 3, "columns": 3, "low_confidence": 0.5},
    )
    table = predictions(trained_project)
    assert list(table["file"]) == [f"photos/{name}" for name in sorted(images)]


def test_on_error_fail_stops_at_the_first_unreadable_file_and_writes_nothing(
    trained_project, every_format_folder
):
    folder, _ = every_format_folder
    before = snapshot(data_root(trained_project))
    with pytest.raises(
        ImageReadError, match=r"^'not_an_image.jpg' under .* cannot be read"
    ):
        infer(trained_project, folder, on_error="fail")
    assert snapshot(data_root(trained_project)) == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: None, "No images to read: set --params inference.input_path=PATH"),
        (lambda tmp: tmp / "missing", "(inference.input_path) does not exist"),
        (lambda tmp: tmp, "is an empty folder"),
        (
            lambda tmp: (tmp / "a.txt").write_text("x") and tmp,
            "has no image files: 1 other file(s) ('a.txt')",
        ),
    ],
    ids=["not set", "missing", "empty", "no images"],
)
def test_a_path_without_images_is_a_clear_error_and_writes_nothing(
    trained_project, tmp_path, make, message
):
    before = snapshot(data_root(trained_project))
    with pytest.raises(DatasetError) as raised:
        infer(trained_project, make(tmp_path))
    assert message in str(raised.value)
    assert snapshot(data_root(trained_project)) == before


def test_the_newest_model_is_used_unless_load_versions_names_one(
    trained_project, every_format_folder
):
    folder, _ = every_format_folder
    models = data_root(trained_project) / "06_models/model.keras"
    newest = versions(data_root(trained_project), "06_models/model.keras")[-1]
    older = "2000-01-01T00.00.00.000Z"
    shutil.copytree(models / newest, models / older)
    try:
        infer(trained_project, folder)
        assert set(predictions(trained_project)["model_version"]) == {newest}
        infer(trained_project, folder, load_versions={"trained_model": older})
        assert set(predictions(trained_project)["model_version"]) == {older}
    finally:
        shutil.rmtree(models / older)


def official_order(folder: Path) -> list[str]:
    """The test files in x_test's order: class by class (label order), by name."""
    return [
        f"{cls}/{path.name}"
        for cls in OFFICIAL_CLASS_NAMES
        for path in sorted((folder / cls).iterdir())
    ]


def test_the_10000_test_images_as_files_get_reportings_predictions(
    trained_project, test_image_folder
):
    """The model sees exactly what evaluation fed it: same pixels, same predictions."""
    from cifar10_kedro.preprocessing import prepare_image  # noqa: PLC0415

    root = data_root(trained_project)
    expected = pd.read_csv(latest(root, "07_model_output/test_predictions.csv"))
    assert len(expected) == 10_000
    infer(trained_project, test_image_folder)
    table = predictions(trained_project).set_index("file")
    order = official_order(test_image_folder)
    assert len(table) == 10_000 and table["error"].isna().all()
    ours = table.loc[order]
    assert (
        ours["predicted_class"].to_numpy() == expected["predicted_class"].to_numpy()
    ).all()
    np.testing.assert_allclose(
        ours["confidence"].to_numpy(), expected["confidence"].to_numpy(), atol=1e-6
    )
    # And the pixels: the files decode to x_test exactly.
    x_test = pd.read_pickle(root / "05_model_input/x_test.pkl")
    for i in range(0, 10_000, 97):
        data = (test_image_folder / order[i]).read_bytes()
        pixels = prepare_image(data, resize="crop", max_pixels=50_000_000).pixels
        np.testing.assert_array_equal(pixels, x_test[i])
