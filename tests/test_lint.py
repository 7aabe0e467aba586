"""Static checks in CI: ruff on the repository and mypy on the package
(configured in pyproject.toml). Both tools come with the [test] extra."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=ROOT, capture_output=True, text=True)


def test_ruff_is_clean():
    exe = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    out = _run(exe, "check", ".")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_passes_on_the_package():
    out = _run(sys.executable, "-m", "mypy")
    assert out.returncode == 0, out.stdout + out.stderr
