"""What this machine's CPU can do, read from ``/proc/cpuinfo`` (Linux). Elsewhere the
CPU is unknown and nothing is assumed of it: the safe choice (float32, 7-bit int8)."""

from __future__ import annotations

import os
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
# Linux's names of the flags that matter here.
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# Integer dot products: int8 without AVX2's saturating 16-bit sums.
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


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


def has_native_bfloat16(cpuinfo: Path | None = None) -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX)."""
    return bool(cpu(cpuinfo)[1] & BFLOAT16_FLAGS)


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
