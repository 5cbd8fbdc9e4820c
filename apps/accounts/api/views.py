from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from .. import services
from ..models import ApiToken
from ..permissions import SessionOnly
from .serializers import ApiTokenCreatedSerializer, ApiTokenCreateSerializer, ApiTokenSerializer


class ApiTokenViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """The signed-in user's API tokens. Managed with a browser session only."""

    queryset = ApiToken.objects.none()  # the model, for the schema; rows come from get_queryset
    serializer_class = ApiTokenSerializer
    permission_classes = [IsAuthenticated, SessionOnly]
    ordering_fields = ["created_at", "name", "last_used_at"]
    filterset_fields = ["name"]

    def get_queryset(self):
        return ApiToken.objects.filter(user=self.request.user)

    @extend_schema(request=ApiTokenCreateSerializer, responses={201: ApiTokenCreatedSerializer})
    def create(self, request, *args, **kwargs):
        data = ApiTokenCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        expires_at = data.validated_data.get("expires_at", services.default_token_expiry())
        token, raw = services.token_create(
            user=request.user,
            name=data.validated_data["name"],
            scopes=data.validated_data["scopes"],
            expires_at=expires_at,
        )
        token.token = raw
        return Response(ApiTokenCreatedSerializer(token).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        """Revoke the token: it stops working at once."""
        services.token_revoke(token_id=self.get_object().pk, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
