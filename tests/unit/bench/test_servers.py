"""The benchmark counts a server's CPU and memory over its whole process tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.servers import process_tree, text_body


def _stat(proc: Path, pid: int, ppid: int, name: str = "python") -> None:
    (proc / str(pid)).mkdir()
    # comm may hold spaces and parentheses; the parent pid is the second field after it
    (proc / str(pid) / "stat").write_text(f"{pid} ({name}) S {ppid} 1 1 0 -1\n")


def test_process_tree_follows_children_and_grandchildren_only(tmp_path: Path) -> None:
    _stat(tmp_path, 10, 1)
    _stat(tmp_path, 11, 10, "worker (1)")
    _stat(tmp_path, 12, 11)
    _stat(tmp_path, 13, 1)  # not ours
    (tmp_path / "self").mkdir()
    assert sorted(process_tree(10, tmp_path)) == [10, 11, 12]
    assert process_tree(13, tmp_path) == [13]


def test_process_tree_of_a_live_process_includes_its_child() -> None:
    sleeper = "import time; time.sleep(30)"
    spawn = f"subprocess.Popen([sys.executable, '-c', {sleeper!r}])"
    code = f"import subprocess, sys; {spawn}; {sleeper}"
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 10
        while len(process_tree(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = process_tree(parent.pid)
        assert tree[0] == parent.pid and len(tree) == 2
    finally:
        for pid in reversed(process_tree(parent.pid)):
            os.kill(pid, 9)
        parent.wait()


def test_text_body_is_the_predict_request() -> None:
    assert json.loads(text_body('say "hi" 🙂')) == {"text": 'say "hi" 🙂'}
