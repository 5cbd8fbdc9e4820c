"""Request parsing. Kept apart from api.py: DRF imports parsers while it loads its own views."""

import io

from django.conf import settings
from rest_framework import exceptions, parsers, serializers, status


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
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:  # DRF turns only ValueError into a ParseError
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from exc
        _reject_unstorable_text(data)
        return data


def _reject_unstorable_text(data) -> None:
    """Refuse text that no database column can hold, in any string, key or value: 400 instead of a 500 later.

    JSON may escape half a UTF-16 pair ("\\ud800"), which cannot even be encoded (a parse
    error), and a NUL ("\\u0000"), which PostgreSQL's text and jsonb refuse (an invalid value
    of the top-level field it is in).
    """
    pending = [(None, data)]
    while pending:
        field, item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise exceptions.ParseError("JSON parse error - invalid Unicode (a lone surrogate).") from exc
            if "\x00" in item:
                raise serializers.ValidationError({field or "non_field_errors": ["NUL characters are not accepted."]})
        elif isinstance(item, dict):
            for key, value in item.items():
                pending.extend([(field or key, key), (field or key, value)])
        elif isinstance(item, list):
            pending.extend((field, value) for value in item)
