"""The lock files hold every dependency pyproject.toml declares, at a version it allows, and
agree with each other (refresh them with `make lock`)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# What the image and `make run` run on: CPython 3.11 on x86-64 Linux.
ENVIRONMENT = {"sys_platform": "linux", "platform_system": "Linux", "python_version": "3.11"}


def _locked(name: str) -> dict[str, str]:
    pins = re.findall(
        r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements" / name).read_text(), re.M
    )
    return {canonicalize_name(package): version for package, version in pins}


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("lock.txt", PROJECT["dependencies"]),
        ("dev-lock.txt", PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]),
    ],
)
def test_every_declared_dependency_is_locked_at_a_version_it_allows(
    lock: str, requirements: list[str]
) -> None:
    locked = _locked(lock)
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate(ENVIRONMENT):
            continue
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement.name} is not in requirements/{lock}: make lock"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"requirements/{lock} has {name}=={locked[name]}, pyproject.toml wants "
            f"{requirement.specifier}: make lock"
        )
        for extra in requirement.extras:  # psycopg[binary] brings psycopg-binary
            if extra == "binary":
                assert f"{name}-binary" in locked, f"{name}[binary]"


def test_the_two_locks_agree_and_torch_is_the_pinned_cpu_release() -> None:
    runtime, dev = _locked("lock.txt"), _locked("dev-lock.txt")
    assert {name: dev.get(name) for name in runtime} == runtime
    assert runtime["torch"] == "2.13.0"  # the CPU build (2.13.0+cpu) satisfies it
    assert not [name for name in dev if name.startswith("nvidia-")]
