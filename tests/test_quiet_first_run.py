"""A quiet first run: known third-party noise is hidden, the project's own lines are not."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from cifar10_kedro import _quiet
from tests.datasets.test_cifar10_dataset import write_tar_gz
from tests.pipelines.test_pipelines import make_project_copy
from tests.pipelines.test_reliability import tree_members
from tests.processes import environment, free_port, kedro

RESOLVER_WARNING = (
    "register_new_resolver() is deprecated and will be removed in a future release."
)
# Short tokens of each noise line, so that rich's line wrapping cannot hide one.
NOISE = {
    "omegaconf's deprecation, raised in Kedro's config loader": "register_new_resolver",
    "TensorFlow's failed CUDA probe": "cuInit",
    "TensorFlow's CUDA plugin registration": "Unable to register",
    "TensorFlow's CPU-feature banner": "cpu_feature_guard",
    "absl's notice before its logging starts": "absl::InitializeLog",
    "TensorFlow's oneDNN notice": "oneDNN custom operations",
    "TensorFlow's CUDA stub notice": "Could not find cuda drivers",
    "kedro-telemetry's debug line when offline": "Heap",
}
OWN_LINES = [
    "Parameters match the schema (cifar10_kedro.params_schema).",  # the project's
    "Running node: validate_raw_data",  # Kedro's
    "Pipeline execution completed successfully",
]


@pytest.mark.parametrize(
    ("driver", "level"), [(None, "3"), ("libcuda.so.1", "2")], ids=["cpu", "cuda"]
)
def test_tensorflow_log_level_depends_on_a_cuda_driver(
    monkeypatch, driver: str | None, level: str
) -> None:
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    monkeypatch.setattr(_quiet.ctypes.util, "find_library", lambda name: driver)
    with warnings.catch_warnings():
        _quiet.quiet_third_party_noise()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == level


def test_a_level_the_user_set_is_kept(monkeypatch) -> None:
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    with warnings.catch_warnings():
        _quiet.quiet_third_party_noise()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"


def test_import_noise_is_dropped_and_every_other_line_kept(capfd) -> None:
    with _quiet.filtered_stderr():
        # As TensorFlow's C++ core writes them: straight to file descriptor 2.
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called")
        os.write(2, b" are written to STDERR\n")
        os.write(
            2, b"I0000 00:00:1.2 7 port.cc:153] oneDNN custom operations are on.\n"
        )
        os.write(2, b"E0000 00:00:1.3 7 some_kernel.cc:9] a real error\n")
    assert (
        capfd.readouterr().err == "E0000 00:00:1.3 7 some_kernel.cc:9] a real error\n"
    )


def test_an_import_that_fails_still_shows_everything_it_wrote(capfd) -> None:
    with pytest.raises(ImportError), _quiet.filtered_stderr():
        os.write(2, b"libfoo.so: cannot open shared object file\n")
        raise ImportError("libfoo.so")
    assert "cannot open shared object file" in capfd.readouterr().err


@pytest.mark.parametrize(
    "level", [None, "3", "0"], ids=["unset", "inherited", "level 0: everything"]
)
def test_importing_tensorflow_prints_nothing_unless_the_level_is_0(level) -> None:
    code = "import cifar10_kedro, keras; keras.ops.ones(1)"
    env = environment(TF_CPP_MIN_LOG_LEVEL=level)
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    noise = [token for token in NOISE.values() if token in result.stderr]
    if level != "0":
        assert result.stderr == "", result.stderr
    else:  # the user asked for all of TensorFlow's lines: nothing is filtered
        assert "absl::InitializeLog" in noise, result.stderr


@pytest.mark.parametrize(
    ("message", "module"),
    [(RESOLVER_WARNING, "kedro.config.omegaconf_config")],
    ids=["kedro-resolver"],
)
def test_known_warnings_are_hidden_only_where_they_come_from(
    message: str, module: str
) -> None:
    def warn(text: str, where: str) -> None:
        warnings.warn_explicit(text, UserWarning, f"{where}.py", 1, module=where)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _quiet.quiet_third_party_noise()
        warn(message, module)  # hidden
        warn(message, "cifar10_kedro.settings")  # the project's: shown
        warn("another warning", module)  # shown

    assert [(str(w.message), w.filename) for w in caught] == [
        (message, "cifar10_kedro.settings.py"),
        ("another warning", f"{module}.py"),
    ]


@pytest.mark.slow
def test_first_screen_of_kedro_run_is_quiet(tmp_path: Path) -> None:
    project = make_project_copy(tmp_path / "project")
    raw = write_tar_gz(tmp_path / "tiny.tar.gz", tree_members())
    # As a new user runs it: none of the settings the test suite makes for itself.
    unset = {
        "TF_CPP_MIN_LOG_LEVEL",
        "KEDRO_LOGGING_CONFIG",
        "KEDRO_ENV",
        "DO_NOT_TRACK",
        "KEDRO_DISABLE_TELEMETRY",
    }
    proxy = f"http://127.0.0.1:{free_port()}"  # closed: refused at once
    env = environment(
        **dict.fromkeys(unset),
        CIFAR10_RAW_PATH=str(raw),
        COLUMNS="300",  # rich wraps at 80 columns off a terminal
        # Telemetry is on, as for a new user, but nothing leaves the machine: every
        # HTTPS request goes to a closed local port, and its user id file to tmp_path.
        HTTPS_PROXY=proxy,
        https_proxy=proxy,
        NO_PROXY="",
        no_proxy="",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )
    result = kedro(
        project,
        "run",
        "--env",
        "smoke",
        "--pipeline",
        "data_ingestion",
        env=env,
        timeout=600,
    )
    output = result.output

    assert result.returncode == 0, output
    shown = {what: token for what, token in NOISE.items() if token in output}
    assert not shown, f"noise on the first screen: {shown}\n{output}"
    for line in OWN_LINES:
        assert line in output, output
    assert "Using 'conf/logging.yml' as logging configuration" in output
    # Kedro's own notice stays until the user decides (docs/getting-started.md: Telemetry).
    assert "Kedro is sending anonymous usage data" in output
