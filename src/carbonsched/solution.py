"""The solution file of MODEL.md section 5, as arrays.

A :class:`Solution` holds a schedule in array form (``y[R,S,H]``, site
series ``[S,H]``) plus the headline numbers every method reports. It reads
and writes the fixed JSON format; :mod:`carbonsched.check` verifies it
against an instance without any model.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .constants import SolutionStatus
from .errors import OutputError, SolutionFormatError
from .instance import Instance

__all__ = ["SITE_SERIES", "Solution", "atomic_write_bytes", "atomic_write_text", "check_writable", "read_solution",
           "try_write_solution", "write_solution", "write_solution_or_fallback"]

SITE_SERIES = ("grid_import_mw", "grid_export_mw", "battery_charge_mw", "battery_discharge_mw", "soc_mwh",
               "renewable_used_mw", "generator_mw", "generator_on")


@dataclass
class Solution:
    """A schedule plus the method's report. Arrays: ``inference[R,S,H]``
    (MW), ``sites[name][S,H]`` (MW; ``soc_mwh`` is ``[S,H+1]`` MWh)."""

    instance: str
    method: str
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    emissions_t: float | None
    training: list[tuple[str, str, int]]  # (job id, site id, start)
    inference: np.ndarray
    sites: dict[str, np.ndarray]
    stats: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def empty(inst: Instance, method: str, status: str) -> Solution:
        """A solution with no schedule, for infeasible outcomes."""
        S, H = inst.S, inst.H
        sites = {k: np.zeros((S, H + 1) if k == "soc_mwh" else (S, H)) for k in SITE_SERIES}
        return Solution(inst.name, method, status, None, None, None, None, [], np.zeros((inst.R, S, H)), sites,
                        {"empty": True})

    def to_dict(self, inst: Instance) -> dict:
        inf: dict[str, dict[str, list[float]]] = {}
        for r, rid in enumerate(inst.region_ids):
            row = {inst.site_ids[s]: _floats(self.inference[r, s]) for s in range(inst.S)
                   if np.any(self.inference[r, s] != 0)}
            if row:
                inf[rid] = row
        sites = {sid: {k: _floats(self.sites[k][s]) for k in SITE_SERIES} for s, sid in enumerate(inst.site_ids)}
        return {
            "instance": self.instance, "method": self.method, "status": self.status,
            "objective": _num(self.objective), "bound": _num(self.bound), "gap": _num(self.gap),
            "emissions_t": _num(self.emissions_t),
            "training": [{"job": j, "site": s, "start": int(t)} for j, s, t in self.training],
            "inference": inf, "sites": sites, "stats": _jsonable(self.stats),
        }


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _floats(a: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(a, float)]


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.floating,)):
        return _num(float(o))
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, float):
        return _num(o)
    return o


def check_writable(path: str | Path) -> None:
    """Refuse an output path before any work is done: its folder must exist
    and be writable, and the path must not be a folder."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise OutputError(f"output path is a directory: {p}")
    if not parent.is_dir():
        raise OutputError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"output folder is not writable: {parent}")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputError(f"output file is not writable: {p}")
    if p.is_char_device():  # /dev/full takes no byte, /dev/null every byte: find out now, not after the solve
        try:
            with open(p, "wb", buffering=0) as fh:
                fh.write(b"\n")
        except OSError as e:
            raise OutputError(f"cannot write {p}: {e.strerror or e}") from None


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically: see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8", errors="backslashreplace"))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, flush it to disk,
    then rename it into place: a reader (or a kill mid-write) sees the old
    file or the new one, never a broken one. Special files (``/dev/null``,
    ``/dev/full``) are written directly."""
    p = Path(path)
    try:
        if p.exists() and not p.is_file():  # a device or pipe: no rename possible
            with open(p, "wb") as fh:
                fh.write(data)
            return
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent if str(p.parent) else ".")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise OutputError(f"cannot write {p}: {e.strerror or e}") from None


def write_solution_or_fallback(sol: Solution, inst: Instance, path: str | Path) -> Path:
    """Write the solution to ``path``; if that fails (a full disk, a folder
    that vanished), print why on stderr and save it in the temporary folder
    instead, so a solved schedule is never lost. Returns where it went."""
    try:
        write_solution(sol, inst, path)
        return Path(path)
    except OutputError as e:
        fd, tmp = tempfile.mkstemp(prefix=f"carbonsched-{_safe(inst.name)}-", suffix=".json")
        os.close(fd)
        write_solution(sol, inst, tmp)
        import sys

        print(f"carbonsched: error: {e}; the solution was saved to {tmp} instead", file=sys.stderr, flush=True)
        return Path(tmp)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:60]


def try_write_solution(sol: Solution, inst: Instance, path: str | Path) -> str | None:
    """:func:`write_solution`, for a write the run can go on without (the
    incumbent as a run goes): None where it was written, else why not."""
    try:
        write_solution(sol, inst, path)
    except OutputError as e:
        return str(e)
    return None


def write_solution(sol: Solution, inst: Instance, path: str | Path) -> None:
    """Write the solution file atomically (see :func:`atomic_write_text`).
    It is serialised in full before the file is touched."""
    atomic_write_text(path, json.dumps(sol.to_dict(inst), indent=1))


def read_solution(path_or_dict: str | Path | dict, inst: Instance) -> Solution:
    """Read a solution file and map it onto the instance's ids. Structural
    problems (wrong types, unknown ids, wrong lengths, missing site series)
    raise :class:`SolutionFormatError` naming the field; constraint
    violations are the checker's business."""
    if isinstance(path_or_dict, dict):
        d = path_or_dict
    else:
        try:
            with open(path_or_dict, encoding="utf-8") as fh:
                d = json.load(fh)
        except json.JSONDecodeError as e:
            raise SolutionFormatError(f"{path_or_dict}: not valid JSON: {e}") from None
        except RecursionError:
            raise SolutionFormatError(f"{path_or_dict}: JSON nested too deeply") from None
        except (OSError, UnicodeDecodeError) as e:
            raise SolutionFormatError(f"cannot read solution file {path_or_dict}: {e}") from None
    if not isinstance(d, dict):
        raise SolutionFormatError("solution: must be a JSON object")
    S, H, R = inst.S, inst.H, inst.R
    probs: list[str] = []
    training = []
    tr = d.get("training") or []
    if not isinstance(tr, list):
        probs.append(f"training: must be a list, got {type(tr).__name__}")
        tr = []
    for i, entry in enumerate(tr):
        if not isinstance(entry, dict) or not {"job", "site", "start"} <= set(entry):
            probs.append(f"training[{i}]: needs job, site and start")
            continue
        st = entry["start"]
        if isinstance(st, bool) or not isinstance(st, (int, float)) or not math.isfinite(st) or float(st) != int(st):
            probs.append(f"training[{i}].start: must be an integer period, got {st!r}"[:200])
            continue
        if not isinstance(entry["job"], str) or not isinstance(entry["site"], str):
            probs.append(f"training[{i}]: job and site must be id strings")
            continue
        training.append((entry["job"], entry["site"], int(st)))
    y = np.zeros((R, S, H))
    inf = d.get("inference") or {}
    if not isinstance(inf, dict):
        probs.append(f"inference: must be an object {{region: {{site: [H numbers]}}}}, got {type(inf).__name__}")
        inf = {}
    for rid, row in inf.items():
        if rid not in inst.region_ids:
            probs.append(f"inference.{rid}: unknown region id")
            continue
        if row is not None and not isinstance(row, dict):
            probs.append(f"inference.{rid}: must be an object {{site: [H numbers]}}")
            continue
        for sid, series in (row or {}).items():
            if sid not in inst.site_ids:
                probs.append(f"inference.{rid}.{sid}: unknown site id")
                continue
            a = _array(series, H, f"inference.{rid}.{sid}", probs)
            if a is not None:
                y[inst.region_ids.index(rid), inst.site_ids.index(sid)] = a
    sites = {k: np.zeros((S, H + 1) if k == "soc_mwh" else (S, H)) for k in SITE_SERIES}
    sd = d.get("sites") or {}
    if not isinstance(sd, dict):
        probs.append(f"sites: must be an object {{site: {{series: [...]}}}}, got {type(sd).__name__}")
        sd = {}
    for sid in sd:
        if sid not in inst.site_ids:
            probs.append(f"sites.{sid}: unknown site id")
    for s, sid in enumerate(inst.site_ids):
        if sid not in sd:
            probs.append(f"sites.{sid}: missing")
            continue
        if not isinstance(sd[sid], dict):
            probs.append(f"sites.{sid}: must be an object of series")
            continue
        for k in SITE_SERIES:
            n = H + 1 if k == "soc_mwh" else H
            if k not in sd[sid]:
                if k == "generator_on":
                    continue
                probs.append(f"sites.{sid}.{k}: missing")
                continue
            a = _array(sd[sid][k], n, f"sites.{sid}.{k}", probs)
            if a is not None:
                sites[k][s] = a
    status = d.get("status", "feasible")
    if status not in SolutionStatus.values():
        probs.append(f"status: must be one of {', '.join(SolutionStatus.values())}, got {status!r}"[:300])
    nums = {}
    for key in ("objective", "bound", "gap", "emissions_t"):
        v = d.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            probs.append(f"{key}: must be a finite number or null, got {v!r}"[:200])
            v = None
        nums[key] = None if v is None else float(v)
    for key in ("instance", "method"):
        if key in d and not isinstance(d[key], str):
            probs.append(f"{key}: must be a string, got {type(d[key]).__name__}")
    stats = d.get("stats") or {}
    if not isinstance(stats, dict):
        probs.append("stats: must be an object")
        stats = {}
    if probs:
        raise SolutionFormatError("solution file problems:\n" + "\n".join(f"  - {p}" for p in probs))
    return Solution(instance=d.get("instance", inst.name), method=d.get("method", "?"), status=status,
                    objective=nums["objective"], bound=nums["bound"], gap=nums["gap"],
                    emissions_t=nums["emissions_t"], training=training, inference=y, sites=sites, stats=stats)


def _array(v: Any, n: int, path: str, probs: list[str]) -> np.ndarray | None:
    if not isinstance(v, list) or len(v) != n:
        probs.append(f"{path}: must be a list of {n} numbers")
        return None
    try:
        a = np.array(v, dtype=float)
    except (TypeError, ValueError):
        probs.append(f"{path}: must hold numbers only")
        return None
    if not np.all(np.isfinite(a)):
        probs.append(f"{path}: must be finite")
        return None
    return a
