"""Which int8 kernel ONNX Runtime runs on a CPU, from /proc/cpuinfo, and what it can clip."""

from __future__ import annotations

import pytest

from sentimon.model.cpu import CpuInt8, describe_cpu, detect_int8, int8_kernel

# The flags of real machines (abridged to what matters, with some neighbours left in).
BASE = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx f16c fma bmi1 bmi2 avx2"
ZEN3 = BASE + " sha_ni vaes vpclmulqdq rdpid fsrm"
AVX512 = " avx512f avx512dq avx512cd avx512bw avx512vl"
ZEN4 = ZEN3 + AVX512 + " avx512_bf16 avx512vbmi avx512_vnni avx512_bitalg avx512_vpopcntdq"
SKYLAKE_SP = BASE + AVX512
ALDER_LAKE = BASE + " avx_vnni"
SAPPHIRE_RAPIDS = ZEN4 + " avx_vnni amx_bf16 amx_tile amx_int8"
KNIGHTS_LANDING_LIKE = BASE + " avx512f avx512cd avx512er avx512pf"  # AVX-512F, no BW/DQ/VL


@pytest.mark.parametrize(
    ("flags", "kernel", "cpu_class"),
    [
        (ZEN3, "avx2", "no-vnni"),
        (SKYLAKE_SP, "avx512", "no-vnni"),
        (KNIGHTS_LANDING_LIKE, "avx2", "no-vnni"),
        (ZEN4, "avx512-vnni", "vnni"),
        (ALDER_LAKE, "avx-vnni", "vnni"),
        (SAPPHIRE_RAPIDS, "amx", "vnni"),
        ("fpu sse sse2 sse4_2 avx", "no-avx2", "no-vnni"),
        ("", "unknown", "no-vnni"),
    ],
)
def test_kernels_follow_onnx_runtimes_choice(flags: str, kernel: str, cpu_class: str) -> None:
    assert int8_kernel(frozenset(flags.split())) == CpuInt8(kernel, cpu_class)


def test_vnni_alongside_avx512_without_its_own_vnni_is_the_avx512_kernel() -> None:
    # ONNX Runtime picks the AVX-512 kernel over AVX-VNNI: no shipped CPU has this mix, but
    # if one did, its products would be added in 16 bits.
    assert int8_kernel(frozenset((BASE + AVX512 + " avx_vnni").split())).kernel == "avx512"


def test_other_architectures_get_the_recipe_that_is_right_everywhere() -> None:
    cpu = int8_kernel(frozenset({"fp", "asimd", "asimddp"}), machine="aarch64")
    assert cpu == CpuInt8("aarch64", "no-vnni")
    assert not cpu.exact_u8s8


def test_the_log_says_why() -> None:
    assert int8_kernel(frozenset(ZEN4.split())).explain() == (
        "ONNX Runtime's int8 kernel (avx512-vnni) sums products in 32 bits"
    )
    assert int8_kernel(frozenset(ZEN3.split())).explain() == (
        "ONNX Runtime's int8 kernel (avx2, no VNNI) adds pairs of products in 16 bits, "
        "which 8-bit weights would overflow"
    )
    assert CpuInt8("aarch64", "no-vnni").explain() == (
        "its int8 kernel (aarch64) is not known to sum products in 32 bits"
    )


def cpuinfo(flags: str, name: str = "AMD EPYC", family: int = 25, model: int = 17) -> str:
    block = (
        f"processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: {family}\nmodel\t\t: {model}\n"
        f"model name\t: {name}\nflags\t\t: {flags}\n"
    )
    return block + "\n" + block.replace("processor\t: 0", "processor\t: 1") + "\n"


def test_the_first_processor_is_read() -> None:
    assert detect_int8(cpuinfo(ZEN4), machine="x86_64") == CpuInt8("avx512-vnni", "vnni")
    assert detect_int8(cpuinfo(ZEN3), machine="x86_64") == CpuInt8("avx2", "no-vnni")
    assert detect_int8("", machine="x86_64") == CpuInt8("unknown", "no-vnni")


def test_description_names_family_model_and_int8_kernel() -> None:
    assert describe_cpu(cpuinfo(ZEN4)) == "AMD EPYC (family 25, model 17, AVX-512 VNNI)"
    assert describe_cpu(cpuinfo(ZEN3, model=1)) == "AMD EPYC (family 25, model 1, AVX2, no VNNI)"
    xeon = cpuinfo(SAPPHIRE_RAPIDS, name="Xeon", family=6, model=143)
    assert describe_cpu(xeon) == "Xeon (family 6, model 143, AMX)"
    assert describe_cpu("model name\t: Old\nflags\t: sse2\n") == "Old (family ?, model ?, no AVX2)"
    assert describe_cpu("processor\t: 0\n") == ""


def test_this_machine_is_classified() -> None:
    cpu = detect_int8()
    assert cpu.cpu_class in {"vnni", "no-vnni"}
    assert cpu.kernel
