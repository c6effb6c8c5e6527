"""Named crash points for crash tests: `EMOSTORE_FAULT=<name>` makes the process SIGKILL itself there.

Writers call `fault_point("parquet.before_rename")` etc. at the moments a crash matters; in normal
runs the environment variable is unset and a fault point costs one dictionary lookup.

With `EMOSTORE_FAULT_DELAY_MS=N` the kill comes N ms after the point is passed instead, from
another thread: a crash inside a call that has no point of its own (Lance writing its files and
committing them in one call).
"""

from __future__ import annotations

import os
import signal
import threading

FAULT_ENV = "EMOSTORE_FAULT"
DELAY_ENV = "EMOSTORE_FAULT_DELAY_MS"

# Every named point, by the output it guards (the README's fault matrix lists the same).
POINTS = (
    "parquet.before_write", "parquet.mid_write", "parquet.temp_written", "parquet.before_rename", "parquet.after_rename",
    "lance.before_commit", "lance.mid_write", "lance.after_commit",
    "media.before_write", "media.mid_write", "media.before_rename", "media.after_rename",
    "checkpoint.before_write", "checkpoint.mid_write", "checkpoint.before_rename", "checkpoint.after_rename",
)


def fault_point(name: str) -> None:
    if os.environ.get(FAULT_ENV) != name:
        return
    delay = int(os.environ.get(DELAY_ENV, "0") or 0)
    if delay <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
    timer = threading.Timer(delay / 1000, os.kill, (os.getpid(), signal.SIGKILL))
    timer.daemon = True
    timer.start()
