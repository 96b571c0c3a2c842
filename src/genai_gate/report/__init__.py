"""Pure renderers: results.json, summary.md, per-row records and the evidence record."""
