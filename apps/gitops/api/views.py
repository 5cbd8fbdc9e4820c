from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, views
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from apps.core.errors import NotFound
from apps.environments.selectors import environments_visible_to

from .. import services
from ..models import EnvironmentRepository
from ..selectors import repository_of
from .serializers import RepositorySerializer, WebhookAnswerSerializer


class RepositoryView(views.APIView):
    """The repository of a pull-mode environment (docs/gitops.md). PUT sets it (the environment is in pull mode
    from then on), PATCH changes some fields, DELETE takes the environment back to push mode. Writing needs
    `manage` on the environment."""

    write_scope = "config:write"
    serializer_class = RepositorySerializer

    def _environment(self, slug: str):
        return get_object_or_404(environments_visible_to(self.request.user), slug=slug)

    def _repository(self, environment) -> EnvironmentRepository:
        repository = repository_of(environment)
        if repository is None:
            raise NotFound(f"{environment.name} has no repository: it is in push mode.")
        return repository

    @extend_schema(responses=RepositorySerializer)
    def get(self, request, environment_slug: str):
        return Response(RepositorySerializer(self._repository(self._environment(environment_slug))).data)

    @extend_schema(request=RepositorySerializer, responses=RepositorySerializer)
    def put(self, request, environment_slug: str):
        environment = self._environment(environment_slug)
        data = RepositorySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        repository = services.repository_set(actor=request.user, environment=environment, **data.validated_data)
        return Response(RepositorySerializer(repository).data)

    @extend_schema(request=RepositorySerializer, responses=RepositorySerializer)
    def patch(self, request, environment_slug: str):
        environment = self._environment(environment_slug)
        current = self._repository(environment)
        data = RepositorySerializer(current, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        repository = services.repository_set(actor=request.user, environment=environment, **data.validated_data)
        return Response(RepositorySerializer(repository).data)

    @extend_schema(responses={204: None})
    def delete(self, request, environment_slug: str):
        environment = self._environment(environment_slug)
        self._repository(environment)
        services.repository_delete(actor=request.user, environment=environment)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookView(views.APIView):
    """Merge and sync reports from git providers (github, gitlab, gitea: pull request events) and GitOps
    operators (generic: Flux generic-hmac, Argo CD Notifications). Authenticated by the provider's signature
    with the webhook secret of a repository, not by a token: a delivery no repository's secret signed is 401
    and audited."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={202: WebhookAnswerSerializer, 401: OpenApiResponse(description="Bad or missing signature.")},
    )
    def post(self, request, provider: str):
        answer = services.webhook_receive(provider=provider, headers=request.headers, body=request.body)
        return Response(WebhookAnswerSerializer(answer).data, status=status.HTTP_202_ACCEPTED)
