from celery import shared_task


@shared_task(name="releases.deploy_first_stage", queue="celery")
def deploy_first_stage(release_id: int, requested_by_id: int | None) -> int:
    """CD: deploy a release a trigger created to the first stage of its lifecycle. Returns how many
    deployments were made."""
    from .cd import deploy_first_stage as run

    return run(release_id, requested_by_id)
