"""Fixtures for black-box tests of varved: each test gets its own server on free ports (and Unix
sockets) over a fresh data directory, started and stopped by PID."""
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _binary(env_name, default):
    path = os.environ.get(env_name) or str(ROOT / "build" / "tools" / default)
    if not os.path.exists(path):
        pytest.skip(f"{path} not built")
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Varved:
    """A running varved. Attributes: redis_port, memcached_port, http_port, *_socket, data_dir."""

    def __init__(self, extra_args=(), data_dir=None):
        self.binary = _binary("VARVED", "varved")
        self._tmp = tempfile.TemporaryDirectory(prefix="varved-test-")
        self.data_dir = data_dir or os.path.join(self._tmp.name, "data")
        self.redis_port = free_port()
        self.memcached_port = free_port()
        self.http_port = free_port()
        self.redis_socket = os.path.join(self._tmp.name, "redis.sock")
        self.memcached_socket = os.path.join(self._tmp.name, "memcached.sock")
        self.http_socket = os.path.join(self._tmp.name, "http.sock")
        self.log_path = os.path.join(self._tmp.name, "varved.log")
        self.args = [
            self.binary, "--data-dir", self.data_dir, "--bind", "127.0.0.1",
            "--redis-port", str(self.redis_port), "--memcached-port", str(self.memcached_port),
            "--http-port", str(self.http_port), "--redis-socket", self.redis_socket,
            "--memcached-socket", self.memcached_socket, "--http-socket", self.http_socket,
            "--durability", "none", *extra_args,
        ]
        self.proc = None
        self.start()

    def start(self):
        self._log = open(self.log_path, "ab")
        since = os.path.getsize(self.log_path)  # count only this run's lines
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"varved exited with {self.proc.returncode}: {self.log()}")
            if self.log()[since:].count("listening") >= 6:
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"varved did not start: {self.log()}")

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the server by PID; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self._log.close()
        return rc

    def restart(self):
        self.stop()
        self.start()

    def close(self):
        self.stop(signal.SIGKILL)
        self._tmp.cleanup()


@pytest.fixture
def varved():
    server = Varved()
    yield server
    server.close()


@pytest.fixture
def varved_factory():
    """Starts servers with extra arguments: varved_factory("--max-value-bytes", "1000")."""
    servers = []

    def make(*extra_args):
        servers.append(Varved(extra_args))
        return servers[-1]

    yield make
    for s in servers:
        s.close()
