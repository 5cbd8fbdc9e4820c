from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, views
from rest_framework.response import Response

from apps.core.errors import PermissionDenied
from apps.core.parsers import JSONParser

from ..export import config_export
from ..services import config_import
from .parsers import TextYAMLParser, YAMLParser
from .serializers import ConfigDocumentSerializer, ImportSerializer, PlanSerializer

_flag = serializers.BooleanField()


class ConfigExportView(views.APIView):
    """The configuration you may view as YAML (docs/configuration-as-code.md). Secrets are left out; superusers may
    ask for their ciphertexts with `include_secrets=true`."""

    @extend_schema(
        parameters=[OpenApiParameter("include_secrets", OpenApiTypes.BOOL, default=False)],
        responses={
            (200, "application/yaml"): OpenApiResponse(ConfigDocumentSerializer, description="The YAML document.")
        },
    )
    def get(self, request):
        include_secrets = _flag.to_internal_value(request.query_params.get("include_secrets", "false"))
        if include_secrets and not request.user.is_superuser:
            raise PermissionDenied("Only superusers may export secrets, even encrypted.")
        text = config_export(user=request.user, include_secrets=include_secrets)
        response = HttpResponse(text, content_type="application/yaml; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="releasehub-config.yaml"'
        return response


class ConfigImportView(views.APIView):
    """Compare a configuration document with what exists and, unless it is a dry run (the default), make the
    changes through the usual services and permissions. Nothing is deleted. Send the YAML itself (`dry_run` in the
    query) or JSON `{"text": ..., "dry_run": ...}`."""

    parser_classes = [JSONParser, YAMLParser, TextYAMLParser]
    write_scope = "config:write"

    @extend_schema(
        parameters=[
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, default=True, description="For YAML bodies only."),
        ],
        request={
            "application/json": ImportSerializer,
            "application/yaml": OpenApiTypes.STR,
            "text/yaml": OpenApiTypes.STR,
        },
        responses=PlanSerializer,
    )
    def post(self, request):
        if isinstance(request.data, str):
            text = request.data
            dry_run = _flag.to_internal_value(request.query_params.get("dry_run", "true"))
        else:
            data = ImportSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            text, dry_run = data.validated_data["text"], data.validated_data["dry_run"]
        plan = config_import(actor=request.user, text=text, filename="config.yaml", dry_run=dry_run)
        return Response(PlanSerializer(plan.as_data()).data)
