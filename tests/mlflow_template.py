"""New sqlite tracking stores as copies of one migrated store, in MLflow's logging process.

The session fixture `migrated_sqlite_template` (tests/conftest.py) migrates one store and
names it in TESTS_MLFLOW_SQLITE_TEMPLATE. The logging process of `genai-gate eval`
(tracking_process.py) is forked from a forkserver that imports this module first (the
fixture adds it to PRELOAD), so MLflow there creates a new store by copying that one, as in
the test process, instead of running its whole chain of Alembic migrations (1-4 s a store).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

# not GENAI_GATE_*: that prefix is read as settings
TEMPLATE_ENV = "TESTS_MLFLOW_SQLITE_TEMPLATE"


def copy_sqlite(source: Path, target: Path) -> None:
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def install(template: Path) -> Any:
    """Patch MLflow's table creation to copy `template`; returns the real function."""
    from mlflow.store.db import utils as db_utils

    real = db_utils._initialize_tables

    def initialize(engine: Any) -> None:
        database = engine.url.database
        if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            real(engine)
        elif template.exists():
            copy_sqlite(template, Path(database))
        else:
            real(engine)

    db_utils._initialize_tables = initialize
    return real


if os.environ.get(TEMPLATE_ENV):
    install(Path(os.environ[TEMPLATE_ENV]))
