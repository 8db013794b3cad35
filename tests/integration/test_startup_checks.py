"""``hermes gateway run`` on a broken home: exit code 2, one line naming the problem, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.broken_homes import CASES, Broken, build, one_line, unprivileged

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_gateway_run_refuses_a_broken_home(tmp_path: Path, case: Broken) -> None:
    prefix: list[str] | None = []
    if case.needs_permissions:
        prefix = unprivileged()
        if prefix is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
    home = build(tmp_path, case)
    env = {**os.environ, "HERMES_HOME": str(home), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [*prefix, sys.executable, "-m", "hermes_tui.cli", "gateway", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    lines = one_line(proc.stderr)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, lines
    assert all(needle in lines[0] for needle in case.needles), lines[0]
