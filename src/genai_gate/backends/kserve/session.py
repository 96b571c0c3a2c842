"""The run's one sign-in to the cluster: one `ApiClient`, one GitHub ID token at a time.

Every part of a run that talks to the cluster (the preflight, plan, deploy and the canary
commands) goes through the `ClusterSession` the run built, so a push run signs in once and
checks its permissions once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from genai_gate.backends.kserve.auth import ClusterAuth, Connection, cluster_auth, connect, require
from genai_gate.config import KServeSettings
from genai_gate.github import Context


class ClusterSession:
    """Built per run from the settings and the environment; signs in on first use."""

    def __init__(
        self,
        environ: Mapping[str, str],
        settings: KServeSettings,
        ctx: Context,
        base_dir: Path,
        *,
        mask: Callable[[str], None] = lambda _secret: None,
    ) -> None:
        self.environ = environ
        self.settings = settings
        self.ctx = ctx
        self.base_dir = base_dir
        self.mask = mask
        self.auth: ClusterAuth = cluster_auth(environ, ctx, settings)
        # the permission checks done: "read", "write" (deploy's verbs), "create" (its verbs
        # when the InferenceService does not exist yet)
        self.checked: set[str] = set()
        self._connection: Connection | None = None
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self.auth.available

    @property
    def unavailable_reason(self) -> str:
        return self.auth.reason

    def connection(self) -> Connection:
        """The signed-in client; the tailored AuthError when no sign-in can work."""
        require(self.auth, self.ctx)
        with self._lock:
            if self._connection is None:
                self._connection = connect(
                    self.auth, self.settings, self.environ, self.base_dir, self.mask
                )
            return self._connection
