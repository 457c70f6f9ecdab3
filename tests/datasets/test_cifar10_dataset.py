"""Tests for ``CIFAR10Dataset`` on tiny archives and image trees, local and in memory."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import inspect
import io
import os
import pickle
import re
import tarfile
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import fsspec
import numpy as np
import pytest
import yaml
from fsspec.implementations.memory import MemoryFileSystem
from kedro.io import AbstractDataset, DataCatalog, DatasetError
from PIL import Image

from cifar10_kedro.datasets import CIFAR10Dataset, cifar10_dataset
from cifar10_kedro.datasets.cifar10_dataset import CLASS_NAMES, PREVIEW_GAP
from tests.conftest import OFFICIAL_CLASS_NAMES, PROJECT_ROOT

PER_BATCH = 20
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let urlopen reach only 127.0.0.1 and file:// URLs, never the internet."""
    real_urlopen = urllib.request.urlopen

    def local_only(url, *args, **kwargs):
        full = url.full_url if isinstance(url, urllib.request.Request) else url
        parsed = urllib.parse.urlparse(full)
        if parsed.scheme != "file" and parsed.hostname != "127.0.0.1":
            raise AssertionError(f"test tried to reach the network: {full}")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", local_only)


@pytest.fixture(scope="module")
def subset(lossless_subset: Path) -> tuple[np.ndarray, np.ndarray]:
    """The real, exact CIFAR-10 test images and labels."""
    with np.load(lossless_subset) as npz:
        return npz["x_test"], npz["y_test"].astype(np.int64)


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def official_batch(x: np.ndarray, y: np.ndarray, label: str) -> dict[bytes, object]:
    """Return a batch dict exactly like the official pickles (channel-first planes)."""
    data = np.ascontiguousarray(x.transpose(0, 3, 1, 2).reshape(len(x), 3072))
    return {
        b"batch_label": label.encode(),
        b"labels": [int(v) for v in y],
        b"data": data,
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(x))],
    }


def write_tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    """Write ``members`` (archive name -> bytes) as a .tar.gz at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def official_members(
    x: np.ndarray, y: np.ndarray, per_batch: int = PER_BATCH
) -> dict[str, bytes]:
    """The files of ``cifar-10-python.tar.gz`` for 5 train batches and 1 test batch."""
    members: dict[str, bytes] = {
        "cifar-10-batches-py/batches.meta": pickle.dumps(
            {
                b"num_cases_per_batch": per_batch,
                b"label_names": [c.encode() for c in OFFICIAL_CLASS_NAMES],
                b"num_vis": 3072,
            },
            protocol=2,
        ),
        "cifar-10-batches-py/readme.html": b"<html></html>",
    }
    for i, name in enumerate([*TRAIN_BATCHES, "test_batch"]):
        part = slice(i * per_batch, (i + 1) * per_batch)
        label = f"training batch {i + 1} of 5" if i < 5 else "testing batch 1 of 1"
        members[f"cifar-10-batches-py/{name}"] = pickle.dumps(
            official_batch(x[part], y[part], label), protocol=2
        )
    return members


def write_official_archive(
    path: Path,
    x: np.ndarray,
    y: np.ndarray,
    replace: dict[str, object] | None = None,
) -> tuple[Path, str]:
    """Write a tiny official-format archive; return its path and md5.

    ``replace`` maps batch names to objects pickled in place of the real batch.
    """
    members = official_members(x, y)
    for name, obj in (replace or {}).items():
        members[f"cifar-10-batches-py/{name}"] = pickle.dumps(obj, protocol=2)
    write_tar_gz(path, members)
    return path, md5_of(path)


def png_bytes(image: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def decode(payload: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(payload)) as image:
        return np.asarray(image.convert("RGB"))


def tree_members(
    x: np.ndarray, y: np.ndarray, train_per_class: int = 2, test_per_class: int = 1
) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """An image tree train/<class>/*.png, test/<class>/*.jpg of real images.

    Returns (relative path -> file bytes, expected arrays in the loader's order).
    """
    members: dict[str, bytes] = {}
    x_train, y_train, x_test, y_test = [], [], [], []
    for label, cls in enumerate(OFFICIAL_CLASS_NAMES):
        index = np.flatnonzero(y == label)
        for k, i in enumerate(index[:train_per_class]):
            members[f"train/{cls}/{k:04d}.png"] = png_bytes(x[i])
            x_train.append(x[i])
            y_train.append(label)
        for k, i in enumerate(
            index[train_per_class : train_per_class + test_per_class]
        ):
            payload = jpeg_bytes(x[i])
            members[f"test/{cls}/{k:04d}.jpg"] = payload
            x_test.append(decode(payload))
            y_test.append(label)
    expected = {
        "x_train": np.stack(x_train),
        "y_train": np.array(y_train),
        "x_test": np.stack(x_test),
        "y_test": np.array(y_test),
    }
    return members, expected


def write_folder(root: Path, members: dict[str, bytes]) -> Path:
    for name, payload in members.items():
        file = root / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(payload)
    return root


def assert_matches(data: dict[str, object], expected: dict[str, np.ndarray]) -> None:
    assert data["class_names"] == OFFICIAL_CLASS_NAMES
    for key in ("x_train", "x_test"):
        assert data[key].dtype == np.uint8
        assert data[key].shape == expected[key].shape
        np.testing.assert_array_equal(data[key], expected[key])
    for key in ("y_train", "y_test"):
        np.testing.assert_array_equal(data[key], expected[key])


# ------------------------------------------------------------------ official archive


def test_class_names_constant_is_official_order() -> None:
    assert list(CLASS_NAMES) == OFFICIAL_CLASS_NAMES


def test_official_archive_loads_exact_pixels(tmp_path: Path, subset) -> None:
    x, y = subset
    path, md5 = write_official_archive(tmp_path / "cifar-10-python.tar.gz", x, y)

    data = CIFAR10Dataset(filepath=str(path), url=None, md5=md5).load()

    train = 5 * PER_BATCH
    assert set(data) == {"x_train", "y_train", "x_test", "y_test", "class_names"}
    assert data["x_train"].shape == (train, 32, 32, 3)
    assert data["x_test"].shape == (PER_BATCH, 32, 32, 3)
    assert data["x_train"].dtype == np.uint8
    assert data["x_test"].dtype == np.uint8
    # Exact pixels: verifies the (N, 3072) channel-first -> (N, 32, 32, 3) conversion.
    np.testing.assert_array_equal(data["x_train"], x[:train])
    np.testing.assert_array_equal(data["x_test"], x[train : train + PER_BATCH])
    np.testing.assert_array_equal(data["y_train"], y[:train])
    np.testing.assert_array_equal(data["y_test"], y[train : train + PER_BATCH])
    assert data["y_train"].dtype == np.int64
    assert data["class_names"] == OFFICIAL_CLASS_NAMES


def test_official_archive_channel_planes_are_rgb(tmp_path: Path) -> None:
    """A pure red, green and blue image come out with the right channel set."""
    x = np.zeros((120, 32, 32, 3), dtype=np.uint8)
    for i in range(len(x)):
        x[i, :, :, i % 3] = 200
        x[i, 0, 1, :] = (1, 2, 3)  # one marked pixel: row 0, column 1
    y = np.arange(120) % 10
    path, md5 = write_official_archive(tmp_path / "c.tar.gz", x, y)

    data = CIFAR10Dataset(filepath=str(path), url=None, md5=md5).load()

    assert data["x_train"][0, 5, 5].tolist() == [200, 0, 0]
    assert data["x_train"][1, 5, 5].tolist() == [0, 200, 0]
    assert data["x_train"][2, 5, 5].tolist() == [0, 0, 200]
    assert data["x_train"][0, 0, 1].tolist() == [1, 2, 3]
    assert data["x_train"][0, 1, 0].tolist() == [200, 0, 0]


def test_official_archive_md5_none_skips_check(tmp_path: Path, subset) -> None:
    x, y = subset
    path, _ = write_official_archive(tmp_path / "c.tar.gz", x, y)
    data = CIFAR10Dataset(filepath=str(path), url=None, md5=None).load()
    assert data["x_train"].shape == (100, 32, 32, 3)


def test_wrong_checksum_names_file_and_expected_md5(tmp_path: Path, subset) -> None:
    x, y = subset
    path, actual = write_official_archive(tmp_path / "cifar-10-python.tar.gz", x, y)
    wrong = "0" * 32

    with pytest.raises(DatasetError) as info:
        CIFAR10Dataset(filepath=str(path), url=None, md5=wrong).load()

    message = str(info.value)
    assert str(path) in message
    assert f"has md5 {actual}, expected {wrong}" in message


def test_default_md5_is_the_official_one(tmp_path: Path, subset) -> None:
    x, y = subset
    path, _ = write_official_archive(tmp_path / "cifar-10-python.tar.gz", x, y)
    with pytest.raises(DatasetError, match="expected c58f30108f718f92721af3b95e74349a"):
        CIFAR10Dataset(filepath=str(path)).load()


def test_truncated_archive_is_reported_as_truncated(tmp_path: Path, subset) -> None:
    x, y = subset
    full, md5 = write_official_archive(tmp_path / "full.tar.gz", x, y)
    payload = full.read_bytes()
    cut = tmp_path / "cifar-10-python.tar.gz"
    cut.write_bytes(payload[: len(payload) // 2])

    with pytest.raises(DatasetError, match="truncated or corrupt") as info:
        CIFAR10Dataset(filepath=str(cut), url=None, md5=md5).load()
    assert str(cut) in str(info.value)


def test_not_an_archive_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cifar-10-python.tar.gz"
    path.write_bytes(b"this is not a tar file at all" * 100)
    with pytest.raises(
        DatasetError, match=r"is not a readable \.tar\.gz archive"
    ) as info:
        CIFAR10Dataset(filepath=str(path), url=None, md5=None).load()
    assert str(path) in str(info.value)


def test_batch_with_wrong_keys_is_reported(tmp_path: Path, subset) -> None:
    x, y = subset
    bad = {b"images": official_batch(x[:20], y[:20], "b")[b"data"], b"labels": [0] * 20}
    path, md5 = write_official_archive(
        tmp_path / "c.tar.gz", x, y, replace={"data_batch_3": bad}
    )
    with pytest.raises(
        DatasetError,
        match=r"data_batch_3' has keys \[b'images', b'labels'\]; expected b'data' and b'labels'",
    ):
        CIFAR10Dataset(filepath=str(path), url=None, md5=md5).load()


def test_batch_with_wrong_shape_is_reported(tmp_path: Path, subset) -> None:
    x, y = subset
    bad = official_batch(x[:20], y[:20], "b")
    bad[b"data"] = bad[b"data"][:, :1024]
    path, md5 = write_official_archive(
        tmp_path / "c.tar.gz", x, y, replace={"test_batch": bad}
    )
    with pytest.raises(
        DatasetError,
        match=r"test_batch' has data of shape \(20, 1024\) and dtype uint8; "
        r"expected \(N, 3072\) uint8",
    ):
        CIFAR10Dataset(filepath=str(path), url=None, md5=md5).load()


def test_batch_with_wrong_label_count_is_reported(tmp_path: Path, subset) -> None:
    x, y = subset
    bad = official_batch(x[:20], y[:20], "b")
    bad[b"labels"] = bad[b"labels"][:19]
    path, md5 = write_official_archive(
        tmp_path / "c.tar.gz", x, y, replace={"data_batch_1": bad}
    )
    with pytest.raises(
        DatasetError, match=r"data_batch_1' has \(19,\) labels for 20 images"
    ):
        CIFAR10Dataset(filepath=str(path), url=None, md5=md5).load()


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([10, 3, -1] + [0] * 17, r"has labels \[-1, 10\] outside 0..9; expected"),
        ([0.5] * 20, r"has labels of type float64; expected integers"),
    ],
    ids=["outside-0-9", "not-integers"],
)
def test_batch_with_bad_labels_is_reported(
    tmp_path: Path, subset, labels, message
) -> None:
    x, y = subset
    bad = official_batch(x[:20], y[:20], "b")
    bad[b"labels"] = labels
    path, md5 = write_official_archive(
        tmp_path / "c.tar.gz", x, y, replace={"data_batch_2": bad}
    )
    with pytest.raises(DatasetError, match=r"data_batch_2' " + message):
        CIFAR10Dataset(filepath=str(path), url=None, md5=md5).load()


def test_missing_batch_is_reported(tmp_path: Path, subset) -> None:
    x, y = subset
    members = official_members(x, y)
    del members["cifar-10-batches-py/data_batch_4"]
    path = write_tar_gz(tmp_path / "c.tar.gz", members)
    with pytest.raises(
        DatasetError, match="lacks the batch 'cifar-10-batches-py/data_batch_4'"
    ):
        CIFAR10Dataset(filepath=str(path), url=None, md5=None).load()


def test_missing_file_without_url_says_where_to_put_it(tmp_path: Path) -> None:
    path = tmp_path / "raw" / "cifar-10-python.tar.gz"
    dataset = CIFAR10Dataset(filepath=str(path), url=None)
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="Put the official") as info:
        dataset.load()
    message = str(info.value)
    assert f"CIFAR-10 not found at '{path}'" in message
    assert "cifar-10-python.tar.gz" in message
    assert "CIFAR10_RAW_PATH" in message
    assert not path.exists()


def test_dataset_is_read_only_and_describes_itself(tmp_path: Path) -> None:
    dataset = CIFAR10Dataset(filepath=str(tmp_path / "c.tar.gz"), url=None, md5="abc")
    with pytest.raises(DatasetError, match="read-only"):
        dataset.save({})
    assert dataset._describe() == {
        "filepath": str(tmp_path / "c.tar.gz"),
        "protocol": "file",
        "url": None,
        "md5": "abc",
    }


# ------------------------------------------------------------------------- download


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from a folder; paths under /truncated/ send half the body."""

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/truncated/"):
            payload = (
                Path(self.directory) / self.path.removeprefix("/truncated/")
            ).read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/gzip")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1; yields (folder, base URL)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_Handler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_over_http_when_missing(tmp_path: Path, subset, http_root) -> None:
    x, y = subset
    root, base = http_root
    source, md5 = write_official_archive(root / "tiny.tar.gz", x, y)
    target = tmp_path / "data" / "01_raw" / "cifar-10-python.tar.gz"

    data = CIFAR10Dataset(
        filepath=str(target), url=f"{base}/tiny.tar.gz", md5=md5
    ).load()

    assert target.read_bytes() == source.read_bytes()
    assert leftovers(target.parent) == [target.name]  # no .part file left
    np.testing.assert_array_equal(data["x_train"], x[:100])
    np.testing.assert_array_equal(data["y_test"], y[100:120])


def test_download_from_file_url(tmp_path: Path, subset) -> None:
    x, y = subset
    source, md5 = write_official_archive(tmp_path / "src" / "tiny.tar.gz", x, y)
    target = tmp_path / "raw" / "cifar-10-python.tar.gz"

    data = CIFAR10Dataset(filepath=str(target), url=source.as_uri(), md5=md5).load()

    assert md5_of(target) == md5
    assert leftovers(target.parent) == [target.name]
    np.testing.assert_array_equal(data["x_test"], x[100:120])


def test_existing_file_is_not_downloaded(tmp_path: Path, subset, monkeypatch) -> None:
    x, y = subset
    path, md5 = write_official_archive(tmp_path / "c.tar.gz", x, y)

    def fail(*args, **kwargs):
        raise AssertionError("urlopen must not be called for an existing file")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    data = CIFAR10Dataset(
        filepath=str(path), url="http://127.0.0.1:9/never", md5=md5
    ).load()
    assert data["x_train"].shape == (100, 32, 32, 3)


def test_download_with_wrong_md5_keeps_nothing(
    tmp_path: Path, subset, http_root
) -> None:
    x, y = subset
    root, base = http_root
    _, md5 = write_official_archive(root / "tiny.tar.gz", x, y)
    target = tmp_path / "raw" / "cifar-10-python.tar.gz"
    wrong = "f" * 32

    with pytest.raises(
        DatasetError, match=f"has md5 {md5}, expected {wrong}; nothing was kept"
    ):
        CIFAR10Dataset(
            filepath=str(target), url=f"{base}/tiny.tar.gz", md5=wrong
        ).load()

    assert not target.exists()
    assert leftovers(target.parent) == []


def test_truncated_download_keeps_nothing(tmp_path: Path, subset, http_root) -> None:
    x, y = subset
    root, base = http_root
    source, md5 = write_official_archive(root / "tiny.tar.gz", x, y)
    size = source.stat().st_size
    target = tmp_path / "raw" / "cifar-10-python.tar.gz"
    url = f"{base}/truncated/tiny.tar.gz"

    with pytest.raises(DatasetError, match=re.escape(url)) as info:
        CIFAR10Dataset(filepath=str(target), url=url, md5=md5).load()

    assert re.search(rf"stopped after {size // 2} of {size} bytes", str(info.value))
    assert not target.exists()
    assert leftovers(target.parent) == []


def test_truncated_download_without_md5_keeps_nothing(
    tmp_path: Path, subset, http_root
) -> None:
    """Without a checksum the Content-Length check alone must catch the short body."""
    x, y = subset
    root, base = http_root
    write_official_archive(root / "tiny.tar.gz", x, y)
    target = tmp_path / "raw" / "cifar-10-python.tar.gz"

    with pytest.raises(DatasetError, match="stopped after"):
        CIFAR10Dataset(
            filepath=str(target), url=f"{base}/truncated/tiny.tar.gz", md5=None
        ).load()

    assert leftovers(target.parent) == []


def test_failed_download_says_how_to_get_the_file(tmp_path: Path, http_root) -> None:
    _, base = http_root
    target = tmp_path / "raw" / "cifar-10-python.tar.gz"
    url = f"{base}/does-not-exist.tar.gz"

    with pytest.raises(DatasetError, match="Could not download CIFAR-10") as info:
        CIFAR10Dataset(filepath=str(target), url=url, md5=None).load()

    message = str(info.value)
    assert url in message
    assert f"put it at {target}" in message
    assert leftovers(target.parent) == []


# ------------------------------------------------------------------------ image tree


def test_image_tree_folder(tmp_path: Path, subset) -> None:
    members, expected = tree_members(*subset)
    root = write_folder(tmp_path / "tree", members)

    data = CIFAR10Dataset(filepath=str(root), url=None, workers=2).load()

    assert data["x_train"].shape == (20, 32, 32, 3)
    assert data["x_test"].shape == (10, 32, 32, 3)
    assert_matches(data, expected)  # PNG exact; JPEG equal to Pillow's decoding
    np.testing.assert_array_equal(data["y_train"], np.repeat(np.arange(10), 2))


def test_image_tree_png_pixels_are_exact(tmp_path: Path, subset) -> None:
    x, y = subset
    members, expected = tree_members(x, y)
    root = write_folder(tmp_path / "tree", members)
    data = CIFAR10Dataset(filepath=str(root), url=None).load()
    first_cat = np.flatnonzero(y == 3)[:2]
    np.testing.assert_array_equal(data["x_train"][6:8], x[first_cat])


@pytest.mark.parametrize("prefix", ["", "cifar10/"], ids=["flat", "top-level-folder"])
def test_image_tree_tar_gz(tmp_path: Path, subset, prefix: str) -> None:
    members, expected = tree_members(*subset)
    path = write_tar_gz(
        tmp_path / "tree.tar.gz",
        {prefix + name: data for name, data in members.items()},
    )
    data = CIFAR10Dataset(filepath=str(path), url=None).load()
    assert_matches(data, expected)


def test_image_tree_tar_gz_ignores_other_files(tmp_path: Path, subset) -> None:
    members, expected = tree_members(*subset)
    members["README.md"] = b"hello"
    members["train/cat/notes.txt"] = b"not an image"
    path = write_tar_gz(tmp_path / "tree.tar.gz", members)
    assert_matches(CIFAR10Dataset(filepath=str(path), url=None).load(), expected)


def test_image_tree_folder_and_tar_agree(tmp_path: Path, subset) -> None:
    members, _ = tree_members(*subset)
    from_folder = CIFAR10Dataset(
        filepath=str(write_folder(tmp_path / "tree", members))
    ).load()
    from_tar = CIFAR10Dataset(
        filepath=str(write_tar_gz(tmp_path / "t.tar.gz", members))
    ).load()
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(from_folder[key], from_tar[key])


def test_missing_class_folder_is_named(tmp_path: Path, subset) -> None:
    members, _ = tree_members(*subset)
    members = {k: v for k, v in members.items() if not k.startswith("train/frog/")}
    root = write_folder(tmp_path / "tree", members)
    with pytest.raises(
        DatasetError,
        match=r"split 'train' has no images for class folder\(s\) \['frog'\]",
    ):
        CIFAR10Dataset(filepath=str(root), url=None).load()


def test_unknown_class_folder_is_named(tmp_path: Path, subset) -> None:
    members, _ = tree_members(*subset)
    members["train/unicorn/0000.png"] = members["train/cat/0000.png"]
    path = write_tar_gz(tmp_path / "tree.tar.gz", members)
    with pytest.raises(DatasetError, match=r"unknown class folder\(s\) \['unicorn'\]"):
        CIFAR10Dataset(filepath=str(path), url=None).load()


def test_unreadable_image_is_named(tmp_path: Path, subset) -> None:
    members, _ = tree_members(*subset)
    members["train/cat/broken.png"] = b"\x89PNG but not really"
    root = write_folder(tmp_path / "tree", members)
    bad = root / "train" / "cat" / "broken.png"
    with pytest.raises(
        DatasetError, match=re.escape(f"Image '{bad}' cannot be read as PNG or JPEG")
    ):
        CIFAR10Dataset(filepath=str(root), url=None).load()


def test_unreadable_image_in_tar_is_named(tmp_path: Path, subset) -> None:
    members, _ = tree_members(*subset)
    members["test/dog/broken.jpg"] = b"garbage"
    path = write_tar_gz(tmp_path / "tree.tar.gz", members)
    with pytest.raises(
        DatasetError,
        match=re.escape(
            f"Image '{path}:test/dog/broken.jpg' cannot be read as PNG or JPEG"
        ),
    ):
        CIFAR10Dataset(filepath=str(path), url=None).load()


@pytest.mark.parametrize(
    ("image", "mode", "described"),
    [
        (np.zeros((16, 16, 3), dtype=np.uint8), None, "16x16 RGB"),
        (np.zeros((32, 32), dtype=np.uint8), "L", "32x32 L"),
    ],
    ids=["16x16", "grayscale"],
)
def test_wrong_size_or_mode_is_named(
    tmp_path: Path, subset, image: np.ndarray, mode: str | None, described: str
) -> None:
    members, _ = tree_members(*subset)
    members["train/ship/odd.png"] = png_bytes(image, mode)
    root = write_folder(tmp_path / "tree", members)
    bad = root / "train" / "ship" / "odd.png"
    with pytest.raises(
        DatasetError,
        match=re.escape(f"Image '{bad}' is {described}; expected a 32x32 RGB image."),
    ):
        CIFAR10Dataset(filepath=str(root), url=None).load()


def test_empty_split_is_reported(tmp_path: Path, subset) -> None:
    members, _ = tree_members(*subset)
    members = {k: v for k, v in members.items() if k.startswith("train/")}
    root = write_folder(tmp_path / "tree", members)
    with pytest.raises(
        DatasetError,
        match=r"split 'test' is empty; expected images under 'test/<class>/'",
    ):
        CIFAR10Dataset(filepath=str(root), url=None).load()


def test_folder_without_images_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    (root / "train" / "cat").mkdir(parents=True)
    (root / "train" / "cat" / "notes.txt").write_text("no images here")
    with pytest.raises(DatasetError, match="holds no image tree"):
        CIFAR10Dataset(filepath=str(root), url=None).load()


def test_archive_with_neither_form_is_reported(tmp_path: Path) -> None:
    path = write_tar_gz(tmp_path / "other.tar.gz", {"something/else.txt": b"x"})
    with pytest.raises(DatasetError, match="holds neither the official"):
        CIFAR10Dataset(filepath=str(path), url=None).load()


# ------------------------------------------------- fsspec, arguments, description


class RecordingFileSystem(MemoryFileSystem):
    """An in-memory filesystem of its own that records how it is opened."""

    protocol = "cifar10rec"
    store: ClassVar[dict] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]
    open_kwargs: ClassVar[list[dict[str, object]]] = []
    files_read: ClassVar[list[str]] = []

    def open(self, path, mode="rb", **kwargs):
        self.open_kwargs.append(kwargs)
        return super().open(path, mode=mode, **kwargs)

    def cat_file(self, path, start=None, end=None, **kwargs):
        self.files_read.append(path)
        return super().cat_file(path, start=start, end=end, **kwargs)


@pytest.fixture
def recording_fs() -> RecordingFileSystem:
    """An empty :class:`RecordingFileSystem` with nothing recorded yet."""
    RecordingFileSystem.store.clear()
    RecordingFileSystem.open_kwargs.clear()
    RecordingFileSystem.files_read.clear()
    return RecordingFileSystem()


fsspec.register_implementation("cifar10rec", RecordingFileSystem, clobber=True)


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A fresh folder on fsspec's shared in-memory filesystem, removed afterwards."""
    fs = fsspec.filesystem("memory")
    root = f"/cifar10-tests/{uuid.uuid4().hex}"
    yield root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def to_memory(local: Path, target: str) -> str:
    """Copy a file written locally to ``target`` in memory; return its memory:// URL."""
    fsspec.filesystem("memory").pipe(target, local.read_bytes())
    return f"memory://{target}"


def test_official_archive_on_a_memory_filesystem(
    tmp_path: Path, subset, memory_root: str
) -> None:
    x, y = subset
    local, md5 = write_official_archive(tmp_path / "c.tar.gz", x, y)
    url = to_memory(local, f"{memory_root}/cifar-10-python.tar.gz")
    local.unlink()  # only the in-memory copy is left to read

    dataset = CIFAR10Dataset(filepath=url, url=None, md5=md5)

    assert dataset.exists()
    data = dataset.load()
    np.testing.assert_array_equal(data["x_train"], x[:100])
    np.testing.assert_array_equal(data["y_test"], y[100:120])
    # The md5 is checked on the in-memory file too, and errors name it with its protocol.
    with pytest.raises(DatasetError, match=re.escape(f"'{url}' has md5 {md5}")):
        CIFAR10Dataset(filepath=url, url=None, md5="0" * 32).load()


def test_image_tree_tar_gz_on_a_memory_filesystem(
    tmp_path: Path, subset, memory_root: str
) -> None:
    members, expected = tree_members(*subset)
    local = write_tar_gz(tmp_path / "tree.tar.gz", members)
    url = to_memory(local, f"{memory_root}/tree.tar.gz")
    local.unlink()
    assert_matches(CIFAR10Dataset(filepath=url, url=None).load(), expected)


def test_image_tree_folder_on_a_memory_filesystem(subset, memory_root: str) -> None:
    members, expected = tree_members(*subset)
    fs = fsspec.filesystem("memory")
    for name, payload in members.items():
        fs.pipe(f"{memory_root}/tree/{name}", payload)
    fs.pipe(f"{memory_root}/tree/README.md", b"not an image")

    data = CIFAR10Dataset(filepath=f"memory://{memory_root}/tree", url=None).load()

    assert_matches(data, expected)


def test_errors_on_a_memory_filesystem_name_the_url(
    tmp_path: Path, subset, memory_root: str
) -> None:
    members, _ = tree_members(*subset)
    members["test/dog/broken.jpg"] = b"garbage"
    url = to_memory(
        write_tar_gz(tmp_path / "t.tar.gz", members), f"{memory_root}/t.tar.gz"
    )
    with pytest.raises(
        DatasetError,
        match=re.escape(f"Image '{url}:test/dog/broken.jpg' cannot be read"),
    ):
        CIFAR10Dataset(filepath=url, url=None).load()


def test_missing_remote_file_is_never_downloaded(memory_root: str, monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("nothing may be downloaded for a remote filepath")

    monkeypatch.setattr(urllib.request, "urlopen", fail)
    url = f"memory://{memory_root}/cifar-10-python.tar.gz"
    dataset = CIFAR10Dataset(filepath=url)  # the official URL is the default

    assert not dataset.exists()
    with pytest.raises(DatasetError) as info:
        dataset.load()
    message = str(info.value)
    assert f"CIFAR-10 not found at '{url}'" in message
    assert "downloaded only to a local path" in message
    assert not fsspec.filesystem("memory").exists(memory_root)


def test_arguments_are_keyword_only(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        CIFAR10Dataset(str(tmp_path / "c.tar.gz"))  # type: ignore[misc]
    parameters = inspect.signature(CIFAR10Dataset.__init__).parameters
    assert {p.kind for name, p in parameters.items() if name != "self"} == {
        inspect.Parameter.KEYWORD_ONLY
    }


class _PathLike:
    """An ``os.PathLike`` that is not a ``pathlib.Path``."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __fspath__(self) -> str:
        return str(self._path)


@pytest.mark.parametrize("wrap", [Path, _PathLike], ids=["Path", "PathLike"])
def test_filepath_may_be_path_like(tmp_path: Path, subset, wrap) -> None:
    x, y = subset
    path, md5 = write_official_archive(tmp_path / "c.tar.gz", x, y)

    dataset = CIFAR10Dataset(filepath=wrap(path), url=None, md5=md5)

    assert isinstance(wrap(path), os.PathLike)
    assert dataset._describe()["filepath"] == str(path)
    np.testing.assert_array_equal(dataset.load()["x_test"], x[100:120])


@pytest.mark.parametrize(
    ("filepath", "protocol", "path"),
    [
        ("data/01_raw/c.tar.gz", "file", "data/01_raw/c.tar.gz"),
        ("file:///tmp/c.tar.gz", "file", "/tmp/c.tar.gz"),
        ("memory:///raw/c.tar.gz", "memory", "/raw/c.tar.gz"),
    ],
)
def test_describe_names_the_protocol(filepath: str, protocol: str, path: str) -> None:
    described = CIFAR10Dataset(filepath=filepath, url=None)._describe()
    assert described["protocol"] == protocol
    assert described["filepath"] == path


def test_credentials_and_fs_args_reach_the_filesystem(
    tmp_path: Path, subset, recording_fs: RecordingFileSystem
) -> None:
    members, expected = tree_members(*subset)
    local = write_tar_gz(tmp_path / "tree.tar.gz", members)
    recording_fs.pipe("/raw/tree.tar.gz", local.read_bytes())
    RecordingFileSystem.open_kwargs.clear()

    # Through the catalog, as a project configures it: credentials by name.
    catalog = DataCatalog.from_config(
        {
            "raw": {
                "type": "cifar10_kedro.datasets.CIFAR10Dataset",
                "filepath": "cifar10rec:///raw/tree.tar.gz",
                "url": None,
                "credentials": "store",
                "fs_args": {"anon": True, "open_args_load": {"block_size": 4096}},
            }
        },
        credentials={"store": {"token": "s3cr3t"}},
    )
    data = catalog.load("raw")

    assert_matches(data, expected)
    fs = catalog.get("raw")._fs
    assert isinstance(fs, RecordingFileSystem)
    # The constructor got the credentials and fs_args; open() only open_args_load.
    assert fs.storage_options == {"token": "s3cr3t", "anon": True}
    assert RecordingFileSystem.open_kwargs == [{"block_size": 4096}]


# -------------------------------------------------------------------------- preview


def preview_png(preview: str) -> Image.Image:
    payload = base64.b64decode(preview, validate=True)
    assert payload.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(payload))
    assert image.format == "PNG"
    return image.convert("RGB")


def cell(grid: Image.Image, row: int, col: int, per_class: int, scale: int):
    """The pixels of one preview cell (rows are classes; cells are right-aligned)."""
    step = 32 * scale + PREVIEW_GAP
    left = grid.width - (per_class - col) * step
    top = PREVIEW_GAP + row * step
    return np.asarray(grid.crop((left, top, left + 32 * scale, top + 32 * scale)))


def enlarged(image: np.ndarray, scale: int) -> np.ndarray:
    return image.repeat(scale, axis=0).repeat(scale, axis=1)


@pytest.fixture
def decodes(monkeypatch) -> list[str]:
    """The names of the images the dataset decodes, in order."""
    names: list[str] = []
    real = cifar10_dataset._decode_image

    def counting(name: str, payload: bytes) -> np.ndarray:
        names.append(name)
        return real(name, payload)

    monkeypatch.setattr(cifar10_dataset, "_decode_image", counting)
    return names


def test_preview_of_a_tar_gz_decodes_few_images_and_stops_reading(
    tmp_path: Path, subset, decodes: list[str]
) -> None:
    x, y = subset
    members, _ = tree_members(x, y, train_per_class=5, test_per_class=2)
    # Incompressible bytes after the images, then the archive is cut inside them:
    # a preview that read on would fail as load does.
    members["zz/padding.bin"] = np.random.default_rng(0).bytes(2_000_000)
    full = write_tar_gz(tmp_path / "full.tar.gz", members)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.6)])
    dataset = CIFAR10Dataset(filepath=str(cut), url=None)
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        dataset.load()
    decodes.clear()

    grid = preview_png(dataset.preview(per_class=2, scale=3))

    assert len(decodes) == 20  # 2 of each class, of 70 images
    assert all(name.split(":")[-1].startswith("train/") for name in decodes)
    assert grid.height == 10 * (32 * 3 + PREVIEW_GAP) + PREVIEW_GAP
    for label in range(10):
        first_two = np.flatnonzero(y == label)[:2]  # train/<class>/0000, 0001.png
        for col, index in enumerate(first_two):
            np.testing.assert_array_equal(
                cell(grid, label, col, 2, 3), enlarged(x[index], 3)
            )


def test_preview_of_an_official_archive_decodes_the_first_rows_of_one_batch(
    tmp_path: Path, monkeypatch
) -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(600, 32, 32, 3), dtype=np.uint8)
    y = rng.permutation(np.arange(600) % 10)
    members = official_members(x, y, per_batch=100)
    path = write_tar_gz(tmp_path / "cifar-10-python.tar.gz", members)
    batches_read: list[str] = []
    rows_decoded: list[int] = []
    read_batch, to_images = cifar10_dataset._read_batch, cifar10_dataset._to_images

    def counting_read(payload: bytes, source: str):
        batches_read.append(source)
        return read_batch(payload, source)

    def counting_images(rows: np.ndarray) -> np.ndarray:
        rows_decoded.append(len(rows))
        return to_images(rows)

    monkeypatch.setattr(cifar10_dataset, "_read_batch", counting_read)
    monkeypatch.setattr(cifar10_dataset, "_to_images", counting_images)

    preview = CIFAR10Dataset(filepath=str(path), url=None, md5=md5_of(path)).preview(
        per_class=3, scale=1
    )

    assert batches_read == [f"{path}:cifar-10-batches-py/data_batch_1"]
    assert sum(rows_decoded) == 30
    grid = preview_png(preview)
    for label in range(10):
        for col, index in enumerate(np.flatnonzero(y[:100] == label)[:3]):
            np.testing.assert_array_equal(cell(grid, label, col, 3, 1), x[index])


def test_preview_checks_the_md5_before_unpickling(tmp_path: Path, subset, monkeypatch):
    x, y = subset
    path, md5 = write_official_archive(tmp_path / "c.tar.gz", x, y)

    def never(*args, **kwargs):
        raise AssertionError("a batch was unpickled before the md5 was checked")

    monkeypatch.setattr(cifar10_dataset, "_read_batch", never)
    with pytest.raises(DatasetError, match=f"has md5 {md5}, expected 0+ "):
        CIFAR10Dataset(filepath=str(path), url=None, md5="0" * 32).preview()


def test_preview_of_a_folder_reads_only_the_images_it_shows(
    subset, decodes: list[str], recording_fs: RecordingFileSystem
) -> None:
    members, _ = tree_members(*subset, train_per_class=3)
    # Sorted after the images a preview shows: decoding them would fail.
    for cls in OFFICIAL_CLASS_NAMES:
        members[f"train/{cls}/zzzz.png"] = b"not a PNG"
    for name, payload in members.items():
        recording_fs.pipe(f"/tree/{name}", payload)
    dataset = CIFAR10Dataset(filepath="cifar10rec:///tree", url=None)
    with pytest.raises(DatasetError, match="cannot be read as PNG or JPEG"):
        dataset.load()
    decodes.clear()
    RecordingFileSystem.files_read.clear()

    grid = preview_png(dataset.preview(per_class=3))

    assert len(decodes) == 30
    assert len(RecordingFileSystem.files_read) == 30  # of 50 files
    assert grid.width > 3 * (32 * 2 + PREVIEW_GAP)  # the class names are left of them


def test_preview_on_a_memory_filesystem(
    tmp_path: Path, subset, memory_root: str, decodes: list[str]
) -> None:
    members, _ = tree_members(*subset, train_per_class=4)
    url = to_memory(
        write_tar_gz(tmp_path / "t.tar.gz", members), f"{memory_root}/t.tar.gz"
    )
    preview_png(CIFAR10Dataset(filepath=url, url=None).preview(per_class=1))
    assert len(decodes) == 10


def test_preview_refuses_an_empty_grid(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="per_class >= 1"):
        CIFAR10Dataset(filepath=str(tmp_path), url=None).preview(per_class=0)


def test_kedro_viz_previews_the_catalog_entry(tmp_path: Path, subset) -> None:
    """kedro-viz's own code path, with the project's catalog entry and preview_args."""
    from kedro_viz.models.flowchart.node_metadata import (  # noqa: PLC0415
        DataNodeMetadata,
    )
    from kedro_viz.models.flowchart.nodes import GraphNode  # noqa: PLC0415

    members, _ = tree_members(*subset, train_per_class=6)
    path = write_tar_gz(tmp_path / "tree.tar.gz", members)
    catalog = yaml.safe_load(
        (PROJECT_ROOT / "conf/base/catalog/01_raw.yml").read_text()
    )
    config = {**catalog["cifar10_raw"], "filepath": str(path)}
    per_class = config["metadata"]["kedro-viz"]["preview_args"]["per_class"]
    dataset = AbstractDataset.from_config("cifar10_raw", config)
    node = GraphNode.create_data_node(
        dataset_id="cifar10_raw",
        dataset_name="cifar10_raw",
        layer="raw",
        tags=set(),
        dataset=dataset,
        modular_pipelines=set(),
        is_free_input=True,
    )

    metadata = DataNodeMetadata(data_node=node)

    assert metadata.preview_type == "ImagePreview"
    assert metadata.filepath == str(path)
    grid = preview_png(metadata.preview)
    first = np.flatnonzero(subset[1] == 9)[per_class - 1]  # the last truck shown
    np.testing.assert_array_equal(
        cell(grid, 9, per_class - 1, per_class, 2), enlarged(subset[0][first], 2)
    )


# ------------------------------------------------------------------- shared archive


@pytest.mark.slow
def test_shared_jpeg_archive(shared_jpeg_archive: Path) -> None:
    data = CIFAR10Dataset(filepath=str(shared_jpeg_archive), url=None).load()

    assert data["class_names"] == OFFICIAL_CLASS_NAMES
    assert data["x_train"].shape == (50000, 32, 32, 3)
    assert data["x_test"].shape == (10000, 32, 32, 3)
    assert data["x_train"].dtype == np.uint8
    np.testing.assert_array_equal(
        np.bincount(data["y_train"], minlength=10), [5000] * 10
    )
    np.testing.assert_array_equal(
        np.bincount(data["y_test"], minlength=10), [1000] * 10
    )
