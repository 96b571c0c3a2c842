"""The config: `model` (what the keys are) and `load` (where they come from)."""

from genai_gate.config.load import (
    DEFAULT_CONFIG,
    ENV_PREFIX,
    RESERVED_ENV,
    LoadedConfig,
    coerce_text,
    env_settings,
    json_schema,
    load_config,
)
from genai_gate.config.model import (
    CanarySettings,
    Columns,
    Config,
    DataSettings,
    DeploySettings,
    JudgeSettings,
    ModelSettings,
    MonitorSettings,
    RemoteSettings,
    ScoringSettings,
    ThresholdRule,
    TrackingSettings,
)

__all__ = [
    "DEFAULT_CONFIG",
    "ENV_PREFIX",
    "RESERVED_ENV",
    "CanarySettings",
    "Columns",
    "Config",
    "DataSettings",
    "DeploySettings",
    "JudgeSettings",
    "LoadedConfig",
    "ModelSettings",
    "MonitorSettings",
    "RemoteSettings",
    "ScoringSettings",
    "ThresholdRule",
    "TrackingSettings",
    "coerce_text",
    "env_settings",
    "json_schema",
    "load_config",
]
