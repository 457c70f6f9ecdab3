"""Shared test set-up: quiet TensorFlow, no telemetry, paths to the shared data."""

from __future__ import annotations

import functools
import importlib.util
import os
import tarfile
from pathlib import Path
from types import ModuleType
from typing import get_args

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

# Kedro configures logging (logging.config.dictConfig) when kedro.framework.project is
# first imported. Imported here, at start-up: imported first by a conftest collected
# later (tests/exploring), it replaced pytest's capture handlers mid-collection and
# `pytest tests` died with "I/O operation on closed file".
import kedro.framework.project  # noqa: E402, F401
import pytest  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Tests that share a session fixture (a smoke run, a tracked run, a trained project)
# run in one pytest-xdist worker; the others go to a worker file by file (so that a
# module's fixtures are built once). scripts/test.sh runs `pytest -n auto`, and
# pyproject.toml's addopts choose `--dist loadgroup`.
SHARED_SESSION_DIRECTORIES = {"exploring", "model_use", "tracking"}


# The longest groups (minutes each on 2 cores) start first, so that the workers finish
# together rather than one waiting on a long group started last.
LONGEST_FIRST = (
    "distributed",
    "test_benchmark.py",
    "model_use",
    "tracking",
    "backends",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from cifar10_kedro.hardware import onednn_cannot_run_bfloat16  # noqa: PLC0415

    # An AVX2 CPU emulated on an AVX512 one (ONEDNN_MAX_CPU_ISA=AVX2): TensorFlow's
    # bfloat16 ops fail there, while a real AVX2 CPU runs them (through Eigen).
    no_bfloat16 = pytest.mark.skip(
        reason="ONEDNN_MAX_CPU_ISA leaves oneDNN no bfloat16 kernel on this CPU"
    )
    cannot = onednn_cannot_run_bfloat16()
    for item in items:
        if cannot and item.get_closest_marker("bfloat16_kernels"):
            item.add_marker(no_bfloat16)
        path = item.path.relative_to(PROJECT_ROOT / "tests")
        shared = path.parts[0] in SHARED_SESSION_DIRECTORIES
        item.add_marker(pytest.mark.xdist_group(path.parts[0] if shared else str(path)))

    def rank(item: pytest.Item) -> int:
        top = item.path.relative_to(PROJECT_ROOT / "tests").parts[0]
        return LONGEST_FIRST.index(top) if top in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order


def benchmark_script(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` (scripts, not a package) as a module."""
    spec = importlib.util.spec_from_file_location(
        f"benchmarks_{name}", PROJECT_ROOT / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The official label order, written out here rather than taken from the code under test.
OFFICIAL_CLASS_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_jpeg_archive() -> Path:
    """The complete CIFAR-10 JPEG tree beside the checkout (see ../shared/data/README.md)."""
    path = Path(os.environ.get("CIFAR10_RAW_PATH", SHARED_DATA / "cifar10-jpeg.tar.gz"))
    if not path.exists():
        pytest.fail(f"CIFAR-10 not found at {path}; set CIFAR10_RAW_PATH.")
    return path


@pytest.fixture(scope="session")
def cifar10_subset(shared_jpeg_archive, tmp_path_factory) -> Path:
    """The real CIFAR-10 JPEG archive cut to what the smoke runs of the suite read:
    the first training images of each class that conf/smoke keeps, and every test
    image (the model-use tests predict all 10,000). The same layout and files, in a
    tenth of the time to decode: each smoke run would otherwise decode 60,000 images
    (about 15 s) to keep 800."""
    keep = base_params("data_ingestion", env="smoke").train_per_class
    subset = tmp_path_factory.mktemp("cifar10") / "cifar10-subset.tar.gz"
    kept: dict[str, int] = {}
    with (
        tarfile.open(shared_jpeg_archive) as source,
        tarfile.open(subset, "w:gz", compresslevel=1) as target,
    ):
        for member in source:
            parts = member.name.split("/")
            if member.isfile() and parts[0] == "train":
                kept[parts[1]] = kept.get(parts[1], 0) + 1
                if kept[parts[1]] > keep:
                    continue
            target.addfile(
                member, source.extractfile(member) if member.isfile() else None
            )
    return subset


@pytest.fixture(scope="session")
def lossless_subset() -> Path:
    """Real, exact CIFAR-10 test images for building official-format archives."""
    path = SHARED_DATA / "lossless-test-subset" / "cifar10_test_first1017_lossless.npz"
    if not path.exists():
        pytest.fail(f"Lossless CIFAR-10 subset not found at {path}.")
    return path


def project_parameters(
    env: str | None = None,
    runtime_params: dict | None = None,
    conf_source: Path = PROJECT_ROOT / "conf",
) -> dict:
    """The merged parameters of ``env`` (conf/base when None), as ``kedro run`` loads
    them: the project's config loader and its settings, globals, resolvers and the
    compare pipeline's variants included."""
    from cifar10_kedro import settings  # noqa: PLC0415

    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(conf_source),
        env=env,
        runtime_params=runtime_params,
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]


@functools.cache
def _loaded_parameters(env: str | None) -> dict:
    return project_parameters(env)


def _group_model(model: type, name: str) -> type:
    """The model of the group ``name`` within ``model`` (an optional one included)."""
    from cifar10_kedro.params_base import Params  # noqa: PLC0415

    annotation = model.model_fields[name].annotation
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, Params):
            return candidate
    raise KeyError(f"'{name}' of {model.__name__} is not a group of parameters")


def base_params(group: str, changes: dict | None = None, env: str | None = None):
    """The validated model of the parameter group ``group`` (a dotted key such as
    ``"reporting"`` or ``"model_training.fit"``) as conf/<env> sets it (conf/base when
    None), with ``changes`` merged in key by key: tests start from the real values and
    say only what they change."""
    from cifar10_kedro.params_schema import schema  # noqa: PLC0415
    from cifar10_kedro.variants import merged, variant_names  # noqa: PLC0415

    value = _loaded_parameters(env)
    model = schema(variant_names(PROJECT_ROOT))
    for part in group.split("."):
        value, model = value[part], _group_model(model, part)
    return model.model_validate(merged(value, changes or {}))
