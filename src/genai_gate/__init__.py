"""genai-gate: gate, deploy and watch GenAI models the way code is shipped.

This module stays import-light on purpose: `genai-gate --version` must not pay for mlflow.
"""

__version__ = "0.1.0"
