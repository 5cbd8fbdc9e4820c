"""Keeping secrets out of what deliveries record and pages show.

Webhook URLs often carry a token in their path or query (Slack's, Teams'), apprise URLs
always do; error messages from HTTP libraries quote URLs. Only a URL's scheme and host are
ever shown.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

MASK = "••••"
ERROR_LIMIT = 1000
# Fragments shorter than this are not masked on their own: masking "a" or "80" would garble every message.
_MIN_FRAGMENT = 4


def mask_url(url: str) -> str:
    """`https://hooks.example.com/••••`: the scheme, host and port, the rest masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    rest = MASK if (parts.path not in ("", "/") or parts.query or parts.fragment) else ""
    return f"{parts.scheme}://{host}{port}/{rest}"


def secret_fragments(*values: str) -> list[str]:
    """The pieces of URLs and secrets that must not appear in recorded text: each whole value, and for
    URLs their user, password, path segments, path and query values (as written and unquoted)."""
    fragments: set[str] = set()
    for value in values:
        if not value:
            continue
        fragments.add(value)
        try:
            parts = urlsplit(value)
        except ValueError:
            continue
        pieces = [parts.username or "", parts.password or "", parts.path, parts.query, parts.fragment]
        pieces += parts.path.split("/")
        pieces += [item for _, item in parse_qsl(parts.query, keep_blank_values=True)]
        if "://" in value and not parts.hostname:
            # apprise URLs such as tgram://bottoken/chat put a token where a host would be
            pieces.append(value.partition("://")[2].partition("/")[0])
        for piece in pieces:
            fragments.update({piece, unquote(piece)})
    return sorted((f for f in fragments if len(f) >= _MIN_FRAGMENT), key=len, reverse=True)


def mask_text(text: str, *secrets: str) -> str:
    """`text` with every fragment of `secrets` (secret_fragments) replaced by the mask, cut to ERROR_LIMIT."""
    text = str(text)
    for fragment in secret_fragments(*secrets):
        text = text.replace(fragment, MASK)
    return text[:ERROR_LIMIT]
