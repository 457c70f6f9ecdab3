"""What the CPU can do, read from a cpuinfo file (written here as Linux writes it)."""

from __future__ import annotations

import os
import sys

import keras
import pytest

from cifar10_kedro import hardware
from cifar10_kedro.hardware import (
    cpu,
    describe_cpu,
    has_native_bfloat16,
    has_vnni,
    onednn_cannot_run_bfloat16,
)
from tests.processes import environment, run

ZEN4 = (
    "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n"
    "flags\t\t: fpu avx2 fma avx512f avx512_bf16 avx512_vnni\n\n"
    "processor\t: 1\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2\n"
)


def test_the_first_processors_model_and_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(ZEN4)
    model, flags = cpu(info)
    assert model == "AMD EPYC 9R14"
    assert {"avx2", "avx512_bf16", "avx512_vnni"} <= flags
    assert describe_cpu(info) == {
        "cpu": "AMD EPYC 9R14",
        "cores": os.cpu_count(),
        "flags": ["avx512_bf16", "avx512_vnni"],
    }


def test_native_bfloat16_and_vnni_from_the_flags(tmp_path, monkeypatch):
    """precision: auto and export.int8.reduce_range: auto read these."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    info = tmp_path / "cpuinfo"
    for flags, bfloat16, vnni in [
        ("fpu avx2 fma avx512_bf16 avx512_vnni", True, True),
        ("fpu avx2 fma amx_bf16 amx_int8", True, True),
        ("fpu avx2 fma avx_vnni", False, True),
        ("fpu avx2 fma", False, False),
    ]:
        info.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert (has_native_bfloat16(info), has_vnni(info)) == (bfloat16, vnni), flags


def test_a_onednn_cap_below_bfloat16_means_no_native_bfloat16(tmp_path, monkeypatch):
    """Emulating an AVX2-only CPU (ONEDNN_MAX_CPU_ISA=AVX2) on one with AVX512-BF16:
    oneDNN would emulate bfloat16, so precision: auto must choose float32 there."""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma avx512_bf16 avx512_vnni\n")
    for cap, bfloat16 in [
        ("AVX2", False),
        ("avx512_core_vnni", False),
        ("AVX512_CORE_BF16", True),
        ("AVX512_CORE_AMX", True),
        ("ALL", True),
    ]:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert has_native_bfloat16(info) is bfloat16, cap
        # VNNI is int8 for ONNX Runtime, which does not read oneDNN's cap.
        assert has_vnni(info), cap


def test_bfloat16_cannot_run_only_where_the_cap_leaves_onednn_none(
    tmp_path, monkeypatch
):
    """TensorFlow sends bfloat16 ops to oneDNN on an AVX512 CPU; capped at AVX2 there,
    oneDNN has no kernel for them. On a real AVX2 CPU, Eigen runs them."""
    avx512, avx2 = tmp_path / "avx512", tmp_path / "avx2"
    avx512.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma avx512f avx512_bf16\n")
    avx2.write_text("processor\t: 0\nflags\t\t: fpu avx2 fma\n")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert not onednn_cannot_run_bfloat16(avx512)
    for cap, cannot in [
        ("AVX2", True),
        ("avx2_vnni", True),
        ("AVX512_CORE", False),  # oneDNN emulates bfloat16 there
        ("AVX512_CORE_BF16", False),
    ]:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert onednn_cannot_run_bfloat16(avx512) is cannot, cap
        assert not onednn_cannot_run_bfloat16(avx2), cap


def test_an_unknown_cpu_is_assumed_to_have_nothing(tmp_path):
    missing = tmp_path / "no-such-file"
    assert cpu(missing) == ("", frozenset())
    assert not has_native_bfloat16(missing) and not has_vnni(missing)
    assert describe_cpu(missing)["cpu"] == "unknown"


def test_has_gpu_asks_the_backend_in_use(monkeypatch) -> None:
    """Under TensorFlow, GPUs are TensorFlow's physical devices (the CPU machine of
    the tests has none)."""
    import tensorflow as tf  # noqa: PLC0415 - the backend of these tests

    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: ["gpu:0"])
    assert hardware.has_gpu()
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: [])
    assert not hardware.has_gpu()


def test_the_device_is_the_gpu_or_the_cpu_named(monkeypatch) -> None:
    monkeypatch.setattr(hardware, "has_gpu", lambda: True)
    assert hardware.describe_device() == "gpu"
    monkeypatch.setattr(hardware, "has_gpu", lambda: False)
    model = describe_cpu()["cpu"]
    monkeypatch.setattr(hardware, "tensorflow_kernels", lambda: "Eigen")
    assert hardware.describe_device() == f"cpu ({model}, {os.cpu_count()} cores, Eigen)"
    monkeypatch.setattr(hardware, "tensorflow_kernels", lambda: None)  # another backend
    assert hardware.describe_device() == f"cpu ({model}, {os.cpu_count()} cores)"


def printed_in_a_new_process(code: str, **changes: str | None) -> str:
    """What ``code`` prints in a new Python process, with ``changes`` to the
    environment (None: unset)."""
    done = run([sys.executable, "-c", code], env=environment(**changes), timeout=300)
    assert done.returncode == 0, done.output
    return done.stdout.strip()


def kernels_in_a_new_process(onednn: str | None) -> str:
    """Whose kernels TensorFlow runs in a new process that imports the project first,
    with TF_ENABLE_ONEDNN_OPTS set to ``onednn`` (None: unset)."""
    code = (
        "import cifar10_kedro, tensorflow\n"
        "from cifar10_kedro.hardware import tensorflow_kernels\n"
        "print(tensorflow_kernels())"
    )
    return printed_in_a_new_process(code, TF_ENABLE_ONEDNN_OPTS=onednn)


@pytest.mark.skipif(not hardware.is_x86(), reason="an x86 CPU's default")
def test_tensorflow_runs_onednn_kernels_on_every_x86_cpu() -> None:
    """TensorFlow alone picks Eigen's kernels on an AVX2-only CPU (about half as fast
    for this network there); the project asks for oneDNN on any x86 CPU."""
    assert kernels_in_a_new_process(None) == "oneDNN"


def test_a_users_choice_of_kernels_is_kept() -> None:
    assert kernels_in_a_new_process("0") == "Eigen"
    assert kernels_in_a_new_process("1") == "oneDNN"


def test_no_tensorflow_no_kernels_named() -> None:
    """Under another backend TensorFlow is never imported, and nothing imports it to
    answer."""
    code = (
        "import sys; from cifar10_kedro.hardware import tensorflow_kernels\n"
        "print(tensorflow_kernels(), 'tensorflow' in sys.modules)"
    )
    assert printed_in_a_new_process(code).split() == ["None", "False"]
