"""Time from process start to the first painted frame of ``hermes`` (median of 10).

The first frame counts as painted when the input's placeholder reaches the terminal.
Target: under 0.5 s on the 2-core machine. Run: python bench/startup.py
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _terminal import drain, read_until, spawn_hermes, stop

RUNS = 10


def main() -> None:
    times = []
    for _ in range(RUNS):
        proc, master, started, home = spawn_hermes()
        try:
            painted = read_until(master, b"Message Hermes")
            times.append(painted - started)
            drain(master, 0.3)
        finally:
            stop(proc, master, home)
    times.sort()
    print(
        f"first frame: median {statistics.median(times) * 1000:.0f} ms, "
        f"min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms ({RUNS} runs)"
    )


if __name__ == "__main__":
    main()
