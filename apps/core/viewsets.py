"""The shape every write API shares: input validated by a serializer, the write done by a service."""

from __future__ import annotations

from django.db.models import Model
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from .idempotency import idempotent


class ServiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """List, retrieve, and POST / PATCH / DELETE that call services (never serializer.save()).

    Subclasses implement `create_object`, `update_object` and `delete_object` with the app's
    services, and may name the serializers that validate input (`create_serializer_class`,
    `update_serializer_class`; `serializer_class` by default, which also shapes every
    response). apps.core.schema.AutoSchema documents the input serializers. POST honours
    Idempotency-Key.
    """

    create_serializer_class: type[serializers.Serializer] | None = None
    update_serializer_class: type[serializers.Serializer] | None = None
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create_object(self, data: dict) -> Model:
        raise NotImplementedError

    def update_object(self, obj: Model, data: dict) -> Model:
        raise NotImplementedError

    def delete_object(self, obj: Model) -> None:
        raise NotImplementedError

    def input_serializer(self, serializer_class, **kwargs) -> serializers.Serializer:
        """The input serializer, validated; override to pass it context (e.g. a parent object)."""
        serializer = serializer_class(**kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer

    def output(self, obj: Model) -> dict:
        return self.get_serializer(obj).data

    @idempotent
    def create(self, request, *args, **kwargs):
        data = self.input_serializer(self.create_serializer_class or self.serializer_class, data=request.data)
        return Response(self.output(self.create_object(data.validated_data)), status=status.HTTP_201_CREATED)

    def partial_update(self, request, *args, **kwargs):
        obj = self.get_object()
        serializer_class = self.update_serializer_class or self.serializer_class
        data = self.input_serializer(serializer_class, instance=obj, data=request.data, partial=True)
        return Response(self.output(self.update_object(obj, data.validated_data)))

    def destroy(self, request, *args, **kwargs):
        self.delete_object(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
