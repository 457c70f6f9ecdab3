"""``kedro launch``'s process handling, with stand-ins for ``kedro run``."""

from __future__ import annotations

import io
import sys

import pytest
from click.testing import CliRunner

from cifar10_kedro.cli import cli
from cifar10_kedro.launch import (
    MODE,
    Launcher,
    describe_exit,
    process_environment,
    process_index_from_environment,
    with_multi_process,
)
from tests.processes import environment, kedro, run


def _launcher(*scripts: str) -> tuple[Launcher, io.StringIO]:
    out = io.StringIO()
    commands = [[sys.executable, "-c", script] for script in scripts]
    env = environment(PYTHONUNBUFFERED="1")
    return Launcher(commands, [env] * len(scripts), grace=5, out=out), out


def test_all_processes_succeed():
    launcher, out = _launcher("print('zero')", "print('one')")
    launcher.start()
    assert launcher.wait() == 0
    text = out.getvalue()
    assert "[p0] zero\n" in text
    assert "[p1] one\n" in text
    assert "[launch] all 2 processes finished." in text


def test_a_failure_stops_the_others_and_is_named():
    launcher, out = _launcher(
        "import time; time.sleep(120)", "import sys; print('bye'); sys.exit(3)"
    )
    launcher.start()
    try:
        assert launcher.wait() == 3
    finally:
        for process in launcher.processes:  # nothing left behind, whatever happens
            if process.poll() is None:
                process.kill()
                process.wait()
    sleeper, failed = launcher.processes
    assert sleeper.returncode == -15  # SIGTERM'd by the launcher
    text = out.getvalue()
    assert "[p1] bye" in text
    assert f"process 1 (pid {failed.pid}) failed: it exited with code 3" in text
    assert f"stopping process 0 (pid {sleeper.pid})" in text
    assert "FAILED: process 1 of 2 exited with code 3" in text


def test_a_killed_process_is_named_with_its_signal():
    launcher, out = _launcher("import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    launcher.start()
    assert launcher.wait() == 128 + 9
    assert "it was killed by SIGKILL" in out.getvalue()
    assert describe_exit(-15) == "was killed by SIGTERM"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["--env", "smoke"], ["--env", "smoke", "--params", f"{MODE}=multi_process"]),
        (["--params", "a.b=1"], ["--params", f"a.b=1,{MODE}=multi_process"]),
        (["--params=a.b=1", "--env=x"], [f"--params=a.b=1,{MODE}=multi_process", "--env=x"]),
        (["--params", f"{MODE}=none"], ["--params", f"{MODE}=none"]),  # kept: refused later
    ],
)  # fmt: skip
def test_the_mode_is_added_to_the_run_parameters(given, expected):
    assert with_multi_process(given) == expected


def test_each_process_gets_the_job_variables():
    env = process_environment(1, 3, "127.0.0.1:1234", base={"PATH": "/bin"})
    assert env["KERAS_DISTRIBUTION_JOB_ADDRESSES"] == "127.0.0.1:1234"
    assert env["KERAS_DISTRIBUTION_NUM_PROCESSES"] == "3"
    assert env["KERAS_DISTRIBUTION_PROCESS_ID"] == "1"
    assert env["KERAS_BACKEND"] == "jax"
    chosen = process_environment(0, 2, "h:1", base={"KERAS_BACKEND": "torch"})
    assert chosen["KERAS_BACKEND"] == "torch"  # the user's, refused by the run


def test_the_command_is_a_project_command(monkeypatch):
    result = CliRunner().invoke(cli, ["launch", "--help"])
    assert result.exit_code == 0
    assert "--processes" in result.output
    started = {}

    def fake(processes, run_args, **kwargs):
        started.update(processes=processes, run_args=run_args, **kwargs)
        return 7

    monkeypatch.setattr("cifar10_kedro.launch.run_processes", fake)
    result = CliRunner().invoke(cli, ["launch", "-n", "3", "--", "--env", "smoke"])
    assert result.exit_code == 7
    assert started == {
        "processes": 3,
        "run_args": ("--env", "smoke"),
        "port": 0,
        "grace": 10.0,
    }


def test_kedro_lists_the_command(tmp_path):
    from tests.pipelines.test_pipelines import make_project_copy  # noqa: PLC0415

    project = make_project_copy(tmp_path / "project")
    completed = kedro(project, "launch", "--help", timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "data-parallel processes on this machine" in completed.stdout


def test_the_process_id_comes_from_the_launcher_srun_or_mpirun():
    assert process_index_from_environment({}) == 0
    assert process_index_from_environment({"KERAS_DISTRIBUTION_PROCESS_ID": "2"}) == 2
    slurm = {"SLURM_PROCID": "3", "SLURM_STEP_NODELIST": "node[1-4]"}
    assert process_index_from_environment(slurm) == 3
    assert process_index_from_environment({"SLURM_PROCID": "3"}) == 0  # no srun step
    ompi = {"OMPI_COMM_WORLD_RANK": "1", "OMPI_MCA_orte_hnp_uri": "1.2.3.4:5"}
    assert process_index_from_environment(ompi) == 1


@pytest.mark.parametrize(("process", "tracked"), [("0", True), ("1", False)])
def test_processes_after_the_first_register_no_tracking_hook(process, tracked):
    completed = run(
        [
            sys.executable,
            "-c",
            "from cifar10_kedro import settings; "
            "print([type(hook).__name__ for hook in settings.HOOKS], "
            "settings.DISABLE_HOOKS_FOR_PLUGINS)",
        ],
        env=environment(KERAS_DISTRIBUTION_PROCESS_ID=process),
        timeout=120,
    )
    completed.check_returncode()
    # kedro-mlflow's own hook is never auto-registered: TrackingHook replaces it.
    assert "kedro-mlflow" in completed.stdout
    assert ("TrackingHook" in completed.stdout) is tracked
