"""Writing an export directory whole or not at all: a new ``--out`` only,
filled under a temporary sibling name and renamed when complete, with
ordinary permissions."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


class ExportError(ValueError):
    """An export that cannot be written (the message says why)."""


def fresh(out: str | Path) -> Path:
    out = Path(out)
    if out.exists():
        raise ExportError(f"{out} already exists; choose a new --out (an export is never written over)")
    return out


def write_dir(out: Path, fill) -> Path:
    """Runs ``fill(tmp)`` on a temporary sibling directory, then renames it to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        fill(tmp)
        _readable(tmp)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _readable(directory: Path) -> None:
    """Ordinary permissions (the temporary directory and files start private)."""
    umask = os.umask(0)
    os.umask(umask)
    directory.chmod(0o777 & ~umask)
    for path in directory.iterdir():
        path.chmod(0o666 & ~umask)
