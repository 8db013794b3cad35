"""Resident memory of ``hermes`` idle after start (gateway running, libraries loaded).

Target: under 120 MB. Run: python bench/memory.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _terminal import drain, read_until, rss_mb, spawn_hermes, stop


def main() -> None:
    env = {"OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "HERMES_MODEL": "m"}
    proc, master, _, home = spawn_hermes(env)
    try:
        read_until(master, b"connected")
        drain(master, 3.0)  # let the gateway settle
        print(f"idle resident memory: {rss_mb(proc.pid):.1f} MB")
    finally:
        stop(proc, master, home)


if __name__ == "__main__":
    main()
