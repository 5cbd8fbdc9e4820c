from django.db import models


class Hit(models.Model):
    """One row per floor request: the minimal insert a write endpoint of this stack can do."""

    name = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"hit {self.pk}: {self.name}"
