"""MLflow model URIs (`models:/name/3`, `models:/name@alias`, `runs:/id/path`) as pyfunc."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genai_gate.errors import AuthError, ModelLoadError, ServiceError
from genai_gate.results import EvalRow, TargetIdentity
from genai_gate.targets.python_callable import answers

PREFIXES = ("models:/", "runs:/")


def _resolve_registry(uri: str) -> str | None:
    """models:/name@alias -> models:/name/<version>, so the evidence names a fixed version."""
    from mlflow import MlflowClient

    body = uri.removeprefix("models:/")
    if "@" in body:
        name, alias = body.split("@", 1)
        mv = MlflowClient().get_model_version_by_alias(name, alias)
        return f"models:/{name}/{mv.version}"
    return None


class MlflowModelTarget:
    def __init__(self, uri: str) -> None:
        import mlflow.pyfunc
        from mlflow.exceptions import MlflowException

        try:
            resolved = _resolve_registry(uri) if uri.startswith("models:/") else None
            self.model: Any = mlflow.pyfunc.load_model(resolved or uri)
        except MlflowException as exc:
            code = getattr(exc, "error_code", "")
            if code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
                raise AuthError(
                    f"the tracking server refused access to {uri}: {exc.message}",
                    fix="Give genai-gate credentials for the registry, e.g. "
                    "MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD.",
                ) from exc
            if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                raise ModelLoadError(
                    f"cannot load the model {uri}: {exc.message}",
                    fix="Check the name, version or alias in the registry that the tracking "
                    "URI points at:\n  model: models:/my-model/3\n  tracking-uri: http://...",
                ) from exc
            raise ServiceError(f"loading the model {uri} failed: {exc.message}") from exc
        except ImportError as exc:
            raise ModelLoadError(
                f"loading the model {uri} needs a package that is not installed: {exc}",
                fix="Install the model's requirements (its requirements.txt in the model "
                "artifacts) into the environment that runs genai-gate.",
            ) from exc
        except OSError as exc:
            raise ModelLoadError(f"cannot load the model {uri}: {exc}") from exc
        meta = self.model.metadata
        self.identity = TargetIdentity(
            uri=uri,
            kind="mlflow",
            resolved=resolved,
            details={
                "model_uuid": str(getattr(meta, "model_uuid", "") or ""),
                "run_id": str(getattr(meta, "run_id", "") or ""),
            },
        )

    batched = True
    remote = False

    def predict(self, row: EvalRow) -> Any:
        return self.predict_batch([row])[0]

    def predict_batch(self, rows: Sequence[EvalRow]) -> list[Any]:
        import pandas as pd

        return answers(self.model.predict(pd.DataFrame([r.inputs for r in rows])), len(rows))
