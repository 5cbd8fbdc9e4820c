"""`release_dir`: install the artifact as `<path>/releases/<version>` and point `<path>/current` at it.

Layout on the target (Capistrano style)::

    <path>/current -> releases/<version>     (relative symlink, switched with one rename)
    <path>/releases/<version>/               (unpacked artifact + .releasehub-digest marker)
    <path>/.releasehub-tmp/                  (downloads in progress)

Every change is made next to its final place and renamed in, so a crash at any point leaves
either the old or the new state, never a half-written release behind `current`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import tarfile
import tempfile
import time
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import requests

from ._util import SCHEMA_DIALECT, http_session
from .base import StepContext, StepKind, StepResult, StepStatus, register

MARKER = ".releasehub-digest"
TMP_DIR = ".releasehub-tmp"
# Same rule as catalog's VERSION validator: a version is always a safe single path component.
VERSION_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
DRIVE_RE = re.compile(r"^[A-Za-z]:")  # a Windows drive in a zip member name
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
CHUNK = 1024 * 1024
STALE_AFTER = 3600  # seconds after which leftovers of an interrupted run are removed
DOWNLOAD_READ_TIMEOUT = 60.0


class StepFailure(Exception):
    """An expected failure inside run(): turned into StepResult(FAILED, message)."""


def switch_symlink(link: str | os.PathLike[str], target: str) -> None:
    """Point `link` at `target` atomically: a new symlink next to it, renamed over it.

    Readers of `link` see the old or the new target, never a missing link. Fails (IsADirectoryError...)
    when `link` exists and is a real directory.
    """
    link = Path(link)
    tmp = link.parent / f".{link.name}.tmp-{secrets.token_hex(6)}"
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_link(link: Path) -> str | None:
    """Where the symlink `link` points, None when there is none; StepFailure when it is not a symlink."""
    try:
        return os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StepFailure(f"{link} exists and is not a symlink: move it away first.") from exc


def version_of(root: Path, link_target: str | None) -> str | None:
    """The release a `current` symlink target names (`releases/<version>`, relative or absolute), if any."""
    if not link_target:
        return None
    resolved = Path(os.path.normpath(root / link_target))
    if resolved.parent == root / "releases" and VERSION_RE.match(resolved.name):
        return resolved.name
    return None


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


@register
class ReleaseDir(StepKind):
    name = "release_dir"
    title = "Release directory"
    description = (
        "Downloads the release's artifact (file:// or http(s)://), checks its SHA-256 digest, unpacks it "
        "(.tar.gz, .tgz, .tar, .zip; any other file is copied as is) into <path>/releases/<version> and "
        "switches the <path>/current symlink to it atomically. Keeps the newest `keep` releases. "
        "Rollback points current back at the previous release."
    )
    idempotent = True
    scope = "target"
    installs = True
    schema: dict[str, Any] = {
        "$schema": SCHEMA_DIALECT,
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "minLength": 1,
                "maxLength": 4096,
                "description": "Absolute directory holding releases/ and current. Default: the target's path.",
            },
            "keep": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100,
                "default": 5,
                "description": "Releases kept in releases/ (the current and previous one are always kept).",
            },
            "strip_components": {
                "type": "integer",
                "minimum": 0,
                "maximum": 5,
                "default": 0,
                "description": "Leading path components removed from archive member names, like tar's option.",
            },
        },
        "additionalProperties": False,
    }

    # ---------------------------------------------------------------- run

    def run(self, ctx: StepContext) -> StepResult:
        try:
            return self._run(ctx)
        except StepFailure as exc:
            return StepResult(StepStatus.FAILED, str(exc))

    def _run(self, ctx: StepContext) -> StepResult:
        artifact = ctx.artifact
        if not artifact:
            raise StepFailure("the release has no artifact")
        version = str(artifact.get("version") or "")
        digest = str(artifact.get("digest") or "")
        uri = str(artifact.get("uri") or "")
        if not VERSION_RE.match(version):
            raise StepFailure(f"Artifact version {version!r} cannot be a directory name.")
        if not DIGEST_RE.match(digest):
            raise StepFailure(f"Artifact digest {digest!r} is not sha256:<64 hex digits>.")
        root = self._root(ctx)
        keep = int(ctx.params.get("keep", 5))
        strip = int(ctx.params.get("strip_components", 0))
        releases = root / "releases"
        release = releases / version
        current = root / "current"

        try:
            releases.mkdir(parents=True, exist_ok=True)
            if ctx.state.get("version") == version and "previous_link" in ctx.state:
                previous_link = ctx.state["previous_link"]  # a re-run: what `current` was before the first run
            else:
                previous_link = read_link(current)
                ctx.checkpoint(
                    {
                        "previous": version_of(root, previous_link),
                        "previous_link": previous_link,
                        "version": version,
                        "path": str(root),
                    }
                )
            if self._marker(release) == digest:
                ctx.log(f"{release} already holds {digest}: reusing it.")
            else:
                self._install(ctx, root, release, uri, digest, strip)
            os.utime(release)  # pruning keeps the most recently installed releases
            new_link = f"releases/{version}"
            if read_link(current) == new_link:
                ctx.log(f"current already points at {new_link}.")
            else:
                switch_symlink(current, new_link)
                ctx.log(f"current -> {new_link} (was {previous_link or 'absent'}).")
        except OSError as exc:
            raise StepFailure(f"Could not install {version} in {root}: {exc}") from exc

        previous = version_of(root, previous_link)
        state = {"previous": previous, "previous_link": previous_link, "version": version, "path": str(root)}
        try:
            self._prune(ctx, root, keep, {version, previous})
        except OSError as exc:  # the release is live: a leftover directory is not worth failing for
            ctx.log(f"Pruning old releases failed: {exc}")
        message = f"Installed {version} in {release}; current points at it."
        return StepResult(StepStatus.SUCCEEDED, message, state=state, installed=True)

    @staticmethod
    def _root(ctx: StepContext) -> Path:
        path = ctx.params.get("path") or (ctx.target or {}).get("path")
        if not path:
            raise StepFailure("No path given and the target has no path.")
        if not os.path.isabs(path):
            raise StepFailure(f"path {path!r} is not absolute.")
        return Path(os.path.normpath(path))

    @staticmethod
    def _marker(release: Path) -> str | None:
        try:
            return (release / MARKER).read_text().strip()
        except OSError:
            return None

    def _install(self, ctx: StepContext, root: Path, release: Path, uri: str, digest: str, strip: int) -> None:
        """Fetch, verify and unpack the artifact, then rename the unpacked tree to `release`."""
        tmp_dir = root / TMP_DIR
        tmp_dir.mkdir(exist_ok=True)
        name = self._file_name(uri)
        fd, download = tempfile.mkstemp(dir=tmp_dir, prefix="download-")
        partial: Path | None = None
        try:
            with os.fdopen(fd, "wb") as out:
                actual = self._fetch(ctx, uri, out)
            if actual != digest:
                raise StepFailure(f"Digest mismatch for {uri}: expected {digest}, got {actual}.")
            ctx.log(f"Digest verified: {digest}.")
            partial = Path(tempfile.mkdtemp(prefix=f".{release.name}.partial-", dir=release.parent))
            partial.chmod(0o755)  # mkdtemp makes it private; the application's users must read it
            self._unpack(ctx, Path(download), name, partial, strip)
            (partial / MARKER).write_text(digest + "\n")
            if release.exists() or release.is_symlink():
                # Another build under the same version (or an unfinished copy): swap it out, then delete it.
                aside = release.parent / f".{release.name}.old-{secrets.token_hex(6)}"
                ctx.log(f"Replacing {release} (it does not hold {digest}).")
                os.rename(release, aside)
                os.rename(partial, release)
                partial = None
                _remove(aside)
            else:
                os.rename(partial, release)
                partial = None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(download)
            if partial is not None:
                shutil.rmtree(partial, ignore_errors=True)

    @staticmethod
    def _file_name(uri: str) -> str:
        name = os.path.basename(unquote(urlparse(uri).path))
        return name if name not in ("", ".", "..") else "artifact"

    # ---------------------------------------------------------------- fetch

    def _fetch(self, ctx: StepContext, uri: str, out: BinaryIO) -> str:
        """Copy the artifact at `uri` into `out`; its digest as sha256:<hex>."""
        parsed = urlparse(uri)
        sha = hashlib.sha256()
        size = 0
        ctx.log(f"Fetching {uri}")
        if parsed.scheme == "file":
            if parsed.netloc not in ("", "localhost"):
                raise StepFailure(f"file:// URI with a host ({parsed.netloc}) is not supported.")
            path = url2pathname(parsed.path)
            try:
                with open(path, "rb") as source:
                    while chunk := source.read(CHUNK):
                        sha.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
            except OSError as exc:
                raise StepFailure(f"Cannot read the artifact {path}: {exc.strerror or exc}") from exc
        elif parsed.scheme in ("http", "https"):
            deadline = time.monotonic() + ctx.timeout
            try:
                with (
                    http_session() as session,
                    session.get(uri, stream=True, timeout=min(DOWNLOAD_READ_TIMEOUT, ctx.timeout)) as response,
                ):
                    if response.status_code != 200:
                        raise StepFailure(f"Downloading the artifact failed: HTTP {response.status_code}.")
                    for chunk in response.iter_content(chunk_size=CHUNK):
                        sha.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                        if time.monotonic() > deadline:
                            raise StepFailure(f"Downloading the artifact took longer than {ctx.timeout:g}s.")
            except requests.RequestException as exc:
                ctx.log(f"Download failed: {exc}")
                raise StepFailure(f"Downloading the artifact failed ({type(exc).__name__}).") from exc
        else:
            raise StepFailure(f"Artifact URI scheme {parsed.scheme!r} is not supported (file, http, https).")
        ctx.log(f"Fetched {size} bytes.")
        return f"sha256:{sha.hexdigest()}"

    # ---------------------------------------------------------------- unpack

    def _unpack(self, ctx: StepContext, archive: Path, name: str, dest: Path, strip: int) -> None:
        lower = name.lower()
        if lower.endswith(TAR_SUFFIXES):
            self._untar(archive, dest, strip)
            ctx.log(f"Unpacked the tar archive {name}.")
        elif lower.endswith(".zip"):
            count = self._unzip(archive, dest, strip)
            ctx.log(f"Unpacked {count} files from the zip archive {name}.")
        else:
            os.replace(archive, dest / name)
            with open(dest / name, "rb") as f:
                head = f.read(4)
            # Single-file artifacts are often executables (a Go binary, a script): keep them runnable.
            (dest / name).chmod(0o755 if head.startswith((b"\x7fELF", b"#!")) else 0o644)
            ctx.log(f"Copied {name}.")

    @staticmethod
    def _untar(archive: Path, dest: Path, strip: int) -> None:
        def member_filter(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
            if strip:
                stripped = _strip(member.name, strip)
                if stripped is None:
                    return None
                changes: dict[str, Any] = {"name": stripped}
                if member.islnk():  # hard links name another member: strip that name too
                    link = _strip(member.linkname, strip)
                    if link is None:
                        return None
                    changes["linkname"] = link
                member = member.replace(**changes, deep=False)
            # Refuses absolute names, `..`, links leading out of `dest`, devices; drops setuid bits.
            return tarfile.data_filter(member, path)

        try:
            with tarfile.open(archive, "r:*") as tar:
                tar.extractall(dest, filter=member_filter)  # noqa: S202 - member_filter ends in data_filter
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise StepFailure(f"Refused or unreadable tar archive: {exc}") from exc

    @staticmethod
    def _unzip(archive: Path, dest: Path, strip: int) -> int:
        count = 0
        try:
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    raw = info.filename.replace("\\", "/")
                    parts = PurePosixPath(raw).parts
                    if raw.startswith("/") or ".." in parts or (parts and DRIVE_RE.match(parts[0])):
                        raise StepFailure(f"Refused zip archive: member {info.filename!r} leads out of the release.")
                    name = _strip(raw, strip)
                    if name is None:
                        continue
                    target = dest / name
                    if not os.path.realpath(target).startswith(os.path.realpath(dest) + os.sep):
                        raise StepFailure(f"Refused zip archive: member {info.filename!r} leads out of the release.")
                    if info.is_dir():
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as source, open(target, "wb") as out:
                        shutil.copyfileobj(source, out, CHUNK)
                    mode = (info.external_attr >> 16) & 0o777
                    target.chmod(0o755 if mode & 0o111 else 0o644)
                    count += 1
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as exc:
            # RuntimeError: encrypted members; NotImplementedError: unsupported compression.
            raise StepFailure(f"Unreadable zip archive: {exc}") from exc
        return count

    # ---------------------------------------------------------------- prune

    @staticmethod
    def _prune(ctx: StepContext, root: Path, keep: int, protected: set[str | None]) -> None:
        """Delete releases beyond the newest `keep`, never `protected` ones, and stale leftovers."""
        releases = root / "releases"
        entries = [e for e in os.scandir(releases) if e.is_dir(follow_symlinks=False)]
        installed = sorted(
            (e for e in entries if not e.name.startswith(".")),
            key=lambda e: (e.stat(follow_symlinks=False).st_mtime_ns, e.name),
            reverse=True,
        )
        for entry in installed[keep:]:
            if entry.name not in protected:
                shutil.rmtree(entry.path)
                ctx.log(f"Pruned releases/{entry.name}.")
        # Leftovers of interrupted runs: `.<version>.partial-*`, `.<version>.old-*`, downloads.
        cutoff = time.time() - STALE_AFTER
        leftovers = [e for e in entries if e.name.startswith(".")]
        tmp_dir = root / TMP_DIR
        if tmp_dir.is_dir():
            leftovers += list(os.scandir(tmp_dir))
        for entry in leftovers:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                _remove(Path(entry.path))

    # ---------------------------------------------------------------- rollback

    def rollback(self, ctx: StepContext) -> StepResult:
        state = ctx.state or {}
        version = state.get("version")
        if not version or not state.get("path"):
            return StepResult(StepStatus.SUCCEEDED, "Nothing to undo.")
        root = Path(state["path"])
        current = root / "current"
        previous = state.get("previous")
        previous_link = state.get("previous_link")
        try:
            link = read_link(current)
            if version_of(root, link) != version:
                ctx.log(f"current points at {link or 'nothing'}, not at {version}: left as it is.")
                return StepResult(StepStatus.SUCCEEDED, f"current no longer points at {version}; nothing to undo.")
            if previous == version:
                return StepResult(StepStatus.SUCCEEDED, f"{version} was already current; nothing to undo.")
            if previous:
                if not (root / "releases" / previous).is_dir():
                    return StepResult(StepStatus.FAILED, f"Cannot roll back: releases/{previous} no longer exists.")
                switch_symlink(current, f"releases/{previous}")
                ctx.log(f"current -> releases/{previous} (was {link}).")
                return StepResult(StepStatus.SUCCEEDED, f"current points at {previous} again.")
            if previous_link:  # current pointed somewhere outside releases/ before
                switch_symlink(current, previous_link)
                ctx.log(f"current -> {previous_link} (was {link}).")
                return StepResult(StepStatus.SUCCEEDED, f"current points at {previous_link} again.")
            current.unlink()
            ctx.log(f"Removed current (there was none before {version}).")
            return StepResult(StepStatus.SUCCEEDED, "Removed current: there was none before.")
        except StepFailure as exc:
            return StepResult(StepStatus.FAILED, str(exc))
        except OSError as exc:
            return StepResult(StepStatus.FAILED, f"Rollback failed: {exc}")


def _strip(name: str, count: int) -> str | None:
    """`name` without its first `count` path components (ignoring `.` ones); None if nothing is left."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if count == 0:
        return name
    if len(parts) <= count:
        return None
    return "/".join(parts[count:])
