"""KerasModelDataset: .keras files through Keras alone, versioned, in safe mode."""

from __future__ import annotations

import json
import uuid
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from kedro.io import DatasetError
from kedro.io.core import Version

from cifar10_kedro.datasets import KerasModelDataset


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((4,), name="features"),
            keras.layers.Dense(3, activation="softmax", name="probabilities"),
        ],
        name="tiny",
    )


def predictions(model: keras.Model) -> np.ndarray:
    x = np.linspace(0, 1, 8, dtype="float32").reshape(2, 4)
    return model.predict(x, verbose=0)


def test_round_trip_keeps_weights_and_predictions(tmp_path):
    model = tiny_model()
    dataset = KerasModelDataset(filepath=str(tmp_path / "models" / "model.keras"))
    assert not dataset.exists()
    dataset.save(model)
    assert dataset.exists()
    loaded = dataset.load()
    np.testing.assert_allclose(predictions(loaded), predictions(model), rtol=1e-6)


def test_arguments_are_keyword_only(tmp_path):
    with pytest.raises(TypeError):
        KerasModelDataset(str(tmp_path / "model.keras"))  # type: ignore[misc]


def test_versions_are_kept_side_by_side(tmp_path):
    path = str(tmp_path / "model.keras")
    first, second = tiny_model(), tiny_model()
    second.layers[-1].kernel.assign(np.zeros((4, 3), dtype="float32"))
    KerasModelDataset(
        filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z")
    ).save(first)
    KerasModelDataset(
        filepath=path, version=Version(None, "2026-01-02T00.00.00.000Z")
    ).save(second)
    latest = KerasModelDataset(filepath=path, version=Version(None, None)).load()
    earlier = KerasModelDataset(
        filepath=path, version=Version("2026-01-01T00.00.00.000Z", None)
    ).load()
    assert not np.any(latest.layers[-1].kernel.numpy())
    assert np.any(earlier.layers[-1].kernel.numpy())
    assert (tmp_path / "model.keras/2026-01-01T00.00.00.000Z/model.keras").is_file()


def test_a_model_with_python_code_is_refused_in_safe_mode(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(DatasetError, match=r"lambda\.keras.*safe_mode"):
        KerasModelDataset(filepath=str(path)).load()


def test_a_file_that_is_not_a_keras_model_names_the_file(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("not a zip archive")
    with pytest.raises(
        DatasetError, match=r"model\.keras' is not a loadable \.keras model"
    ):
        KerasModelDataset(filepath=str(path)).load()


# -------------------------------------------------------------------------- check


@pytest.fixture
def saved(tmp_path) -> Path:
    path = tmp_path / "model.keras"
    KerasModelDataset(filepath=str(path)).save(tiny_model())
    return path


def test_check_returns_the_configuration_without_building(saved, monkeypatch):
    def no_building(*args, **kwargs):
        raise AssertionError("check() built the model")

    monkeypatch.setattr(keras.saving, "load_model", no_building)
    monkeypatch.setattr(keras.saving, "deserialize_keras_object", no_building)
    config = KerasModelDataset(filepath=str(saved)).check()
    assert config["class_name"] == "Sequential"
    assert config["config"]["name"] == "tiny"
    layers = [layer["class_name"] for layer in config["config"]["layers"]]
    assert layers == ["InputLayer", "Dense"]


def test_check_reads_the_version_it_would_load(tmp_path):
    path = str(tmp_path / "model.keras")
    KerasModelDataset(
        filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z")
    ).save(tiny_model())
    newer = tmp_path / "model.keras/2026-01-02T00.00.00.000Z/model.keras"
    newer.parent.mkdir()
    newer.write_text("not a zip archive")
    with pytest.raises(DatasetError, match="2026-01-02T00.00.00.000Z"):
        KerasModelDataset(filepath=path, version=Version(None, None)).check()
    older = Version("2026-01-01T00.00.00.000Z", None)
    assert KerasModelDataset(filepath=path, version=older).check()["config"]["name"]


def test_check_of_a_missing_version_says_so(tmp_path):
    dataset = KerasModelDataset(
        filepath=str(tmp_path / "model.keras"), version=Version(None, None)
    )
    with pytest.raises(DatasetError, match="model.keras"):
        dataset.check()


def test_check_refuses_a_truncated_file(saved):
    whole = saved.read_bytes()
    saved.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DatasetError) as info:
        KerasModelDataset(filepath=str(saved)).check()
    assert str(info.value).startswith(
        f"'{saved}' is not a loadable .keras model: it is not a zip archive, as every "
        ".keras file that Keras writes is"
    )


@pytest.mark.parametrize("member", ["config.json", "model.weights.h5"])
def test_check_names_a_corrupt_member(saved, member):
    with zipfile.ZipFile(saved) as archive:
        info = archive.getinfo(member)
    data = bytearray(saved.read_bytes())
    # Past the member's local header: one byte of its data, flipped.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0xFF
    saved.write_bytes(bytes(data))
    with pytest.raises(DatasetError) as found:
        KerasModelDataset(filepath=str(saved)).check()
    assert str(found.value) == (
        f"'{saved}' is not a loadable .keras model: its member '{member}' is corrupt."
    )
    # load() checks first: the same message, not Keras' own.
    with pytest.raises(DatasetError, match=f"its member '{member}' is corrupt"):
        KerasModelDataset(filepath=str(saved)).load()


def test_check_refuses_an_archive_without_a_configuration(tmp_path):
    path = tmp_path / "model.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
    with pytest.raises(
        DatasetError, match=r"is not a loadable \.keras model: .*config"
    ):
        KerasModelDataset(filepath=str(path)).check()


def test_check_accepts_code_when_safe_mode_is_off(tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2)])
    path = tmp_path / "lambda.keras"
    model.save(path)
    unsafe = KerasModelDataset(filepath=str(path), load_args={"safe_mode": False})
    assert unsafe.check()["config"]["layers"][1]["class_name"] == "Lambda"
    with pytest.raises(DatasetError, match="Lambda layer"):
        KerasModelDataset(filepath=str(path)).check()


# ------------------------------------------------------------------------ preview


def test_preview_lists_the_layers_without_building(saved, monkeypatch):
    def no_building(*args, **kwargs):
        raise AssertionError("preview() built the model")

    monkeypatch.setattr(keras.saving, "load_model", no_building)
    preview = KerasModelDataset(filepath=str(saved)).preview()
    assert isinstance(preview, str)  # kedro-viz's JSONPreview is a JSON string
    assert json.loads(preview) == {
        "class": "Sequential",
        "name": "tiny",
        "layers": ["InputLayer features", "Dense probabilities"],
    }


def test_preview_of_a_bad_file_names_it(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("not a zip archive")
    with pytest.raises(DatasetError, match="is not a loadable .keras model"):
        KerasModelDataset(filepath=str(path)).preview()


# ------------------------------------------------------------------- atomic saves


def failing_save(model, path, **kwargs):
    """Writes half a file where Keras was asked to write, then fails (a full disk,
    a kill): what an interrupted save leaves."""
    Path(path).write_bytes(b"PK\x03\x04 half a model")
    raise OSError("No space left on device (test)")


def test_a_failed_save_leaves_the_previous_file_intact(saved, monkeypatch):
    before = saved.read_bytes()
    monkeypatch.setattr(keras.saving, "save_model", failing_save)
    other = tiny_model()
    other.layers[-1].kernel.assign(np.zeros((4, 3), dtype="float32"))
    with pytest.raises(DatasetError, match="No space left"):
        KerasModelDataset(filepath=str(saved)).save(other)
    assert saved.read_bytes() == before
    # Nothing half-written is left beside it.
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]
    monkeypatch.undo()
    loaded = KerasModelDataset(filepath=str(saved)).load()
    np.testing.assert_allclose(predictions(loaded), predictions(tiny_model()))


def test_a_failed_versioned_save_leaves_no_version(tmp_path, monkeypatch):
    path = str(tmp_path / "model.keras")
    KerasModelDataset(
        filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z")
    ).save(tiny_model())
    monkeypatch.setattr(keras.saving, "save_model", failing_save)
    with pytest.raises(DatasetError, match="No space left"):
        KerasModelDataset(
            filepath=path, version=Version(None, "2026-01-02T00.00.00.000Z")
        ).save(tiny_model())
    files = sorted(
        p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()
    )
    assert files == ["model.keras/2026-01-01T00.00.00.000Z/model.keras"]
    monkeypatch.undo()
    # The latest version to load is still the first, whole.
    latest = KerasModelDataset(filepath=path, version=Version(None, None))
    assert latest.check()["config"]["name"] == "tiny"


def test_the_target_appears_only_once_written(tmp_path, monkeypatch):
    """Keras writes to a temporary name beside the target, never to the target."""
    target = tmp_path / "model.keras"
    written = []
    real_save = keras.saving.save_model

    def spy(model, path, **kwargs):
        written.append(Path(path))
        assert not target.exists()
        real_save(model, path, **kwargs)

    monkeypatch.setattr(keras.saving, "save_model", spy)
    KerasModelDataset(filepath=str(target)).save(tiny_model())
    (used,) = written
    assert used != target
    assert used.parent == target.parent
    assert not used.exists()  # renamed onto the target
    assert zipfile.is_zipfile(target)


# ------------------------------------------------------------- other filesystems


def test_memory_filesystem_round_trip():
    path = f"memory:///models-{uuid.uuid4().hex}/model.keras"
    model = tiny_model()
    dataset = KerasModelDataset(filepath=path)
    assert not dataset.exists()
    dataset.save(model)
    assert dataset.exists()
    assert dataset.check()["config"]["name"] == "tiny"
    np.testing.assert_allclose(
        predictions(dataset.load()), predictions(model), rtol=1e-6
    )


def test_memory_filesystem_versions_and_errors_name_the_url():
    root = f"memory:///models-{uuid.uuid4().hex}"
    path = f"{root}/model.keras"
    KerasModelDataset(
        filepath=path, version=Version(None, "2026-01-01T00.00.00.000Z")
    ).save(tiny_model())
    loaded = KerasModelDataset(filepath=path, version=Version(None, None)).load()
    assert loaded.name == "tiny"

    import fsspec  # noqa: PLC0415

    broken = f"{root}/broken.keras"
    with fsspec.open(broken, "wb") as file:
        file.write(b"not a zip archive")
    with pytest.raises(DatasetError) as info:
        KerasModelDataset(filepath=broken).check()
    assert str(info.value).startswith(
        f"'{broken}' is not a loadable .keras model: it is not a zip archive"
    )
