"""`CliProcess`: a process a test starts and lets run (a queue worker, the scheduler,
a copy it kills, the compose start script), its output in a file.

Not a pipe: a pipe that nobody reads until the process stops fills up (64 KiB, a few
logged tracebacks), and then the process blocks on writing a log line. A worker
blocked so stops beating, and its jobs are handed to others while it still holds them.
"""

import asyncio
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.config import BACKEND_DIR


@dataclass
class CliProcess:
    process: "subprocess.Popen[bytes]"
    log: Path

    @classmethod
    def start(cls, arguments: Sequence[str], env: dict[str, str], log: Path) -> "CliProcess":
        """`python -m app.cli ARGUMENTS`, its output (stdout and stderr) in `log`."""
        return cls.run([sys.executable, "-m", "app.cli", *arguments], env, log)

    @classmethod
    def run(cls, command: Sequence[str], env: dict[str, str], log: Path) -> "CliProcess":
        """`command`, run in backend/, its output (stdout and stderr) in `log`."""
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=BACKEND_DIR,
                # A process that does not exit in time is sent SIGABRT: a Python one's
                # threads' stacks land in its output (see `finished`).
                env={**env, "PYTHONFAULTHANDLER": "1"},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        return cls(process, log)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def running(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.kill()

    async def finished(self, within: float = 60) -> str:
        """Wait for the process to exit; its output. One still running after `within`
        seconds fails the test with its output and where each of its threads was."""
        try:
            await asyncio.to_thread(self.process.wait, within)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGABRT)
            await asyncio.to_thread(self.process.wait, 10)
            raise AssertionError(
                f"still running after {within:g} s; its output, then its threads' stacks:\n"
                + self.output()[-20_000:]
            ) from None
        return self.output()

    async def stop(self) -> str:
        """SIGTERM, as an operator stops a worker; its output, once it exited cleanly."""
        self.signal(signal.SIGTERM)
        output = await self.finished()
        assert self.returncode == 0, output
        return output
