"""The synthetic Q&A rows both eval benchmarks use (MLflow's shape)."""

from __future__ import annotations

from typing import Any

COLOURS = ("red", "green", "blue", "amber", "violet", "grey", "white", "black")
THINGS = ("lamp", "crate", "ticket", "bolt", "folder", "kettle", "badge", "drum", "valve")


def make_rows(n: int) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        colour, thing = COLOURS[i % len(COLOURS)], THINGS[(i // 3) % len(THINGS)]
        rows.append(
            {
                "inputs": {"question": f"What is in the {colour} {thing} number {i}?"},
                "expectations": {
                    "expected_response": f"The {colour} {thing} number {i} holds {i % 17} marbles"
                },
            }
        )
    return rows
