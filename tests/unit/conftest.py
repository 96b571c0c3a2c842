"""The unit layer stays pure: a test here that starts a subprocess, opens a socket of its own
(a server, or a connection), or opens an MLflow tracking store fails, whatever the code under
test does with the error.

Tests that need any of these belong in tests/cli (the CLI end to end, MLflow store in a temp
folder) or tests/integration (real local servers and subprocesses); see tests/conftest.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import settings

# Property tests here are derandomized, so every run (and every mutant mutmut tries) sees the
# same examples: a failure reproduces, and the mutation score does not drift. No example
# database (nothing is written into the checkout) and no deadline (the machine is shared).
settings.register_profile(
    "unit", derandomize=True, database=None, deadline=None, max_examples=60, print_blob=True
)
settings.load_profile("unit")

# what a unit test did that it must not, in the phase (setup, call, teardown) being run
_violations: list[str] = []


def _refuse(what: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        message = f"a unit test must not {what} (tests/unit/conftest.py)"
        _violations.append(message)
        raise RuntimeError(message)

    return refused


def _inet(sock: socket.socket) -> bool:
    return sock.family in (socket.AF_INET, socket.AF_INET6)


def _refuse_inet(what: str, original: Callable[..., Any]) -> Callable[..., Any]:
    refused = _refuse(what)

    def guarded(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        if _inet(self):
            return refused()
        return original(self, *args, **kwargs)

    return guarded


def _mlflow_stores() -> list[type]:
    """MLflow's local tracking and registry store classes (a sqlite or file store)."""
    classes: list[type] = []
    try:
        from mlflow.store.model_registry.sqlalchemy_store import (
            SqlAlchemyStore as RegistrySqlStore,
        )
        from mlflow.store.tracking.file_store import FileStore
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    except ImportError:  # pragma: no cover - a layout change in MLflow; the guard does less
        return classes
    classes += [SqlAlchemyStore, FileStore, RegistrySqlStore]
    return classes


@contextmanager
def _guarded() -> Iterator[None]:
    patches: list[tuple[Any, str, Any]] = [
        (subprocess.Popen, "__init__", _refuse("start a subprocess")),
        (os, "fork", _refuse("fork")),
        (os, "posix_spawn", _refuse("spawn a process")),
        (os, "posix_spawnp", _refuse("spawn a process")),
        (os, "system", _refuse("run a shell command")),
        (socket.socket, "bind", _refuse_inet("bind a socket (start a server)", socket.socket.bind)),
        (socket.socket, "listen", _refuse("listen on a socket (start a server)")),
        (
            socket.socket,
            "connect",
            _refuse_inet("open a network connection", socket.socket.connect),
        ),
        (
            socket.socket,
            "connect_ex",
            _refuse_inet("open a network connection", socket.socket.connect_ex),
        ),
    ]
    for store in _mlflow_stores():
        patches.append((store, "__init__", _refuse(f"open an MLflow store ({store.__name__})")))
    # socket.socket inherits bind, listen and connect from _socket.socket: for those, the
    # patch is an attribute of its own, deleted afterwards
    missing = object()
    saved = [(owner, name, owner.__dict__.get(name, missing)) for owner, name, _ in patches]
    try:
        for owner, name, replacement in patches:
            setattr(owner, name, replacement)
        yield
    finally:
        for owner, name, original in saved:
            if original is missing:
                delattr(owner, name)
            else:
                setattr(owner, name, original)


def _check(item: pytest.Item, phase: str) -> None:
    if _violations:
        found = sorted(set(_violations))
        _violations.clear()
        pytest.fail(
            f"{item.nodeid} ({phase}): " + "; ".join(found) + ". Move it to tests/cli or "
            "tests/integration.",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _violations.clear()
    with _guarded():
        result = yield
    _check(item, "setup")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _violations.clear()
    with _guarded():
        result = yield
    _check(item, "call")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if nextitem is None:
        # the session ends here: this teardown also finalizes other folders' session-scoped
        # fixtures, which may stop servers or unmount an image
        return (yield)
    _violations.clear()
    with _guarded():
        result = yield
    _check(item, "teardown")
    return result
