"""Ordering of artifact versions: semantic versions by precedence, anything else by registration time.

`version_sort_key` turns a version into a string whose plain (database) ordering is the
SemVer 2.0.0 precedence, so "latest first" is an indexed ORDER BY.
"""

import re
from datetime import datetime

# semver.org's regular expression, with an optional leading "v" as in git tags.
SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_NUMBER_WIDTH = 12


def _number(value: str) -> str:
    """Numbers of up to 12 digits zero-padded to 12; longer ones (SemVer sets no limit) after all of
    those (':' follows '9'), by their length, then by value."""
    if len(value) <= _NUMBER_WIDTH:
        return value.zfill(_NUMBER_WIDTH)
    return f":{len(value):03d}{value}"


def _prerelease(pre: str | None) -> str:
    """A release sorts after its pre-releases ('~' follows every character used below); numeric
    identifiers sort before alphanumeric ones and among themselves by value; a shorter list of
    identifiers sorts first when all before it are equal ('.' precedes digits and letters).

    The '-' inside an identifier is written '/': like '-' it precedes digits and letters, but
    it follows the '.' separator, so "alpha" < "alpha-1" holds also as "alpha.x" < "alpha-1".
    """
    if pre is None:
        return "~"
    return ".".join(f"0{_number(part)}" if part.isdigit() else f"1{part.replace('-', '/')}" for part in pre.split("."))


def version_sort_key(version: str, registered_at: datetime) -> str:
    """Semantic versions ('1|...') sort above, and among themselves by precedence; others ('0|...')
    by registration time. Build metadata does not affect precedence."""
    match = SEMVER.match(version)
    if match is None:
        return f"0|{registered_at.strftime('%Y%m%d%H%M%S%f')}"
    core = ".".join(_number(match[part]) for part in ("major", "minor", "patch"))
    return f"1|{core}|{_prerelease(match['pre'])}"
