"""The import endpoint's YAML bodies: the text itself, size-limited like JSON bodies (apps.core.parsers)."""

from django.conf import settings
from rest_framework import exceptions, parsers

from apps.core.parsers import PayloadTooLarge


class YAMLParser(parsers.BaseParser):
    """An `application/yaml` body as text; parsing it is the import service's job (it names lines and paths)."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None) -> str:
        if stream is None:
            return ""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        data = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(data) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError("YAML parse error - not UTF-8 text.") from exc


class TextYAMLParser(YAMLParser):
    media_type = "text/yaml"
