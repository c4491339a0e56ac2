"""The benchmark names the CPU precisely enough to explain its int8 peak."""

from __future__ import annotations

from bench.__main__ import describe_cpu

ZEN4 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu sse avx2 avx512f avx512_vnni

processor\t: 1
model name\t: another CPU
"""


def test_first_cpu_with_family_model_and_int8_instructions() -> None:
    assert describe_cpu(ZEN4) == "AMD EPYC (family 25, model 17, AVX-512 VNNI)"


def test_the_best_int8_instructions_are_named() -> None:
    amx = (
        "model name\t: Xeon\ncpu family\t: 6\nmodel\t\t: 143\nflags\t: avx2 avx512_vnni amx_int8\n"
    )
    assert describe_cpu(amx) == "Xeon (family 6, model 143, AMX)"
    old = "model name\t: Old\nflags\t: sse2\n"
    assert describe_cpu(old) == "Old (family ?, model ?, no AVX2)"


def test_no_model_name_gives_nothing() -> None:
    assert describe_cpu("processor\t: 0\n") == ""
