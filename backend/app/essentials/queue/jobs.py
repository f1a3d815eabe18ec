"""Jobs: plain async functions declared with `@job`, and the messages that carry them.

`@job("notifications.deliver", max_attempts=5)` records a name and default options
on the function and registers it nowhere: the worker finds jobs by name in the
`JobRegistry` built at the top of the application (`app/jobs.py`), so what a worker
can run is written in one list, and importing a module never changes it.

A job takes the `JobContext` first and its arguments by keyword; the arguments travel
as JSON, so they are checked (JSON, and fitting the signature) when the job is
dispatched, not when a worker meets them minutes later.
"""

import inspect
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Generic, ParamSpec

from app.core.db.types import utc_now

P = ParamSpec("P")

DEFAULT_QUEUE = "default"
# Keyword arguments of a dispatch that are options, not the job's own arguments.
OPTION_NAMES = frozenset({"delay", "queue", "max_attempts", "backoff", "timeout"})
QUEUE_NAME_LENGTH = 64
JOB_NAME_LENGTH = 200
# A job's arguments are ids and small values; MySQL's TEXT holds 64 KiB.
MAX_ARGUMENTS_BYTES = 60_000


class JobArgumentsError(TypeError):
    """A dispatch whose arguments or options a worker could not run: not JSON, not
    fitting the job's signature, or an option out of range."""


@dataclass(frozen=True, slots=True)
class JobOptions:
    """How a job is run: its queue, its attempts, the seconds to wait before each retry
    (the last value repeats), and the seconds an attempt may take (None: no limit)."""

    queue: str = DEFAULT_QUEUE
    max_attempts: int = 3
    backoff: tuple[float, ...] = (10.0, 60.0, 300.0)
    timeout: float | None = 60.0

    def __post_init__(self) -> None:
        if not self.queue or len(self.queue) > QUEUE_NAME_LENGTH or "," in self.queue:
            raise JobArgumentsError(
                f"a queue name has 1 to {QUEUE_NAME_LENGTH} characters and no comma"
            )
        if not 1 <= self.max_attempts <= 1000:
            raise JobArgumentsError("max_attempts must be between 1 and 1000")
        if not self.backoff or not all(_seconds(value) for value in self.backoff):
            raise JobArgumentsError("backoff must be one or more non-negative numbers of seconds")
        if self.timeout is not None and not (_seconds(self.timeout) and self.timeout > 0):
            raise JobArgumentsError("timeout must be a positive number of seconds, or None")

    def retry_delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return self.backoff[min(attempt, len(self.backoff)) - 1]


def _seconds(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


@dataclass(frozen=True, slots=True)
class JobMessage:
    """A job with its arguments, ready to enqueue: what a row of `jobs`, an outbox row
    or a broker's message holds. `arguments` is the JSON text of the keyword arguments."""

    kind: ClassVar[str] = "job"  # the outbox kind that delivers it to the queue

    uuid: str
    name: str
    arguments: str
    options: JobOptions
    available_at: datetime
    batch_id: int | None = None

    def payload(self) -> dict[str, Any]:
        """The message as JSON-ready data (an outbox row's payload)."""
        return {
            "uuid": self.uuid,
            "name": self.name,
            "arguments": self.arguments,
            "queue": self.options.queue,
            "max_attempts": self.options.max_attempts,
            "backoff": list(self.options.backoff),
            "timeout": self.options.timeout,
            "available_at": self.available_at.isoformat(),
            "batch_id": self.batch_id,
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> "JobMessage":
        return cls(
            uuid=data["uuid"],
            name=data["name"],
            arguments=data["arguments"],
            options=JobOptions(
                queue=data["queue"],
                max_attempts=data["max_attempts"],
                backoff=tuple(data["backoff"]),
                timeout=data["timeout"],
            ),
            available_at=datetime.fromisoformat(data["available_at"]),
            batch_id=data.get("batch_id"),
        )


class Job(Generic[P]):
    """An async function declared as a job: its name, its default options, and a way
    to turn arguments into a `JobMessage`. Calling it runs the function itself."""

    def __init__(
        self, name: str, function: Callable[P, Awaitable[None]], options: JobOptions
    ) -> None:
        self.name = name
        self.function = function
        self.options = options
        self.signature = inspect.signature(function)
        self.__doc__ = function.__doc__

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[None]:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<job {self.name}>"

    def message(
        self,
        *,
        delay: float | timedelta | None = None,
        queue: str | None = None,
        max_attempts: int | None = None,
        backoff: Iterable[float] | None = None,
        timeout: float | None = None,
        **arguments: Any,
    ) -> JobMessage:
        """This job with `arguments`, to run after `delay`; options left out keep the
        job's defaults. A non-JSON argument, or one the function does not take, is a
        `JobArgumentsError` here, at dispatch."""
        self.check_arguments(arguments)
        try:
            text = json.dumps(arguments, allow_nan=False, separators=(",", ":"))
        except (TypeError, ValueError) as not_json:
            raise JobArgumentsError(
                f"the arguments of job {self.name} must be JSON: {not_json}"
            ) from None
        if len(text.encode()) > MAX_ARGUMENTS_BYTES:
            raise JobArgumentsError(
                f"the arguments of job {self.name} take more than {MAX_ARGUMENTS_BYTES} bytes "
                "as JSON: pass ids and let the job read the rest"
            )
        options = JobOptions(
            queue=queue if queue is not None else self.options.queue,
            max_attempts=max_attempts if max_attempts is not None else self.options.max_attempts,
            backoff=tuple(backoff) if backoff is not None else self.options.backoff,
            timeout=timeout if timeout is not None else self.options.timeout,
        )
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else (delay or 0.0)
        if not _seconds(seconds):
            raise JobArgumentsError("delay must be a non-negative number of seconds")
        return JobMessage(
            uuid=str(uuid.uuid4()),
            name=self.name,
            arguments=text,
            options=options,
            available_at=utc_now() + timedelta(seconds=seconds),
        )

    def check_arguments(self, arguments: Mapping[str, Any]) -> None:
        """Raise `JobArgumentsError` unless the function takes exactly these arguments."""
        try:
            self.signature.bind(None, **arguments)
        except TypeError as misfit:
            raise JobArgumentsError(
                f"the arguments do not fit job {self.name}{self.signature}: {misfit}"
            ) from None


def job(
    name: str,
    *,
    queue: str = DEFAULT_QUEUE,
    max_attempts: int = 3,
    backoff: Iterable[float] = (10.0, 60.0, 300.0),
    timeout: float | None = 60.0,
) -> Callable[[Callable[P, Awaitable[None]]], Job[P]]:
    """Declare an async function `(ctx: JobContext, *, ...) -> None` as the job `name`.

    The defaults retry twice, 10 s then 60 s after a failure, and stop an attempt after
    60 s; a dispatch can override each. The function must take its arguments by
    keyword only, none of them named like an option (`delay`, `queue`...).
    """
    options = JobOptions(
        queue=queue, max_attempts=max_attempts, backoff=tuple(backoff), timeout=timeout
    )
    if not name or len(name) > JOB_NAME_LENGTH:
        raise ValueError(f"a job name has 1 to {JOB_NAME_LENGTH} characters")

    def declare(function: Callable[P, Awaitable[None]]) -> Job[P]:
        if not inspect.iscoroutinefunction(function):
            raise TypeError(f"job {name}: {function.__qualname__} must be an async function")
        parameters = list(inspect.signature(function).parameters.values())
        if not parameters or parameters[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise TypeError(f"job {name}: the first parameter must be the JobContext")
        for parameter in parameters[1:]:
            if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise TypeError(f"job {name}: {parameter.name} must be keyword-only (after *)")
            if parameter.name in OPTION_NAMES:
                raise TypeError(f"job {name}: {parameter.name} is the name of a dispatch option")
        return Job(name, function, options)

    return declare


class JobRegistry:
    """The jobs a worker can run, by name; built once at the top (`app/jobs.py`) and
    handed to the worker. Two jobs with one name are refused."""

    def __init__(self, jobs: Iterable[Job[Any]]) -> None:
        self._by_name: dict[str, Job[Any]] = {}
        for declared in jobs:
            if declared.name in self._by_name:
                raise ValueError(f"two jobs are named {declared.name}")
            self._by_name[declared.name] = declared

    def get(self, name: str) -> Job[Any] | None:
        return self._by_name.get(name)

    def __iter__(self) -> Iterator[Job[Any]]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)
