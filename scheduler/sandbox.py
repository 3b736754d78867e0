"""Decode untrusted input in worker processes, under a memory and a time cap.

A 70-byte OpenQASM program can declare ten million qubits, and a few kilobytes
of compressed QPY can expand to gigabytes. Such input is decoded in a
`pebble.ProcessPool` whose workers fork from a forkserver that has Qiskit
loaded already (a task costs well under a millisecond of overhead), each under
`RLIMIT_AS` (its address space at start plus the cap). A task that runs out of
memory fails with `MemoryError` inside its worker; one that runs too long is
killed with its worker, which the pool replaces. Either way the web process's
own memory and time stay untouched, and the caller gets `LimitExceeded`.

Pure: no Django. Callers choose the caps.
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import resource
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from pebble import ProcessExpired, ProcessPool

T = TypeVar("T")
TASKS_PER_WORKER = 500  # workers are replaced now and then, so a fragmented heap does not stay


class LimitExceeded(Exception):
    """The input needed more memory or time than the cap allows, or broke its decoder."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Failed(Exception):
    """The task raised an error that could not cross the process boundary as itself."""


class Sandbox:
    """A pool of capped worker processes; `run(func, ...)` calls `func` in one of them.

    `func` must be importable by name (a module-level function), its arguments and
    its result picklable. An exception it raises is re-raised here when it can be
    pickled, else as `Failed` with its one-line description.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        memory_mb: int = 512,
        seconds: float = 10,
        what: str = "decoding",
        preload: tuple[str, ...] = ("scheduler.circuits",),
        nice: int = 0,
        headroom_mb: int = 0,
    ) -> None:
        self.workers = workers
        self.nice = nice  # workers run at this lower priority, so serving keeps the CPU
        self.what = what  # names the work in errors: "decoding took longer than 10 s"
        self.preload = list(preload)  # imported once by the forkserver, shared by workers
        self.memory_mb = memory_mb  # what the caps name in errors
        self.headroom_mb = headroom_mb  # allowed on top, for threads' stacks and the like
        self.seconds = seconds
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()

    def start(self, *, wait: bool = False) -> None:
        """Start the workers now (loading what the forkserver preloads takes seconds), so a
        first call's time cap is not spent on it."""
        futures = [self.submit(os.getpid) for _ in range(self.workers)]
        if wait:
            for future in futures:
                self.outcome(future)

    def run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self.outcome(self.submit(func, *args, **kwargs))

    def submit(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Start `func` in a worker; `outcome(future)` waits for it. Cancelling the
        future kills the worker (the pool starts another)."""
        return self.schedule(func, args, kwargs)

    def schedule(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        seconds: float | None = None,
    ) -> Future[Any]:
        """`submit`, with a time cap of its own for this call (`seconds`, at most the pool's)."""
        cap = self.seconds if seconds is None else min(seconds, self.seconds)
        future = self._get_pool().schedule(_call, args=(func, args, kwargs or {}), timeout=cap)
        future.cap_seconds = cap  # type: ignore[attr-defined]  # named in the error
        return future

    def outcome(self, future: Future[Any], timeout: float | None = None) -> Any:
        """What `func` returned, or its exception; `TimeoutError` if `timeout` passes first."""
        try:
            outcome, value = future.result(timeout)
        except FutureTimeout:
            if not future.done():
                raise TimeoutError from None
            cap = getattr(future, "cap_seconds", self.seconds)
            raise LimitExceeded(f"{self.what} took longer than {cap:g} s") from None
        except ProcessExpired as error:  # killed by the kernel, or crashed in native code
            raise LimitExceeded(f"{self.what} stopped ({_exit_reason(error)})") from None
        if outcome == "ok":
            return value
        if outcome == "memory":
            raise LimitExceeded(f"{self.what} needed more than {self.memory_mb} MB of memory")
        if outcome == "raised":
            raise value
        raise Failed(value)

    def _get_pool(self) -> ProcessPool:
        with self._lock:
            if self._pool is None or not self._pool.active:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(self.preload)
                self._pool = ProcessPool(
                    max_workers=self.workers,
                    max_tasks=TASKS_PER_WORKER,
                    initializer=_start_worker,
                    initargs=(self.memory_mb + self.headroom_mb, self.nice),
                    context=context,
                )
                atexit.register(self.close)
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.stop()
                # pebble kills a worker that ignores SIGTERM 3 s later; never hang an exit.
                with contextlib.suppress(TimeoutError):
                    self._pool.join(timeout=10)
                self._pool = None


def _start_worker(memory_mb: int, nice: int) -> None:
    """Worker start-up: cap its memory, lower its priority, and die at once when stopped.

    pebble stops a worker with SIGTERM, then SIGKILL 3 s later. Its own SIGTERM handler
    runs only when the interpreter gets control back, which native code such as Aer's
    never gives it; a worker holds nothing to clean up, so the default action is right.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _cap_memory(memory_mb)
    if nice:
        os.nice(nice)


def _cap_memory(memory_mb: int) -> None:
    """Allow the address space the process has now plus `memory_mb`."""
    page = os.sysconf("SC_PAGE_SIZE")
    try:
        with open("/proc/self/statm") as statm:
            size = int(statm.read().split()[0]) * page
    except OSError:  # not Linux: no baseline to add to
        size = 0
    limit = size + memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _call(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[str, Any]:
    """Run in a worker: the result, or what went wrong in a form that pickles."""
    import pickle

    try:
        return "ok", func(*args, **kwargs)
    except MemoryError:
        return "memory", None
    except BaseException as error:  # noqa: BLE001 - native panics derive from BaseException
        if isinstance(error, KeyboardInterrupt | SystemExit):
            raise
        if not isinstance(error, Exception):  # a panic in native code: only its text crosses
            return "failed", _describe(error)
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:  # noqa: BLE001 - any unpicklable error crosses as text
            return "failed", _describe(error)
        return "raised", error


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())[:300]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _exit_reason(error: ProcessExpired) -> str:
    code = error.exitcode
    if code is not None and code < 0:
        return f"signal {-code}"
    return f"exit status {code}"
