"""What this machine computes with: a GPU the Keras backend sees, and what its CPU can
do, read from ``/proc/cpuinfo`` (Linux). Elsewhere the CPU is unknown and nothing is
assumed of it: the safe choice (float32, 7-bit int8)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# Linux's names of the flags that matter here.
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# Integer dot products: int8 without AVX2's saturating 16-bit sums.
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
# TensorFlow reads this once, when it is first imported: "1" runs its CPU kernels with
# oneDNN. Its Linux default is "1" only where the CPU has VNNI, AVX512-BF16 or AMX
# (tensorflow/core/util/util.cc, DefaultOneDnnPolicy); on an AVX2-only CPU it falls back
# to Eigen's kernels, which train this network at about half of oneDNN's speed there
# (docs/results.md, "Where a CPU epoch goes").
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def cpu(cpuinfo: Path | None = None) -> tuple[str, frozenset[str]]:
    """Return the CPU's model name ("" when unknown) and its flags (none when
    unknown), from the first processor ``cpuinfo`` (``CPUINFO``) lists."""
    try:
        lines = (cpuinfo or CPUINFO).read_text().splitlines()
    except OSError:
        return "", frozenset()
    fields = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name", ""), frozenset(fields.get("flags", "").split())


# ONEDNN_MAX_CPU_ISA: the most oneDNN's kernels may use (to run as an older CPU does,
# e.g. AVX2). The values that still allow bfloat16 arithmetic, in oneDNN's names.
ONEDNN_ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
ONEDNN_BFLOAT16_ISAS = frozenset(
    {
        "ALL",
        "DEFAULT",
        "AVX512_CORE_BF16",
        "AVX512_CORE_FP16",
        "AVX512_CORE_AMX",
        "AVX512_CORE_AMX_FP16",
        "AVX10_1_512",
        "AVX10_1_512_AMX",
        "AVX10_1_512_AMX_FP16",
    }
)


def onednn_isa_cap() -> str | None:
    """The ISA ``ONEDNN_MAX_CPU_ISA`` caps oneDNN's kernels at, or None where unset."""
    return os.environ.get(ONEDNN_ISA_VARIABLE)


def _cap() -> str:
    return (onednn_isa_cap() or "ALL").strip().upper()


def has_native_bfloat16(cpuinfo: Path | None = None) -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX) and
    oneDNN may use it: not where ``ONEDNN_MAX_CPU_ISA`` caps it below AVX512_CORE_BF16,
    as when an AVX2-only CPU is emulated (bfloat16 would then be emulated too)."""
    return bool(cpu(cpuinfo)[1] & BFLOAT16_FLAGS) and _cap() in ONEDNN_BFLOAT16_ISAS


# oneDNN's ISAs without any bfloat16 kernel, not even an emulated one.
ONEDNN_NO_BFLOAT16_ISAS = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI"})
# Where the CPU has one of these, TensorFlow sends bfloat16 ops to oneDNN
# (IsBF16SupportedByOneDNNOnThisCPU in tensorflow/core/util/mkl_util.h); elsewhere to
# Eigen's kernels, slow but correct.
ONEDNN_BFLOAT16_DISPATCH_FLAGS = frozenset({"avx512f", "avx_ne_convert"})


def onednn_cannot_run_bfloat16(cpuinfo: Path | None = None) -> bool:
    """Whether TensorFlow's bfloat16 ops would fail here: this CPU makes TensorFlow
    send them to oneDNN, and ``ONEDNN_MAX_CPU_ISA`` caps oneDNN at an ISA with no
    bfloat16 kernel (AVX2 emulated on an AVX512 CPU). A real AVX2-only CPU runs them,
    through Eigen."""
    return (
        bool(cpu(cpuinfo)[1] & ONEDNN_BFLOAT16_DISPATCH_FLAGS)
        and _cap() in ONEDNN_NO_BFLOAT16_ISAS
    )


def has_vnni(cpuinfo: Path | None = None) -> bool:
    """Whether this CPU multiplies int8 with VNNI (or AMX)."""
    return bool(cpu(cpuinfo)[1] & VNNI_FLAGS)


def describe_cpu(cpuinfo: Path | None = None) -> dict[str, object]:
    """The CPU as benchmarks and tracked runs name it: model, cores and the flags of
    native bfloat16 and integer dot products it has."""
    model, flags = cpu(cpuinfo)
    return {
        "cpu": model or "unknown",
        "cores": os.cpu_count(),
        "flags": sorted(flags & (BFLOAT16_FLAGS | VNNI_FLAGS)),
    }


def is_x86() -> bool:
    """Whether this machine is x86-64, where TensorFlow's wheels carry oneDNN."""
    return platform.machine().lower() in {"x86_64", "amd64"}


def use_onednn() -> None:
    """Ask TensorFlow for oneDNN's kernels on every x86 CPU, AVX2-only ones included,
    unless the user set ``TF_ENABLE_ONEDNN_OPTS``. Only has an effect before TensorFlow
    is imported (the package's ``__init__`` calls it first); a child process inherits it."""
    if is_x86():
        os.environ.setdefault(ONEDNN_VARIABLE, "1")


def tensorflow_kernels() -> str | None:
    """Whose CPU kernels TensorFlow runs ("oneDNN" or "Eigen"), or None where TensorFlow
    is not imported (another Keras backend)."""
    if "tensorflow" not in sys.modules:
        return None
    from tensorflow.python.util import _pywrap_util_port  # noqa: PLC0415, PLC2701

    return "oneDNN" if _pywrap_util_port.IsMklEnabled() else "Eigen"


def has_gpu() -> bool:
    """Return whether the Keras backend sees a GPU."""
    import keras  # noqa: PLC0415 - the CPU's questions need no Keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # noqa: PLC0415 - only under that backend

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch  # noqa: PLC0415

        return bool(torch.cuda.is_available())
    return False


def describe_device() -> str:
    """What trains, as tracked runs name it: "gpu" or "cpu (<model>, <n> cores)",
    with whose kernels TensorFlow runs after the cores ("…, 2 cores, oneDNN)")."""
    if has_gpu():
        return "gpu"
    cpu = describe_cpu()
    kernels = tensorflow_kernels()
    return (
        f"cpu ({cpu['cpu']}, {cpu['cores']} cores{f', {kernels}' if kernels else ''})"
    )
