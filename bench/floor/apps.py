from django.apps import AppConfig


class FloorConfig(AppConfig):
    """Bench-only: the cheapest write our stack can serve (installed by bench.floor.settings only)."""

    name = "bench.floor"
    label = "bench_floor"
    default_auto_field = "django.db.models.BigAutoField"
