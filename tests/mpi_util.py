"""Launch the CLI under mpiexec (the one from the mpich wheel, beside python)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    exe = str(here) if here.exists() else shutil.which("mpiexec")
    assert exe, "mpiexec not found: the mpich wheel should install it beside python"
    return exe


def run_cli_mpi(n: int, args: list[str], out: Path, timeout: float = 300) -> dict:
    """Run ``carbonsched solve ... --out out`` on n ranks; return the file."""
    cmd = [mpiexec(), "-n", str(n), sys.executable, "-m", "carbonsched", "solve", *args, "--out", str(out), "--quiet"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    # 0: optimal within the gap, 1: a schedule with a larger gap (see ExitCode)
    assert proc.returncode in (0, 1), f"rc={proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text())
