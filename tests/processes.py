"""Live processes of this machine, for tests that check what a Ray session leaves behind."""

from __future__ import annotations

from pathlib import Path


def processes_under(directory: Path) -> list[str]:
    """Command lines of live processes that mention ``directory`` (Ray's raylet, GCS, workers)."""
    found = []
    for cmdline_file in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = cmdline_file.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended while we looked
            continue
        if str(directory) in cmdline:
            found.append(cmdline)
    return found
