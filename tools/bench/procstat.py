"""CPU time and RSS of processes, read from /proc (Linux only)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    comm: str
    pgrp: int
    ppid: int


def _stat_fields(pid: int) -> tuple[str, list[str]]:
    text = Path(f"/proc/{pid}/stat").read_text()
    lpar, rpar = text.index("("), text.rindex(")")
    return text[lpar + 1:rpar], text[rpar + 2:].split()


def processes() -> list[ProcInfo]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm, f = _stat_fields(int(entry))
        except (OSError, ValueError):
            continue
        # fields after the comm: state(0) ppid(1) pgrp(2) ...
        out.append(ProcInfo(int(entry), comm, int(f[2]), int(f[1])))
    return out


def group_members(pgrp: int) -> list[ProcInfo]:
    return [p for p in processes() if p.pgrp == pgrp]


def workerd_pids(pgrp: int) -> list[int]:
    """The workerd process(es) in wrangler's process group (devstack starts wrangler
    with start_new_session, so the group id is the wrangler pid)."""
    return [p.pid for p in group_members(pgrp) if p.comm.startswith("workerd")]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads)."""
    _, f = _stat_fields(pid)
    # utime and stime are fields 14 and 15 of /proc/PID/stat (1-based), 11 and 12 here
    return (int(f[11]) + int(f[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sample(pids: list[int]) -> dict:
    """CPU seconds and RSS bytes summed over `pids` (missing processes count 0)."""
    cpu = 0.0
    rss = 0
    for pid in pids:
        try:
            cpu += cpu_seconds(pid)
            rss += rss_bytes(pid)
        except (OSError, ValueError):
            pass
    return {"cpu": cpu, "rss": rss}


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
