"""The vendored KServe InferenceService CRD, the facts read from KServe, and its validator."""
