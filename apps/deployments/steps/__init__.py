"""Step kinds, registered by name: importing this package registers every built-in kind."""

from . import (  # noqa: F401
    analysis,
    gitops_commit,
    health_check,
    http,
    manual_intervention,
    release_dir,
    shell,
    switch_traffic,
    wait,
)
from .base import REGISTRY, StepContext, StepKind, StepResult, StepStatus, get, register

__all__ = ["REGISTRY", "StepContext", "StepKind", "StepResult", "StepStatus", "get", "register"]
