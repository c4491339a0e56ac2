"""No shipped file holds a credential, and nothing is published beyond loopback: every
tracked file outside tests/ is scanned for private keys, known token formats, credentials in
URLs and literal passwords; placeholders such as USER:PASSWORD are allowed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.deploy.test_k8s import objects

ROOT = Path(__file__).resolve().parents[2]
BINARY = {".png", ".onnx", ".safetensors", ".ico"}
PLACEHOLDERS = {"password", "pass", "pw", "secret", "changeme", "xxx", "***", "<password>"}
PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[A-Z0-9]+/"),
    "credential in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:([^\s/@'\"]+)@"),
    "literal password": re.compile(
        r"(?i)(?:password|passwd|secret|api[_-]?key|token)[\"']?\s*[:=]\s*[\"']([^\"'\s]{6,})[\"']"
    ),
}


def shipped_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [
        ROOT / name
        for name in names
        if not name.startswith("tests/") and Path(name).suffix not in BINARY
    ]


def findings(text: str) -> list[str]:
    out = []
    for what, pattern in PATTERNS.items():
        for match in pattern.finditer(text):
            secret = match.group(1) if match.groups() else match.group(0)
            # Placeholders, variables ($X, {{ x }}) and special tokens ([MASK], <s>).
            if secret.strip("<>{}$").lower() in PLACEHOLDERS or secret.startswith(
                ("$", "{", "[", "<")
            ):
                continue
            out.append(f"{what}: {match.group(0)[:60]}")
    return out


def test_no_shipped_file_holds_a_credential() -> None:
    problems = []
    for path in shipped_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        problems += [f"{path.relative_to(ROOT)}: {f}" for f in findings(text)]
    assert problems == []


@pytest.mark.parametrize(
    "text",
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "url: postgresql://sentimon:hunter2hunter2@db/sentimon",
        'GF_SECURITY_ADMIN_PASSWORD: "s3cr3t-admin"',
        "api_url: https://hooks.slack.com/services/T0000/B0000/XXXX",
        "aws_key = AKIAIOSFODNN7EXAMPLE",
    ],
)
def test_the_scan_finds_what_it_looks_for(text: str) -> None:
    assert findings(text)


@pytest.mark.parametrize(
    "text",
    [
        "--from-literal=url=postgresql://USER:PASSWORD@HOST/DB",
        "SENTIMON_DATABASE_URL=postgresql://user:pass@host/db",
        "max_tokens: 128",
        "POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password",
    ],
)
def test_placeholders_and_words_are_not_credentials(text: str) -> None:
    assert findings(text) == []


def test_no_pod_uses_the_host_network_or_a_host_port() -> None:
    for target in ("base", "overlays/dev", "overlays/prod"):
        for o in objects(target):
            if o["kind"] != "Deployment":
                continue
            pod = o["spec"]["template"]["spec"]
            assert not pod.get("hostNetwork")
            for container in pod["containers"]:
                assert all("hostPort" not in p for p in container.get("ports", []))
