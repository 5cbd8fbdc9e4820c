import json
import os

from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .models import Hit


@csrf_exempt
@require_POST
def floor(request):
    """Parse a small JSON body, insert one row, answer a tiny JSON body: no DRF, no auth, no permissions.

    The answer names the worker process, so that the benchmark can spread its keep-alive connections evenly.
    """
    try:
        name = str(json.loads(request.body).get("version", ""))[:128]
    except (ValueError, AttributeError):
        return HttpResponseBadRequest("invalid JSON")
    hit = Hit.objects.create(name=name)
    return JsonResponse({"id": hit.pk, "worker": os.getpid()}, status=201)
