"""What this CPU does with int8 products, read from /proc/cpuinfo the way ONNX Runtime picks.

ONNX Runtime multiplies uint8 activations by int8 weights with the best kernel the CPU has
(MLAS, chosen once at start-up in this order: AVX2, then AVX-VNNI, then AVX-512 BW/DQ/VL,
then AVX-512 VNNI, then AMX). The VNNI and AMX kernels sum u8 x s8 products in 32 bits. The
AVX2 and AVX-512 ones without VNNI (`vpmaddubsw`) first add each pair of products in a
saturating 16-bit lane: 255 x 127 x 2 = 64,770 does not fit in 32,767, so a pair of large
activations times large same-signed weights is silently clipped. On an AMD EPYC Zen 3 that
put a logit off by 51.7 in a unit test and cost the bundled model 0.7 point of agreement
with fp32. With weights of at most 64 in magnitude (7 bits), 255 x 64 x 2 = 32,640 fits.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

# Kernels whose u8 x s8 products are summed in 32 bits (no 16-bit pair sums to clip).
_EXACT_KERNELS = frozenset({"avx-vnni", "avx512-vnni", "amx"})


@dataclass(frozen=True, slots=True)
class CpuInt8:
    """The int8 matrix kernel ONNX Runtime uses on this CPU, and whether it can clip."""

    kernel: str
    """`amx`, `avx512-vnni`, `avx-vnni` (exact); `avx512`, `avx2` (16-bit pair sums);
    `no-avx2` (x86-64 without AVX2); `<machine>` elsewhere, `unknown` when unreadable."""

    cpu_class: str
    """`vnni` when the kernel is known to sum u8 x s8 in 32 bits, else `no-vnni` (every
    CPU not known to be exact, so an unknown CPU gets the recipe that is right everywhere)."""

    @property
    def exact_u8s8(self) -> bool:
        return self.cpu_class == "vnni"

    def explain(self) -> str:
        """Why its recipe was chosen, for the start-up log."""
        if self.exact_u8s8:
            return f"ONNX Runtime's int8 kernel ({self.kernel}) sums products in 32 bits"
        if self.kernel in {"avx2", "avx512"}:
            return (
                f"ONNX Runtime's int8 kernel ({self.kernel}, no VNNI) adds pairs of products "
                "in 16 bits, which 8-bit weights would overflow"
            )
        return f"its int8 kernel ({self.kernel}) is not known to sum products in 32 bits"


def int8_kernel(flags: frozenset[str], machine: str = "x86_64") -> CpuInt8:
    """Classify by the CPU flags Linux reports (the same CPUID bits ONNX Runtime reads)."""
    if machine.lower() not in {"x86_64", "amd64"}:
        kernel = machine.lower() or "unknown"
    elif not flags:
        kernel = "unknown"
    elif not {"avx2", "fma"} <= flags:
        kernel = "no-avx2"
    else:
        kernel = "avx2"
        if "avx_vnni" in flags:
            kernel = "avx-vnni"
        if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
            kernel = "avx512-vnni" if "avx512_vnni" in flags else "avx512"
        if {"amx_tile", "amx_int8"} <= flags:
            kernel = "amx"
    return CpuInt8(kernel, "vnni" if kernel in _EXACT_KERNELS else "no-vnni")


def first_cpu(cpuinfo: str) -> dict[str, str]:
    """The `key: value` fields of the first processor block of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def read_cpuinfo() -> str:
    try:
        return CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def detect_int8(cpuinfo: str | None = None, machine: str | None = None) -> CpuInt8:
    """This machine's int8 kernel (arguments for tests: a /proc/cpuinfo text, `uname -m`)."""
    fields = first_cpu(read_cpuinfo() if cpuinfo is None else cpuinfo)
    flags = frozenset(fields.get("flags", "").split())
    return int8_kernel(flags, platform.machine() if machine is None else machine)


def describe_cpu(cpuinfo: str) -> str:
    """Model name, family and model numbers and the int8 kernel of the first CPU, e.g.
    `AMD EPYC (family 25, model 17, AVX-512 VNNI)`: the int8 speed and recipe depend on them."""
    fields = first_cpu(cpuinfo)
    if "model name" not in fields:
        return ""
    kernel = int8_kernel(frozenset(fields.get("flags", "").split())).kernel
    numbers = f"family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}"
    return f"{fields['model name']} ({numbers}, {KERNEL_NAMES.get(kernel, kernel)})"


KERNEL_NAMES = {
    "amx": "AMX",
    "avx512-vnni": "AVX-512 VNNI",
    "avx-vnni": "AVX-VNNI",
    "avx512": "AVX-512 without VNNI",
    "avx2": "AVX2, no VNNI",
    "no-avx2": "no AVX2",
}
