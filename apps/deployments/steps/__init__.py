"""Step kinds, registered by name: importing this package registers every built-in kind."""

from . import analysis, health_check, http, manual_intervention, release_dir, shell, switch_traffic, wait  # noqa: F401
from .base import REGISTRY, StepContext, StepKind, StepResult, StepStatus, get, register

__all__ = ["REGISTRY", "StepContext", "StepKind", "StepResult", "StepStatus", "get", "register"]
