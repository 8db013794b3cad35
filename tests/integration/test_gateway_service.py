"""``hermes gateway install|uninstall|start|stop|restart|status`` and ``hermes logs``."""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from hermes_gateway.service import ServiceError, ServiceManager, service_id, status_lines
from hermes_gateway.status_file import STATUS_FILENAME, read_status
from tests.integration.test_gateway_command import start, stop, wait_running

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """Stands in for systemctl/launchctl (external programs), recording what would run."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(argv))
        if self.fail and self.fail in argv:
            return subprocess.CompletedProcess(list(argv), 1, "", "Failed to connect to bus\n")
        return subprocess.CompletedProcess(list(argv), 0, "", "")


def manager(home: Path, tmp_path: Path, platform: str = "linux", **kw) -> ServiceManager:
    env = {
        "HOME": str(tmp_path / "user"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "PATH": "/usr/bin:/bin",
        "USER": "ada",
    }
    return ServiceManager(home, platform=platform, environ=env, run=Recorder(**kw))


def test_each_home_gets_its_own_unit(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert service_id(a) != service_id(b)
    assert service_id(a) == service_id(tmp_path / "x" / ".." / "a")
    unit = manager(a, tmp_path).text()
    assert f'Environment="HERMES_HOME={a.resolve()}"' in unit
    assert f'ExecStart="{sys.executable}" "-m" "hermes_tui.cli" "gateway" "run"' in unit
    assert "RestartPreventExitStatus=2" in unit and "WantedBy=default.target" in unit


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    home = tmp_path / "home with space %"
    home.mkdir()
    m = manager(home, tmp_path)
    unit = tmp_path / m.name
    unit.write_text(m.text())
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "bad" not in done.stderr.lower() and "not absolute" not in done.stderr


def test_launchd_plist(tmp_path: Path) -> None:
    m = manager(tmp_path / "h", tmp_path, platform="darwin")
    data = plistlib.loads(m.text().encode())
    assert data["Label"] == m.name and m.name.startswith("org.hermes-tui.gateway-")
    assert data["ProgramArguments"] == [sys.executable, "-m", "hermes_tui.cli", "gateway", "run"]
    assert data["EnvironmentVariables"]["HERMES_HOME"] == str((tmp_path / "h").resolve())
    assert data["KeepAlive"] == {"SuccessfulExit": False, "Crashed": True}
    assert m.file == tmp_path / "user" / "Library" / "LaunchAgents" / f"{m.name}.plist"
    m.install()
    assert m.run.calls == [["launchctl", "load", "-w", str(m.file)]]  # type: ignore[attr-defined]


def test_systemd_commands(tmp_path: Path) -> None:
    m = manager(tmp_path / "h", tmp_path)
    with pytest.raises(ServiceError, match="hermes gateway install"):
        m.start()
    assert m.stop() == ["no gateway was running"]
    lines = m.install()
    assert m.file == tmp_path / "xdg" / "systemd" / "user" / m.name
    assert m.file.read_text() == m.text()
    assert any("enable-linger ada" in line for line in lines)
    m.restart()
    m.stop()
    m.uninstall()
    assert not m.file.exists()
    assert m.run.calls == [  # type: ignore[attr-defined]
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", m.name],
        ["systemctl", "--user", "restart", m.name],
        ["systemctl", "--user", "restart", m.name],
        ["systemctl", "--user", "stop", m.name],
        ["systemctl", "--user", "disable", "--now", m.name],
        ["systemctl", "--user", "daemon-reload"],
    ]


def test_a_failing_systemctl_is_reported(tmp_path: Path) -> None:
    m = manager(tmp_path / "h", tmp_path, fail="enable")
    with pytest.raises(ServiceError, match=r"enable .*failed \(exit 1\): Failed to connect to bus"):
        m.install()


def test_status_of_a_stopped_home(hermes_home: Path) -> None:
    assert status_lines(hermes_home)[0].startswith("stopped")


def hermes(home: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HERMES_HOME": str(home), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "hermes_tui.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        **kw,
    )


@pytest.mark.slow
def test_status_and_logs_of_a_running_gateway(hermes_home: Path) -> None:
    proc = start(hermes_home, "run", "-q")
    try:
        wait_running(hermes_home, proc)
        deadline = time.monotonic() + 10
        while read_status(hermes_home) is None:
            assert time.monotonic() < deadline, "no status file"
            time.sleep(0.05)
        out = hermes(hermes_home, "gateway", "status").stdout
        assert f"running (PID {proc.pid}, up " in out and "headless" in out
        assert "platforms: none" in out
        assert len(hermes(hermes_home, "logs", "-n", "2").stdout.splitlines()) == 2
        assert "gateway running" in hermes(hermes_home, "logs", "-n", "100").stdout
        log_file = hermes_home / "logs" / "gateway.log"
        with log_file.open("a") as log:
            log.write("the last line so far\n")
        follow = subprocess.Popen(
            [sys.executable, "-m", "hermes_tui.cli", "logs", "-f", "-n", "1"],
            env={**os.environ, "HERMES_HOME": str(hermes_home), "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert follow.stdout is not None
            assert follow.stdout.readline().strip() == "the last line so far"  # at the end now
            with log_file.open("a") as log:
                log.write("a line written just now\n")
            assert follow.stdout.readline().strip() == "a line written just now"
        finally:
            follow.terminate()
            follow.wait(timeout=10)
        # Not a service: stop finds it by its lock, as Hermes Agent's `gateway stop` would.
        stopped = hermes(hermes_home, "gateway", "stop")
        assert stopped.stdout.strip() == f"stopped the gateway (PID {proc.pid})", stopped.stderr
        assert proc.wait(timeout=10) == 0
    finally:
        _, err = stop(proc)
    assert proc.returncode == 0 and "gateway running" not in err  # -q: nothing on stderr
    assert not (hermes_home / STATUS_FILENAME).exists()
    assert hermes(hermes_home, "gateway", "status").stdout.startswith("stopped")
