"""ImageSourceDataset on real folders, archives and files: what it lists, what it
skips, its errors, and that it never writes."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from kedro.io import DatasetError

from cifar10_kedro.datasets.image_source_dataset import ImageSourceDataset
from tests.image_files import every_format, write_every_format

JUNK = {
    "notes.txt": b"not an image by name",
    ".DS_Store": b"\x00\x00",
    ".hidden/secret.png": b"hidden folder",
    "._photo.jpg": b"AppleDouble debris",
}


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file and folder under ``root``: size, mtime and sha256 of files."""
    found = {}
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[str(path.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, digest)
    return found


@pytest.fixture
def image_folder(tmp_path) -> tuple[Path, dict[str, bytes]]:
    folder = tmp_path / "images"
    images = write_every_format(folder)
    for name, data in JUNK.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder, images


def load(path, **kwargs):
    return ImageSourceDataset(path=None if path is None else str(path), **kwargs).load()


def test_a_folder_is_searched_recursively_and_read_lazily(image_folder, caplog):
    folder, images = image_folder
    before = snapshot(folder)
    with caplog.at_level("INFO"):
        loaders = load(folder)
    assert list(loaders) == sorted(images)
    assert "nested/photo.tiff" in loaders
    assert {name: read() for name, read in loaders.items()} == images
    # Skipped files are counted in the log, hidden ones included.
    assert "Skipped 4 file(s)" in caplog.text and "'notes.txt'" in caplog.text
    assert snapshot(folder) == before


def archive_members(images: dict[str, bytes]) -> dict[str, bytes]:
    return {
        **{f"batch/{name}": data for name, data in images.items()},
        "batch/readme.txt": b"text",
        "__MACOSX/batch/._rgba.png": b"debris",
    }


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz", "tar.xz"])
def test_archives_are_listed_by_content_and_read(tmp_path, kind):
    members = archive_members(every_format())
    # Named .bin: archives are recognised by their content, not their suffix.
    archive = tmp_path / f"upload_{kind.replace('.', '_')}.bin"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zipped:
            for name, data in members.items():
                zipped.writestr(name, data)
    else:
        mode = {"tar": "w", "tar.gz": "w:gz", "tar.xz": "w:xz"}[kind]
        with tarfile.open(archive, mode) as tarred:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tarred.addfile(info, io.BytesIO(data))
    before = snapshot(tmp_path)
    loaders = load(archive)
    expected = {
        k: v
        for k, v in members.items()
        if k.endswith(tuple(".png .jpg .gif .bmp .webp .tiff".split()))
    }
    expected.pop("__MACOSX/batch/._rgba.png")
    assert list(loaders) == sorted(expected)
    # Read from threads, as the inference pipeline does.
    with ThreadPoolExecutor(4) as pool:
        read = dict(
            zip(loaders, pool.map(lambda f: f(), loaders.values()), strict=True)
        )
    assert read == expected
    assert snapshot(tmp_path) == before


def test_one_file_is_one_image_whatever_its_name(tmp_path):
    path = tmp_path / "scan.dat"
    path.write_bytes(every_format()["plain.bmp"])
    loaders = load(path)
    assert list(loaders) == ["scan.dat"]
    assert loaders["scan.dat"]() == every_format()["plain.bmp"]


def test_no_path_says_which_parameter_sets_it():
    with pytest.raises(DatasetError, match=r"set --params inference.input_path=PATH"):
        load(None, path_parameter="inference.input_path")


def test_a_missing_path_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetError) as raised:
        load(missing, path_parameter="inference.input_path")
    assert f"'{missing}' (inference.input_path) does not exist" in str(raised.value)


def test_an_empty_folder_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match=r"is an empty folder; expected image files"):
        load(tmp_path)


def test_a_folder_without_images_names_what_it_found(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "b.csv").write_text("b")
    with pytest.raises(DatasetError) as raised:
        load(tmp_path)
    message = str(raised.value)
    assert "has no image files: 2 other file(s) ('a.txt', 'b.csv')" in message
    assert "expected files ending in .png, .jpg" in message


def test_an_empty_archive_is_an_error(tmp_path):
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w"):
        pass
    with pytest.raises(DatasetError, match=r"is an empty zip archive"):
        load(archive)


def test_a_truncated_tar_gz_is_an_error(tmp_path):
    archive = tmp_path / "cut.tar.gz"
    with tarfile.open(archive, "w:gz") as tarred:
        for name, data in every_format().items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tarred.addfile(info, io.BytesIO(data))
    archive.write_bytes(archive.read_bytes()[:-200])
    with pytest.raises(DatasetError, match=r"truncated or corrupt tar archive"):
        load(archive)


def test_it_never_writes(image_folder):
    folder, _ = image_folder
    dataset = ImageSourceDataset(path=str(folder))
    before = snapshot(folder)
    with pytest.raises(DatasetError, match=r"read-only"):
        dataset.save({"x.png": b""})
    assert snapshot(folder) == before
    assert dataset.exists()
    assert not ImageSourceDataset(path=None).exists()


def test_preview_lists_the_first_files(image_folder):
    folder, images = image_folder
    preview = ImageSourceDataset(path=str(folder)).preview(nrows=3)
    assert preview["columns"] == ["file"]
    assert [row[0] for row in preview["data"]] == sorted(images)[:3]
