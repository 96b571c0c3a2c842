"""Databricks Model Serving: sign-in, the endpoint as data, apply/wait/restore, and the
inference-table reader."""
