"""``hermes gateway install|uninstall|start|stop|restart|status``: the gateway as a service.

Linux gets a systemd **user** unit (``$XDG_CONFIG_HOME/systemd/user``), macOS a launchd
agent (``~/Library/LaunchAgents``). Both are named after the HERMES_HOME they serve (a short
hash of its resolved path), so two homes, or Hermes Agent's own ``hermes-gateway`` unit
beside ours, never collide. The service runs ``python -m hermes_tui.cli gateway run`` with
that HERMES_HOME, restarts it when it fails, but not when it exits 2 (a bad configuration:
restarting cannot fix it, and the log says why).

``status`` does not ask the service manager: the gateway's lock says whether one runs and its
PID (whoever started it: service, terminal or TUI), its status file since when and with which
platforms. Everything that runs ``systemctl``/``launchctl`` goes through an injectable runner,
so the commands are testable where no user service manager exists.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hermes_gateway.home_lock import holder
from hermes_gateway.status_file import read_status
from hermes_gateway.text import uptime

__all__ = [
    "Runner",
    "ServiceError",
    "ServiceManager",
    "launchd_plist",
    "service_id",
    "status_lines",
    "systemd_unit",
]

#: The exit code of a bad configuration or unusable home: a restart cannot help.
FATAL_EXIT = 2

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class ServiceError(RuntimeError):
    """A service command failed; the message is for the person who typed it."""


def service_id(home: Path) -> str:
    """``hermes-tui-gateway-<8 hex>``: one per resolved HERMES_HOME."""
    digest = hashlib.sha256(str(home.expanduser().resolve()).encode()).hexdigest()[:8]
    return f"hermes-tui-gateway-{digest}"


def _command(python: str) -> list[str]:
    return [python, "-m", "hermes_tui.cli", "gateway", "run"]


def _quote(value: str) -> str:
    """A systemd ``Environment=`` / ``ExecStart=`` word (C-style quoting)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def systemd_unit(home: Path, *, python: str, path_env: str, working_dir: Path) -> str:
    """The unit file text (see the module docstring for what it does and why)."""
    home = home.expanduser().resolve()
    exec_start = " ".join(_quote(word) for word in _command(python))
    return "\n".join(
        [
            "[Unit]",
            f"Description=Hermes gateway for {home}",
            "After=network-online.target",
            "Wants=network-online.target",
            "StartLimitIntervalSec=0",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart={exec_start}",
            # A path setting takes the rest of the line as it is (no quotes), % escaped.
            f"WorkingDirectory={str(working_dir).replace('%', '%%')}",
            f"Environment={_quote('HERMES_HOME=' + str(home))}",
            f"Environment={_quote('PATH=' + path_env)}",
            "Environment=PYTHONUNBUFFERED=1",
            "Restart=on-failure",
            "RestartSec=5",
            f"RestartPreventExitStatus={FATAL_EXIT}",
            # SIGTERM lets the gateway finish its answers (gateway.drain_timeout) and close
            # the store; systemd kills what is left after TimeoutStopSec.
            "KillMode=mixed",
            "KillSignal=SIGTERM",
            "TimeoutStopSec=60",
            "",
            "[Install]",
            "WantedBy=default.target",
            "",
        ]
    )


def launchd_plist(home: Path, *, python: str, path_env: str, logs_dir: Path) -> str:
    """The launchd agent's property list (XML)."""
    home = home.expanduser().resolve()
    data = {
        "Label": launchd_label(home),
        "ProgramArguments": _command(python),
        "EnvironmentVariables": {"HERMES_HOME": str(home), "PATH": path_env},
        "WorkingDirectory": str(home),
        "RunAtLoad": True,
        # Restart after a crash, not after a clean stop or a bad configuration.
        "KeepAlive": {"SuccessfulExit": False, "Crashed": True},
        "ThrottleInterval": 5,
        "StandardOutPath": str(logs_dir / "service.out.log"),
        "StandardErrorPath": str(logs_dir / "service.err.log"),
    }
    return plistlib.dumps(data).decode()


def launchd_label(home: Path) -> str:
    return "org.hermes-tui." + service_id(home).removeprefix("hermes-tui-")


def _run_process(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, check=False)


@dataclass
class ServiceManager:
    """Install and drive the service of one home on this machine."""

    home: Path
    platform: str = sys.platform
    python: str = sys.executable
    environ: dict[str, str] | None = None
    run: Runner = _run_process

    def __post_init__(self) -> None:
        self.home = self.home.expanduser().resolve()
        self.env = dict(os.environ if self.environ is None else self.environ)

    @property
    def systemd(self) -> bool:
        return not self.platform.startswith("darwin")

    @property
    def name(self) -> str:
        return service_id(self.home) + ".service" if self.systemd else launchd_label(self.home)

    @property
    def file(self) -> Path:
        user_home = Path(self.env.get("HOME") or Path.home())
        if self.systemd:
            config = Path(self.env.get("XDG_CONFIG_HOME") or user_home / ".config")
            return config / "systemd" / "user" / self.name
        return user_home / "Library" / "LaunchAgents" / f"{self.name}.plist"

    def text(self) -> str:
        path_env = self.env.get("PATH") or "/usr/local/bin:/usr/bin:/bin"
        if self.systemd:
            return systemd_unit(
                self.home, python=self.python, path_env=path_env, working_dir=self.home
            )
        return launchd_plist(
            self.home, python=self.python, path_env=path_env, logs_dir=self.home / "logs"
        )

    # --- commands --------------------------------------------------------------------

    def install(self, *, start: bool = True) -> list[str]:
        """Write the unit (replacing ours), enable it for login and start it."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.file.write_text(self.text(), encoding="utf-8")
        done = [f"wrote {self.file}"]
        if self.systemd:
            self._call("systemctl", "--user", "daemon-reload")
            self._call("systemctl", "--user", "enable", self.name)
            if start:
                self._call("systemctl", "--user", "restart", self.name)
            done.append(f"enabled {self.name}" + (" and started it" if start else ""))
            done.append(
                "to keep it running after you log out: loginctl enable-linger "
                + shlex.quote(self.env.get("USER") or "$USER")
            )
        else:
            if start:
                self._call("launchctl", "load", "-w", str(self.file))
                done.append(f"loaded {self.name}")
        return done

    def uninstall(self) -> list[str]:
        if not self.file.exists():
            return [f"not installed ({self.file} does not exist)"]
        if self.systemd:
            self._call("systemctl", "--user", "disable", "--now", self.name, check=False)
            self.file.unlink()
            self._call("systemctl", "--user", "daemon-reload")
        else:
            self._call("launchctl", "unload", "-w", str(self.file), check=False)
            self.file.unlink()
        return [f"removed {self.file}"]

    def start(self) -> list[str]:
        self._require_installed()
        if self.systemd:
            self._call("systemctl", "--user", "start", self.name)
        else:
            self._call("launchctl", "load", "-w", str(self.file))
        return [f"started {self.name}"]

    def stop(self, *, timeout: float = 45.0) -> list[str]:
        """Stop the service if installed, then any gateway still on the home (as Hermes Agent's
        ``gateway stop`` does): one started in a terminal, by the TUI, or Hermes Agent's own."""
        from hermes_gateway.home_lock import HomeLockedError
        from hermes_gateway.startup import take_over

        done: list[str] = []
        if self.file.exists():
            if self.systemd:
                self._call("systemctl", "--user", "stop", self.name)
            else:
                self._call("launchctl", "unload", str(self.file))
            done.append(f"stopped {self.name}")
        pid = holder(self.home)
        if pid is not None:
            try:
                take_over(self.home, timeout).release()
            except HomeLockedError as exc:
                raise ServiceError(f"could not stop the gateway: {exc}") from None
            done.append(f"stopped the gateway (PID {pid})")
        return done or ["no gateway was running"]

    def restart(self) -> list[str]:
        self._require_installed()
        if self.systemd:
            self._call("systemctl", "--user", "restart", self.name)
        else:
            self._call("launchctl", "unload", str(self.file), check=False)
            self._call("launchctl", "load", "-w", str(self.file))
        return [f"restarted {self.name}"]

    def _require_installed(self) -> None:
        if not self.file.exists():
            raise ServiceError(
                f"the service is not installed ({self.file} does not exist); "
                "run `hermes gateway install` first"
            )

    def _call(self, *argv: str, check: bool = True) -> None:
        try:
            done = self.run(argv)
        except (OSError, subprocess.SubprocessError) as exc:
            raise ServiceError(f"`{' '.join(argv)}` could not run: {exc}") from None
        if check and done.returncode != 0:
            why = (done.stderr or done.stdout or "").strip().splitlines()
            raise ServiceError(
                f"`{' '.join(argv)}` failed (exit {done.returncode})"
                + (f": {why[-1]}" if why else "")
            )


def status_lines(
    home: Path, *, installed: Path | None = None, now: float | None = None
) -> list[str]:
    """``running (PID n, up 2h 5m) ...`` or ``stopped``, with each platform's state."""
    home = home.expanduser().resolve()
    pid = holder(home)
    status = read_status(home)
    now = time.time() if now is None else now
    lines: list[str] = []
    if pid is None:
        lines.append(f"stopped (no gateway holds {home})")
    else:
        who = f"PID {pid}" if pid else "starting"
        if status is not None and status.pid == pid:
            up = uptime(now - status.started_at)
            lines.append(f"running ({who}, up {up}, {status.mode})")
            platforms = ", ".join(f"{n}: {s}" for n, s in sorted(status.platforms.items()))
            lines.append(f"platforms: {platforms or 'none'}")
        else:
            lines.append(
                f"running ({who})" + ("" if status else ", no status file: Hermes Agent's?")
            )
    if installed is not None:
        lines.append(
            f"service: {'installed' if installed.exists() else 'not installed'} ({installed})"
        )
    return lines
