"""The events people and systems can be notified of. `notify()` refuses any other name.

The keys are stable (subscriptions store them, webhook receivers switch on them); the
values are what the pages show next to each checkbox.
"""

EVENTS: dict[str, str] = {
    "approval.requested": "A deployment waits for approval",
    "approval.decided": "A deployment was approved or rejected",
    "deployment.failed": "A deployment failed",
    "deployment.succeeded_production": "A deployment to production succeeded",
    "booking.changed": "A booking was requested, approved or cancelled",
    "freeze.changed": "A freeze window or lock was set or lifted",
    "drift.detected": "A target runs something other than what was deployed",
    "policy.overridden": "Policy rules were overridden for a deployment",
}

EVENT_CHOICES = list(EVENTS.items())
