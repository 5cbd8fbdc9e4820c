"""Action context for Celery tasks.

A task runs with channel `worker`, or `scheduler` when Celery beat sent it (beat entries
carry the `releasehub_channel` header). When a request or command enqueues a task, the
acting user travels with the message so work done on their behalf stays attributed.
"""

from celery.signals import before_task_publish, task_postrun, task_prerun

from .context import ActionContext, Channel, current, pop, push

CHANNEL_HEADER = "releasehub_channel"
ACTOR_HEADER = "releasehub_actor"
_tokens: dict[str, object] = {}


@before_task_publish.connect
def _attach_actor(headers=None, **kwargs) -> None:
    user = current().user
    if headers is not None and user is not None:
        headers.setdefault(ACTOR_HEADER, user.pk)


def _header(request, name):
    value = getattr(request, name, None)
    if value is None:
        value = (getattr(request, "headers", None) or {}).get(name)
    return value


@task_prerun.connect
def _enter_task_context(task_id=None, task=None, **kwargs) -> None:
    from apps.accounts.models import User

    channel = _header(task.request, CHANNEL_HEADER)
    if channel not in (Channel.WORKER, Channel.SCHEDULER):
        channel = Channel.WORKER
    actor_id = _header(task.request, ACTOR_HEADER)
    user = User.objects.filter(pk=actor_id, is_active=True).first() if actor_id else None
    _tokens[task_id] = push(ActionContext(channel=channel, user_override=user))


@task_postrun.connect
def _leave_task_context(task_id=None, **kwargs) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        pop(token)
