"""The seed write-up's model, unchanged: a DataFrame in, a list of strings out."""

from __future__ import annotations

import pandas as pd


def my_model(data: pd.DataFrame) -> list[str]:
    # Return a list of strings aligned with inputs
    return ["A concise summary of a pangram.", "They manage features for ML pipelines."]
