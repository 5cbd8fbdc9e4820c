import django_filters

from .events import EVENT_CHOICES
from .models import Channel, Delivery, DeliveryStatus


class DeliveryFilterSet(django_filters.FilterSet):
    """Filters of the delivery list."""

    event = django_filters.ChoiceFilter(choices=EVENT_CHOICES)
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices)
    channel = django_filters.ChoiceFilter(choices=Channel.choices)
    # Bounded: a number beyond the database's integers is a 400, not an overflow in the driver.
    subscription = django_filters.NumberFilter(
        field_name="subscription_id", min_value=1, max_value=2**63 - 1, help_text="Subscription id."
    )

    class Meta:
        model = Delivery
        fields = ["event", "status", "channel", "subscription"]
