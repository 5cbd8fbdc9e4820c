"""Sign-ins and sign-outs are audited wherever they happen (login page, admin)."""

from django.contrib.auth.models import update_last_login
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.dispatch import receiver
from django.utils import timezone

from apps.audit.services import audit_record

# Django's receiver saves the whole user for last_login, which would add an empty history row per
# sign-in; last_login is bookkeeping (the audit event records the sign-in), so a plain UPDATE.
user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")


@receiver(user_logged_in)
def _audit_login(sender, request, user, **kwargs) -> None:
    user.last_login = timezone.now()
    type(user).objects.filter(pk=user.pk).update(last_login=user.last_login)
    audit_record(verb="user.logged_in", target=user, actor=user)


@receiver(user_logged_out)
def _audit_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(verb="user.logged_out", target=user, actor=user)
