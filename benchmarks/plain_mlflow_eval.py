"""The "plain MLflow" side of eval_vs_mlflow.py: `mlflow.genai.evaluate` with genai-gate's scorers.

Run as its own process by eval_vs_mlflow.py (it can also be run by hand):

    .venv/bin/python benchmarks/plain_mlflow_eval.py --data rows.jsonl --model-dir DIR \
        --tracking-uri sqlite:///DIR/mlflow.db --out plain.json

It loads the JSONL rows as they are (MLflow's shape), imports `predict` from the generated
model module, builds the scorers with `genai_gate.scoring.builtin.make_builtin` (the same
objects genai-gate runs), calls `mlflow.genai.evaluate`, then counts the traces and
assessments the tracking store kept for the run. Everything it learns goes to --out as JSON.
Worker settings come from the environment (MLFLOW_GENAI_EVAL_MAX_WORKERS), set by the caller.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

T0 = time.perf_counter()


def _count_traces(client: Any, experiment_id: str, run_id: str) -> dict[str, int]:
    """Traces logged for the run, and the scorer results (Feedback) attached to them."""
    from mlflow.entities import Feedback

    counts = {"traces": 0, "feedback": 0, "feedback_errors": 0, "other_assessments": 0}
    token: str | None = None
    while True:
        page = client.search_traces(
            locations=[experiment_id],
            run_id=run_id,
            max_results=500,
            page_token=token,
            include_spans=False,
        )
        for trace in page:
            counts["traces"] += 1
            for a in trace.info.assessments or []:
                if isinstance(a, Feedback):
                    counts["feedback"] += 1
                    counts["feedback_errors"] += a.error is not None
                else:  # the row's expectations are stored as Expectation assessments
                    counts["other_assessments"] += 1
        token = page.token
        if not token:
            return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="JSONL rows, MLflow shape")
    parser.add_argument("--model-dir", type=Path, required=True, help="folder of the module")
    parser.add_argument("--module", default="bench_model", help="module that defines predict")
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", default="plain-mlflow-bench")
    parser.add_argument("--scorers", default="exact_match,token_f1,rouge_l,latency,response_length")
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON result")
    args = parser.parse_args(argv)

    lines = args.data.read_text(encoding="utf-8").splitlines()
    rows: list[dict[str, Any]] = [json.loads(line) for line in lines if line.strip()]
    if args.limit is not None:
        rows = rows[: args.limit]

    sys.path.insert(0, str(args.model_dir.resolve()))
    predict = importlib.import_module(args.module).predict

    t_import = time.perf_counter()
    import mlflow
    import mlflow.genai
    from mlflow import MlflowClient

    from genai_gate.scoring.builtin import BUILTINS, make_builtin

    imported = time.perf_counter() - t_import

    names = [n.strip() for n in args.scorers.split(",") if n.strip()]
    # genai-gate's default aggregations per built-in; eval_vs_mlflow.py only sets thresholds
    # on these, so genai-gate computes exactly the same aggregations
    scorers = [make_builtin(n, BUILTINS[n][1]).get() for n in names]

    mlflow.set_tracking_uri(args.tracking_uri)
    client = MlflowClient(args.tracking_uri)
    exp = client.get_experiment_by_name(args.experiment)
    if exp is None:
        location = (args.model_dir.resolve() / "mlartifacts").as_uri()
        exp_id = client.create_experiment(args.experiment, artifact_location=location)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)

    t_eval = time.perf_counter()
    result = mlflow.genai.evaluate(data=rows, predict_fn=predict, scorers=scorers)
    evaluated = time.perf_counter() - t_eval

    t_count = time.perf_counter()
    counts = _count_traces(client, exp_id, result.run_id)
    counted = time.perf_counter() - t_count

    doc = {
        "rows": len(rows),
        "run_id": result.run_id,
        "experiment_id": exp_id,
        "metrics": {k: float(v) for k, v in result.metrics.items()},
        **counts,
        "expected_feedback": len(rows) * len(scorers),
        "seconds": {
            "import": round(imported, 3),
            "evaluate": round(evaluated, 3),
            "count_traces": round(counted, 3),
            "in_process_total": round(time.perf_counter() - T0, 3),
        },
    }
    args.out.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
