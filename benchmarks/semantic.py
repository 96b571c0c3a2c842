"""semantic_similarity's cost: the embedding model's load, rows encoded per second, and
what the scorer adds to a whole `genai-gate eval`.

    .venv/bin/python benchmarks/semantic.py                  # 500 rows, encoding only
    .venv/bin/python benchmarks/semantic.py --rows 500 --eval

A row is two texts, the answer and its reference (benchmarks/synthetic.py's rows, the answer
reworded). Prints the model load (first call, in this process), the batched encoding of all
the rows' texts as `prepare` does it (best of --repeat), and one text per call over the first
100 texts, which is what the scorer would cost without `prepare`. --eval also runs
`genai-gate eval` on the same rows with [exact_match, token_f1] and with semantic_similarity
added, each as a fresh process, and prints its wall time and scoring phase (results.json's
`seconds.score`, which includes the model load).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import make_rows

GENAI_GATE = Path(sys.executable).parent / "genai-gate"
MODEL = """
def predict(question):
    # "What is in the red lamp number 3?" -> a reworded answer
    words = question.rstrip("?").split()
    return f"Inside the {words[4]} {words[5]} #{words[7]} there are some marbles"
"""


def texts_of(rows: int) -> list[str]:
    texts = []
    for row in make_rows(rows):
        words = row["inputs"]["question"].rstrip("?").split()
        texts.append(f"Inside the {words[4]} {words[5]} #{words[7]} there are some marbles")
        texts.append(row["expectations"]["expected_response"])
    return texts


def time_eval(folder: Path, scorers: str) -> tuple[float, float]:
    """Wall time of the process, and its scoring phase as results.json reports it."""
    (folder / "genai-gate.yml").write_text(
        f"data: data.jsonl\nmodel: python:bench_model:predict\nscorers: [{scorers}]\ncache: false\n"
    )
    t0 = time.perf_counter()
    done = subprocess.run(
        [
            str(GENAI_GATE),
            "eval",
            "-c",
            str(folder / "genai-gate.yml"),
            "-q",
            "--out",
            str(folder / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        print(done.stdout + done.stderr, file=sys.stderr)
        raise SystemExit(2)
    doc = json.loads((folder / "out" / "results.json").read_text())
    return wall, float(doc["seconds"]["score"])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time semantic_similarity's embedding model.")
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="batched runs; the best counts")
    parser.add_argument("--eval", action="store_true", help="also time genai-gate eval")
    args = parser.parse_args(argv)

    from genai_gate.scoring.semantic import Embeddings

    t0 = time.perf_counter()
    model = Embeddings.model()
    print(f"model load (tokenizer + safetensors -> numpy): {time.perf_counter() - t0:.2f} s")

    texts = texts_of(args.rows)
    walls = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        model.encode(texts)
        walls.append(time.perf_counter() - t0)
    best = min(walls)
    print(
        f"batched: {args.rows} rows ({len(texts)} texts) in {best:.2f} s (best of {args.repeat}; "
        f"max {max(walls):.2f} s): {args.rows / best:.0f} rows/s, {len(texts) / best:.0f} texts/s"
    )
    single = texts[:100]
    t0 = time.perf_counter()
    for text in single:
        model.encode([text])
    wall = time.perf_counter() - t0
    print(
        f"one text per call: {len(single)} texts in {wall:.2f} s: {len(single) / wall:.0f} texts/s"
    )

    if args.eval:
        with tempfile.TemporaryDirectory(prefix="genai-gate-semantic-") as tmp:
            folder = Path(tmp)
            (folder / "bench_model.py").write_text(MODEL)
            (folder / "data.jsonl").write_text(
                "".join(json.dumps(r) + "\n" for r in make_rows(args.rows))
            )
            for scorers in ("exact_match, token_f1", "exact_match, token_f1, semantic_similarity"):
                wall, score = time_eval(folder, scorers)
                print(
                    f"genai-gate eval, {args.rows} rows, [{scorers}]: {wall:.2f} s wall, "
                    f"scoring phase {score:.2f} s"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
