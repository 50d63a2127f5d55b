"""What a benchmark run says about where it ran, and the copy of tasklets its children import.

* :func:`cpu_description`: the CPU's model and cache sizes (whether a
  working set fits in cache decides some figures).
* :func:`snapshot_tasklets`: a copy of the package, so that every round of
  a run measures the same code while others edit ``src/``.
* :func:`installed`: whether a peer library is there to be measured.
"""

from __future__ import annotations

import contextlib
import importlib.util
import platform
import shutil
from pathlib import Path

__all__ = ["cpu_description", "installed", "snapshot_tasklets"]


def cpu_description() -> str:
    """The CPU's model and cache sizes (what decides whether a working set fits), from /proc and /sys."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        with contextlib.suppress(OSError):
            kind = (index / "type").read_text().strip()
            if kind != "Instruction":
                shared = (index / "shared_cpu_list").read_text().strip()
                caches.append(f"L{(index / 'level').read_text().strip()} {(index / 'size').read_text().strip()}"
                              f" (CPUs {shared})")  # fmt: skip
    return f"{model}; " + (", ".join(caches) if caches else "cache sizes unknown")


def snapshot_tasklets(directory: Path, source: Path | None = None) -> Path:
    """Copy the tasklets package (as installed now) into ``directory``; return the path to put first.

    Other people edit ``src/`` while benchmarks run; without a snapshot, the
    rounds of one run could measure different code (or a half-saved file).

    Args:
        directory: where the copy goes (as ``directory/tasklets``).
        source: the package directory to copy (default: the installed one).
    """
    if source is None:
        spec = importlib.util.find_spec("tasklets")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("tasklets is not installed: python -m pip install -e .")
        source = Path(next(iter(spec.submodule_search_locations)))
    if not (source / "__init__.py").is_file():
        raise SystemExit(f"{source} is not the tasklets package directory")
    shutil.copytree(source, directory / "tasklets", ignore=shutil.ignore_patterns("__pycache__"))
    return directory


def installed(package: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(package)
    except md.PackageNotFoundError:
        return False
    return True
