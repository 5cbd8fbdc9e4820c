"""Reads of pull mode that pages, the API, services and plans share."""

from __future__ import annotations

from apps.environments.models import Environment, Variable

from .models import EnvironmentRepository


def repository_of(environment: Environment) -> EnvironmentRepository | None:
    """The environment's repository; None in push mode."""
    return EnvironmentRepository.objects.filter(environment=environment).first()


def secret_names(environment: Environment) -> list[str]:
    """The environment-wide secret variables of `environment`, by name: what a repository may name."""
    variables = Variable.objects.filter(environment=environment, secret=True, target__isnull=True)
    return list(variables.order_by("name").values_list("name", flat=True))
