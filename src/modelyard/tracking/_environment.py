"""What a run ran on, captured without being asked: code version, Python, packages, command.

Capturing costs subprocess calls (git) and a scan of installed distributions, so a
process reuses its last capture while nothing it depends on changed: packages are
re-read when a `sys.path` folder changes, git state at most every few seconds.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from typing import Any

MAX_DIFF_BYTES = 1 << 20
GIT_REFRESH_S = 5.0

_lock = threading.Lock()
_packages: tuple[tuple[float, ...], dict[str, str]] | None = None
_git: tuple[float, str, dict[str, Any] | None] | None = None


def capture_environment() -> dict[str, Any]:
    """A JSON-ready description of this process's code, interpreter and packages."""
    cwd = os.getcwd()
    return {
        "schema": 1,
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "hostname": socket.gethostname(),
        },
        "command": {"argv": list(sys.argv), "cwd": cwd},
        "git": _git_state(cwd),
        "packages": installed_packages(),
    }


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def installed_packages() -> dict[str, str]:
    """Name and version of every distribution on `sys.path`, read from folder names.

    `*.dist-info` / `*.egg-info` folders carry both in their names, which is far faster
    than reading every METADATA file and gives what `pip freeze` pins.
    """
    global _packages
    stamp = tuple(_mtime(p) for p in sys.path)
    with _lock:
        if _packages is not None and _packages[0] == stamp:
            return _packages[1]
    found: dict[str, str] = {}
    for folder in sys.path:
        try:
            entries = os.scandir(folder or ".")
        except OSError:
            continue
        with entries:
            for entry in entries:
                parsed = _distribution(entry.name)
                if parsed is not None:
                    found.setdefault(*parsed)
    packages = dict(sorted(found.items()))
    with _lock:
        _packages = (stamp, packages)
    return packages


def _distribution(folder: str) -> tuple[str, str] | None:
    for suffix in (".dist-info", ".egg-info"):
        if folder.endswith(suffix):
            name, _, rest = folder[: -len(suffix)].partition("-")
            version = rest.split("-py", 1)[0]
            if name and version:
                return name.lower().replace("_", "-").replace(".", "-"), version
    return None


def _mtime(path: str) -> float:
    try:
        return os.stat(path or ".").st_mtime
    except OSError:
        return 0.0


def _git_state(cwd: str) -> dict[str, Any] | None:
    global _git
    now = time.monotonic()
    with _lock:
        if _git is not None and _git[1] == cwd and now - _git[0] < GIT_REFRESH_S:
            return _git[2]
    state = _read_git(cwd)
    with _lock:
        _git = (now, cwd, state)
    return state


def _read_git(cwd: str) -> dict[str, Any] | None:
    top = _run_git(cwd, "rev-parse", "--show-toplevel")
    if top is None:
        return None
    commit = _run_git(cwd, "rev-parse", "HEAD")
    branch = _run_git(cwd, "rev-parse", "--abbrev-ref", "HEAD")
    status = _run_git(cwd, "status", "--porcelain", "--untracked-files=no") or ""
    diff = (_run_git(cwd, "diff", "HEAD", "--binary", strip=False) or "") if commit else ""
    remote = _run_git(cwd, "config", "--get", "remote.origin.url")
    state: dict[str, Any] = {
        "root": top,
        "subdir": os.path.relpath(cwd, top),
        "commit": commit,
        "branch": branch,
        "remote": remote,
        "dirty": bool(status.strip()),
        "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
    }
    if diff and len(diff.encode()) <= MAX_DIFF_BYTES:
        state["diff"] = diff
    return state


def _run_git(cwd: str, *args: str, strip: bool = True) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() if strip else result.stdout


def rerun_instructions(environment: dict[str, Any] | None, run_id: str) -> list[str]:
    """Shell lines that reproduce the command of a run from its recorded environment."""
    if not environment:
        return ["# no environment was recorded for this run"]
    lines: list[str] = []
    git = environment.get("git")
    command = environment.get("command", {})
    if git and git.get("commit"):
        where = git.get("remote") or git.get("root")
        lines.append(f"# in a clone of {where}")
        lines.append(f"git checkout {git['commit']}")
        if git.get("dirty"):
            if git.get("diff"):
                lines.append(f"modelyard runs show {run_id} --diff | git apply")
            else:
                lines.append(
                    f"# the tree had uncommitted changes (sha256 {git['diff_sha256']}) "
                    "too large to record"
                )
        if git.get("subdir") not in (None, "."):
            lines.append(f"cd {git['subdir']}")
    elif command.get("cwd"):
        lines.append(f"cd {command['cwd']}  # not a git checkout: code version unknown")
    python = environment.get("python", {})
    lines.append(f"# Python {python.get('version', '?')}")
    lines.append(f"modelyard runs show {run_id} --requirements > requirements.txt")
    lines.append("pip install -r requirements.txt")
    argv = command.get("argv") or []
    if argv:
        lines.append("python " + " ".join(_quote(a) for a in argv))
    return lines


def requirements(environment: dict[str, Any] | None) -> list[str]:
    packages = (environment or {}).get("packages") or {}
    return [f"{name}=={version}" for name, version in sorted(packages.items())]


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


__all__ = ["capture_environment", "current_user", "requirements", "rerun_instructions"]
