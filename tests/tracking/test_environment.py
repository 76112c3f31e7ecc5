"""Environment capture: code version, interpreter and packages, and how to re-run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.tracking import _environment
from modelyard.tracking._environment import capture_environment, requirements, rerun_instructions


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _git(tmp_path, "init", "-q")
    (tmp_path / "train.py").write_text("print('v1')\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-q", "-m", "first")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_environment, "_git", None)
    return tmp_path


def test_clean_checkout_records_commit_and_no_diff(repo: Path) -> None:
    git = capture_environment()["git"]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert git["commit"] == head and git["dirty"] is False and git["diff_sha256"] is None


def test_dirty_checkout_records_the_diff_and_its_hash(repo: Path) -> None:
    (repo / "train.py").write_text("print('v2')\n")
    environment = capture_environment()
    git = environment["git"]
    assert git["dirty"] is True
    assert "+print('v2')" in git["diff"] and len(git["diff_sha256"]) == 64
    lines = rerun_instructions(environment, "r" * 32)
    assert f"git checkout {git['commit']}" in lines
    assert any("git apply" in line for line in lines)


def test_outside_git_the_environment_still_has_python_and_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_environment, "_git", None)
    environment = capture_environment()
    assert environment["git"] is None
    assert environment["python"]["executable"] == sys.executable
    assert "pytest==" + environment["packages"]["pytest"] in requirements(environment)


def test_no_environment_gives_an_honest_rerun_note() -> None:
    assert rerun_instructions(None, "r") == ["# no environment was recorded for this run"]
