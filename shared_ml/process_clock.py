"""When this process started, in epoch seconds, to about 10 ms: the "process up" moment.

psutil's ``Process.create_time()`` adds the process's start (clock ticks since boot) to the
boot time in /proc/stat, which Linux gives in whole seconds. So on Linux every create time
is early by the same fraction of a second, up to 1 s (psutil issue #877): a task process
seemed to start before the run that spawned it. Here the start in ticks is taken back from
the precise time since boot (CLOCK_BOOTTIME, the clock those ticks count) instead.
"""

from __future__ import annotations

import os
import sys
import time

import psutil


def process_started_at() -> float:
    """This process's start, as ``time.time()`` would have read then (epoch seconds)."""
    if not sys.platform.startswith("linux"):
        return psutil.Process().create_time()  # elsewhere psutil's own clock is precise
    with open("/proc/self/stat", encoding="ascii") as stat:
        # The command name (field 2) may hold spaces: fields are counted after its ")".
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks_since_boot = int(fields[19])  # field 22, starttime
    age_s = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks_since_boot / os.sysconf("SC_CLK_TCK")
    return time.time() - age_s
