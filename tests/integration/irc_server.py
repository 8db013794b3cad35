"""A real IRC server for the tests: ngircd (Debian's package), on 127.0.0.1 and a free port.

ngircd runs in the foreground as a subprocess with a config of ours; killing it with SIGKILL
and starting it again on the same port is how the tests cut the bot off. It paces what each
client sends (about three lines a second), as real networks do. ``.ci/run`` installs it when
it is missing; tests skip with the reason where it cannot be found.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import os
import shutil
import socket
from pathlib import Path

__all__ = ["NGIRCD", "Ngircd", "free_port", "self_signed"]

NGIRCD = shutil.which("ngircd") or ("/usr/sbin/ngircd" if Path("/usr/sbin/ngircd").exists() else "")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost (and its key), written under ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Ngircd:
    """One ngircd process; ``port`` (plain) and ``tls_port`` stay the same across restarts."""

    def __init__(self, directory: Path, *, password: str = "", tls: bool = False) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.password = password
        self.cert: Path | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    def _config(self) -> Path:
        ssl_section = ""
        if self.tls_port:
            if self.cert is None:
                self.cert, key = self_signed(self.dir)
            else:
                key = self.dir / "key.pem"
            ssl_section = (
                f"[SSL]\n\tCertFile = {self.cert}\n\tKeyFile = {key}\n\tPorts = {self.tls_port}\n"
            )
        text = (
            "[Global]\n"
            "\tName = irc.test.local\n"
            "\tInfo = hermes test server\n"
            "\tListen = 127.0.0.1\n"
            f"\tPorts = {self.port}\n"
            f"\tPidFile = {self.dir / 'ngircd.pid'}\n"
            "\tMotdPhrase = test server\n"
            f"\tServerUID = {os.getuid()}\n"
            f"\tServerGID = {os.getgid()}\n"
            + (f"\tPassword = {self.password}\n" if self.password else "")
            + "[Limits]\n"
            "\tMaxConnectionsIP = 0\n"
            "\tMaxJoins = 0\n"
            "\tMaxNickLength = 30\n"
            "\tPingTimeout = 120\n"
            "\tPongTimeout = 20\n"
            "[Options]\n"
            "\tDNS = no\n"
            "\tIdent = no\n"
            "\tPAM = no\n" + ssl_section
        )
        path = self.dir / "ngircd.conf"
        path.write_text(text)
        return path

    async def start(self) -> None:
        conf = self._config()
        # ngircd -n logs every connection: to a pipe nobody reads it would block the server.
        self.proc = await asyncio.create_subprocess_exec(
            NGIRCD,
            "-n",
            "-f",
            str(conf),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.starts += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:  # ready once it accepts connections
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if loop.time() > deadline or self.proc.returncode is not None:
                    raise RuntimeError(f"ngircd did not start; try: ngircd -t -f {conf}") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return

    async def kill(self) -> None:
        """SIGKILL: every client loses its connection at once, without a word."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def restart(self) -> None:
        await self.kill()
        await self.start()

    async def __aenter__(self) -> Ngircd:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.kill()
