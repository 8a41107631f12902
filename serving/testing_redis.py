"""A throwaway `redis-server` for tests and benchmarks: its own process on a
free loopback port, its files in a given directory, no persistence (a killed
server comes back empty, which is what the rebuild tests need), never a
system service."""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import time
from typing import Iterator, Optional

import redis

from serving.testing_grpc import free_port

_START_TIMEOUT_S = 10.0


class RedisProcess:
  """One `redis-server` process; `kill` and `start` again keep its port.

  Args:
    binary: the `redis-server` executable.
    directory: its working directory (log, and nothing else: no dumps).
  """

  def __init__(self, binary: str, directory: pathlib.Path):
    self._binary = binary
    self._directory = directory
    self.port = free_port()
    self._process: Optional[subprocess.Popen] = None

  @property
  def url(self) -> str:
    return f"redis://127.0.0.1:{self.port}/0"

  def start(self) -> None:
    """Starts the server and waits until it answers PING."""
    self._directory.mkdir(parents=True, exist_ok=True)
    self._process = subprocess.Popen(  # pylint: disable=consider-using-with
        [self._binary, "--port", str(self.port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--daemonize", "no",
         "--dir", str(self._directory),
         "--logfile", str(self._directory / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + _START_TIMEOUT_S
    probe = redis.Redis(port=self.port, socket_timeout=0.5,
                        socket_connect_timeout=0.5)
    try:
      while True:
        try:
          probe.ping()
          return
        except redis.ConnectionError:
          if (self._process.poll() is not None
              or time.monotonic() > deadline):
            raise RuntimeError(
                f"redis-server did not start on port {self.port}; see "
                f"{self._directory / 'redis.log'}") from None
          time.sleep(0.05)
    finally:
      probe.close()

  def kill(self) -> None:
    """SIGKILL, as a crash: everything it held is gone."""
    if self._process is not None:
      self._process.kill()
      self._process.wait(timeout=10)
      self._process = None


@contextlib.contextmanager
def redis_server(binary: str,
                 directory: pathlib.Path) -> Iterator[RedisProcess]:
  """A started `RedisProcess`, killed on exit."""
  process = RedisProcess(binary, directory)
  process.start()
  try:
    yield process
  finally:
    process.kill()
