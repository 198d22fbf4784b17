"""Each peer in a virtualenv of its own under ``bench/.peers/<name>``, made by the bench.

The peers are not dependencies of the project: the bench creates the virtualenv with the
interpreter that runs it (``python -m venv``) and installs the peer's requirements from PyPI with
pip. A file ``installed.json`` in the virtualenv records what was installed; the next run
reuses the virtualenv when the requirements are the same, and makes it again otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["PEERS_DIR", "REQUIREMENTS", "ensure", "python_of"]

PEERS_DIR = Path(__file__).resolve().parent.parent / ".peers"

#: What each peer's virtualenv holds (major versions pinned: the peer scripts use their API).
REQUIREMENTS: dict[str, list[str]] = {
    "celery": ["celery[redis]>=5.4,<6"],
    "dbos": ["dbos>=2,<4", "psycopg[binary]>=3.1"],
    "procrastinate": ["procrastinate>=3,<4", "psycopg[binary,pool]>=3.1"],
    "prefect": ["prefect>=3,<4"],
}


def python_of(name: str) -> Path:
    return PEERS_DIR / name / "bin" / "python"


def ensure(name: str, timeout: float = 900.0) -> Path:
    """The peer's interpreter, its virtualenv made first when missing or out of date.

    Raises ``RuntimeError`` with pip's last lines when the installation fails."""
    requirements = REQUIREMENTS[name]
    home = PEERS_DIR / name
    stamp = home / "installed.json"
    if stamp.exists():
        try:
            if json.loads(stamp.read_text()).get("requirements") == requirements:
                return python_of(name)
        except ValueError:
            pass
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(home)], timeout)
    py = str(python_of(name))
    _run(
        [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
        timeout,
    )
    frozen = _run([py, "-m", "pip", "freeze", "--disable-pip-version-check"], 120)
    stamp.write_text(
        json.dumps({"requirements": requirements, "freeze": frozen.splitlines()}, indent=1)
    )
    return python_of(name)


def _run(cmd: list[str], timeout: float) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"{' '.join(cmd[:4])}… took more than {timeout:.0f} s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(cmd[:4])}… exited {done.returncode}: " + " | ".join(tail))
    return done.stdout


if __name__ == "__main__":
    for peer in sys.argv[1:] or list(REQUIREMENTS):
        try:
            print(peer, ensure(peer))
        except RuntimeError as exc:
            print(peer, "failed:", exc)
