"""Resolve `python:module:function` references relative to the config file's folder."""

from __future__ import annotations

import importlib
import sys
import threading
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from genai_gate.errors import DeadlineError, ModelLoadError

PREFIX = "python:"


def split_ref(ref: str) -> tuple[str, str]:
    body = ref.removeprefix(PREFIX)
    module, sep, attr = body.partition(":")
    if not sep or not module or not attr:
        raise ModelLoadError(
            f"{ref!r} is not a python reference",
            fix="Write python:<module>:<function>, with the module relative to the config "
            "file's folder:\n  model: python:app.model:predict   # ./app/model.py, def predict",
        )
    return module, attr


def _evict_foreign(module_name: str, base_dir: Path) -> None:
    """Forget an already-imported module of that name that lives outside base_dir.

    Two configs in one process (tests, or a monorepo's several gates) may both say
    `python:app.model:predict` and mean different files.
    """
    top = module_name.split(".", 1)[0]
    cached = sys.modules.get(top)
    if cached is None:
        return
    locations = [getattr(cached, "__file__", None), *list(getattr(cached, "__path__", []))]
    root = base_dir.resolve()
    if any(loc and Path(loc).resolve().is_relative_to(root) for loc in locations):
        return
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def _import_within(module_name: str, deadline: float | None, ref: str, what: str) -> ModuleType:
    """Import in a daemon thread, so that a module that blocks at import (a network call,
    input(), a lock) costs `deadline` seconds and an error, not the whole job."""
    box: list[ModuleType | BaseException] = []

    def target() -> None:
        try:
            box.append(importlib.import_module(module_name))
        except BaseException as exc:  # handed to the caller's thread below
            box.append(exc)

    worker = threading.Thread(target=target, name="genai-gate-import", daemon=True)
    worker.start()
    worker.join(deadline)
    if not box:
        raise DeadlineError(
            f"importing {module_name!r} for the {what} {ref!r} did not finish in {deadline:g} s",
            fix="The module blocks at import (a network call, input(), a lock, a long model "
            "load). Move slow work into the function, or allow more time:\n  timeout: 600",
        )
    found = box[0]
    if isinstance(found, BaseException):
        raise found
    return found


# a custom scorer's import, which has no timeout of its own; the model's import takes `timeout`
IMPORT_DEADLINE = 600.0


def load_object(
    ref: str, base_dir: Path, *, what: str, deadline: float | None = IMPORT_DEADLINE
) -> Any:
    module_name, attr = split_ref(ref)
    root = str(base_dir)
    # The config's folder wins over site-packages, as `python -m` from that folder would.
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    if (base_dir / module_name.split(".", 1)[0]).exists() or (
        base_dir / (module_name.split(".", 1)[0] + ".py")
    ).exists():
        _evict_foreign(module_name, base_dir)
    importlib.invalidate_caches()
    try:
        module = _import_within(module_name, deadline, ref, what)
    except DeadlineError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ModelLoadError(
                f"cannot import {module_name!r} for the {what} {ref!r}: no such module "
                f"under {base_dir}",
                fix=f"Check the spelling, and that {module_name.replace('.', '/')}.py exists "
                "next to the config file.",
            ) from exc
        raise ModelLoadError(
            f"importing {module_name!r} for the {what} {ref!r} failed: {exc}",
            fix=f"Install the missing package ({exc.name}) in the environment that runs "
            "genai-gate.",
        ) from exc
    except (Exception, SystemExit) as exc:
        # a module that calls sys.exit() at import (a missing API key, say) is a bad model
        # reference, not a verdict
        tail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        raise ModelLoadError(
            f"importing {module_name!r} for the {what} {ref!r} raised: {tail}",
            fix=f"Run `python -c 'import {module_name}'` in {base_dir} to see the full error.",
        ) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        public = sorted(n for n in vars(module) if not n.startswith("_"))[:12]
        raise ModelLoadError(
            f"{module_name!r} has no attribute {attr!r} (the {what} {ref!r})",
            fix="It defines: " + (", ".join(public) or "nothing public"),
        ) from None
