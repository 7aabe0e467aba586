"""Checkpoints of a decomposition run: save its state, resume it later.

A checkpoint is one ``.npz`` file (numpy arrays, no pickles) holding a
JSON header and the run's arrays. The header records the format, the
method and a SHA-256 of the instance (its canonical MODEL.md form), so a
checkpoint is refused, with the reason, for another method or another
instance. What a method saves is its own business
(:func:`carbonsched.decomposition.lagrangian` saves multipliers, the
bundle's cuts and centre, recent job choices; Benders its master cuts and
phase); both save the incumbent schedule, the bound, the iteration count
and the trace. Files are written atomically, so a kill while saving leaves
the previous checkpoint whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CarbonschedError
from ..instance import Instance, instance_to_dict
from ..solution import Solution, atomic_write_bytes, read_solution

__all__ = ["CheckpointError", "instance_digest", "load_checkpoint", "pack_ragged", "save_checkpoint",
           "unpack_ragged"]

#: 2: Benders' master has the committed units' on/off columns, so its cuts' column indices moved;
#: 3: and their output columns, which the integer phase's cuts carry instead of the on/off ones
FORMAT = 3


class CheckpointError(CarbonschedError):
    """A checkpoint that cannot be read or does not belong to this run."""


def instance_digest(inst: Instance) -> str:
    """SHA-256 of the instance's canonical JSON (ablations included)."""
    text = json.dumps(instance_to_dict(inst), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def save_checkpoint(path: str | Path, *, method: str, inst: Instance, header: dict[str, Any],
                    arrays: dict[str, np.ndarray], incumbent: Solution | None) -> None:
    """Write a checkpoint atomically."""
    head = {"format": FORMAT, "method": method, "instance": inst.name, "instance_sha256": instance_digest(inst),
            **header}
    if incumbent is not None:
        head["incumbent"] = incumbent.to_dict(inst)
    buf = io.BytesIO()
    payload: dict[str, Any] = {"__header__": np.frombuffer(json.dumps(head).encode(), dtype=np.uint8), **arrays}
    np.savez_compressed(buf, **payload)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, *, method: str, inst: Instance
                    ) -> tuple[dict[str, Any], dict[str, np.ndarray], Solution | None]:
    """Read a checkpoint for ``method`` on ``inst``: (header, arrays,
    incumbent schedule or None). Refuses, with the reason, a file of
    another format, method or instance."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from None
    if magic != b"PK\x03\x04":  # every .npz is a zip file
        raise CheckpointError(f"{path} is not a carbonsched checkpoint (not an .npz file)")
    try:  # a truncated or damaged file fails in the zip directory, in a member's inflate or in its header
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise CheckpointError(f"cannot read checkpoint {path} (truncated or damaged): {e}") from None
    if "__header__" not in arrays:
        raise CheckpointError(f"{path} is not a carbonsched checkpoint (no header)")
    try:
        head = json.loads(arrays.pop("__header__").tobytes().decode())
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CheckpointError(f"{path}: unreadable checkpoint header: {e}") from None
    if not isinstance(head, dict):
        raise CheckpointError(f"{path}: unreadable checkpoint header: not a JSON object")
    if head.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {head.get('format')}, this version reads {FORMAT}")
    if head.get("method") != method:
        raise CheckpointError(f"{path} is a {head.get('method')} checkpoint; cannot resume it with {method}")
    if head.get("instance_sha256") != instance_digest(inst):
        raise CheckpointError(f"{path} was saved for another instance ({head.get('instance')!r}, different data "
                              f"by SHA-256) than {inst.name!r}")
    inc = head.pop("incumbent", None)
    return head, arrays, (read_solution(inc, inst) if inc is not None else None)


def pack_ragged(rows: list[np.ndarray], dtype=float) -> tuple[np.ndarray, np.ndarray]:
    """A list of 1-d arrays as (concatenation, offsets)."""
    ptr = np.zeros(len(rows) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(r) for r in rows]) if rows else []
    data = np.concatenate(rows).astype(dtype) if rows else np.zeros(0, dtype)
    return data, ptr


def unpack_ragged(data: np.ndarray, ptr: np.ndarray) -> list[np.ndarray]:
    return [data[ptr[i]:ptr[i + 1]] for i in range(len(ptr) - 1)]
