"""Sign-ins and sign-outs are audited wherever they happen (login page, admin)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver

from apps.audit.services import audit_record


@receiver(user_logged_in)
def _audit_login(sender, request, user, **kwargs) -> None:
    audit_record(verb="user.logged_in", target=user, actor=user)


@receiver(user_logged_out)
def _audit_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(verb="user.logged_out", target=user, actor=user)
