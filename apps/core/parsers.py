"""Request parsing. Kept apart from api.py: DRF imports parsers while it loads its own views."""

import io

from django.conf import settings
from rest_framework import exceptions, parsers, status


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "payload_too_large"


class JSONParser(parsers.JSONParser):
    """JSON parser that refuses bodies over DATA_UPLOAD_MAX_MEMORY_SIZE with 413.

    DRF reads the request stream itself, so Django's limit (which guards `request.body`)
    would not apply. Reads at most limit + 1 bytes, also without a Content-Length.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and stream is not None:
            data = stream.read(limit + 1)
            if len(data) > limit:
                raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
            stream = io.BytesIO(data)
        return super().parse(stream, media_type, parser_context)
