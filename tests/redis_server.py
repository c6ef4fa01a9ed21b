"""A real redis-server on loopback for the tests that cross a socket to Redis.

Registered as a pytest plugin by the shared conftest, so every test directory can use
`redis_server` (one server per session), `start_redis` (private servers a test may kill)
and `closed_port`.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import quote

import pytest

logger = logging.getLogger(__name__)

# A Redis user made on every test server; tests search logs and reprs for the password.
REDIS_USER = "alice"
REDIS_PASSWORD = "canary-pw/7f3a9c1e"
REDIS_PASSWORD_QUOTED = quote(REDIS_PASSWORD, safe="")

_START_TIMEOUT_S = 10.0


def free_port() -> int:
    """A loopback port nothing listens on (just released by the OS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: connecting is refused at once."""
    return free_port()


# -- a real redis-server ----------------------------------------------------------------


@dataclass
class RedisServer:
    """One redis-server process on 127.0.0.1:`port`, without persistence, in `directory`."""

    binary: str
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    user: ClassVar[str] = REDIS_USER
    password: ClassVar[str] = REDIS_PASSWORD
    password_quoted: ClassVar[str] = REDIS_PASSWORD_QUOTED

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def password_url(self) -> str:
        """The URL logging in as a user with a password (which needs quoting)."""
        return f"redis://{REDIS_USER}:{REDIS_PASSWORD_QUOTED}@127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path:
        return self.directory / "redis.sock"

    def start(self) -> None:
        """Start the server (again, after `kill`) and wait until it answers."""
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 (the process owns it)
        options = {
            "--port": str(self.port),
            "--bind": "127.0.0.1",
            "--save": "",
            "--appendonly": "no",
            "--dir": str(self.directory),
            "--unixsocket": str(self.socket_path),
            "--unixsocketperm": "700",
        }
        self.process = subprocess.Popen(
            [self.binary, *(part for pair in options.items() for part in pair)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                text = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{text}")
            time.sleep(0.02)
        self.command("ACL", "SETUSER", REDIS_USER, "on", f">{REDIS_PASSWORD}", "~*", "+@all")

    def kill(self) -> None:
        """SIGKILL the server, as a crash would; its data is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def command(self, *args: str) -> bytes:
        """Send one command over a raw socket; returns the first reply line."""
        request = f"*{len(args)}\r\n".encode()
        for arg in args:
            data = arg.encode()
            request += b"$%d\r\n%s\r\n" % (len(data), data)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(request)
            reply = s.recv(4096)
        if reply.startswith(b"-"):
            raise RuntimeError(f"redis {args[0]} failed: {reply!r}")
        return reply.split(b"\r\n", 1)[0]

    def hget(self, name: str, field_name: str) -> bytes | None:
        """One field of a hash, read with redis-py (which every test that uses Redis has)."""
        import redis

        client = redis.Redis.from_url(self.url)
        try:
            value = client.hget(name, field_name)
        finally:
            client.close()
        assert value is None or isinstance(value, bytes)
        return value

    def _answers(self) -> bool:
        try:
            return self.command("PING") == b"+PONG"
        except OSError:
            return False


def _find_redis_server() -> str | None:
    found = shutil.which("redis-server")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    logger.warning("redis-server is not on PATH: running apt-get install -y -q redis-server")
    try:
        result = subprocess.run(
            ["apt-get", "install", "-y", "-q", "redis-server"],
            capture_output=True,
            timeout=300,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("apt-get install redis-server failed: %s", exc)
        return None
    if result.returncode != 0:
        logger.warning(
            "apt-get install redis-server exited with %d: %s",
            result.returncode,
            result.stderr.decode(errors="replace")[-2000:],
        )
    return shutil.which("redis-server")


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """The redis-server executable (installed with apt-get when root and missing), or skip."""
    pytest.importorskip("redis", reason="the redis package is not installed")
    binary = _find_redis_server()
    if binary is None:
        pytest.skip(
            "redis-server is not on PATH (and could not be installed with apt-get): "
            "install the redis-server package to run the tests that need Redis"
        )
    return binary


StartRedis = Callable[[], RedisServer]


@pytest.fixture(scope="session")
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    """One server for the whole session; tests keep apart through their own key prefixes."""
    with tempfile.TemporaryDirectory(prefix="lm-deluge-redis-") as directory:
        server = RedisServer(redis_binary, free_port(), Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def start_redis(redis_binary: str) -> Iterator[StartRedis]:
    """Start private servers (for tests that kill one); all are stopped at the end."""
    servers: list[RedisServer] = []

    def start() -> RedisServer:
        # Not under tmp_path: a Unix socket path must stay under ~100 characters.
        directory = Path(tempfile.mkdtemp(prefix="lm-deluge-redis-"))
        server = RedisServer(redis_binary, free_port(), directory)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()
        shutil.rmtree(server.directory, ignore_errors=True)
