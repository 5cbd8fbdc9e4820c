"""Git for pull-mode environments: write one file to a branch of an environment repository, commit and push,
never force. The `git` command line does the work, so local paths, file://, ssh:// and https:// remotes all
behave as they do for people.

Each call works in a throw-away bare repository with its own HOME and no system configuration, so nothing on
the worker's machine changes what is committed. Files are written with git's plumbing (hash-object,
update-index, write-tree, commit-tree) and never checked out, so nothing in the repository (a symbolic link
where the file should be, a hook) can make the worker touch its own disk. An https credential travels as an
HTTP header through git's environment (GIT_CONFIG_*), never in the URL, a command line or a file; an ssh
credential (a private key) lives in a 0600 file inside that directory for the duration of the call, and the
host's key is checked against the known hosts given (accepted on first use when none are given).
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

COMMITTER = ("ReleaseHub", "releasehub@localhost")
REJECTED = re.compile(r"\[rejected\]|\(fetch first\)|non-fast-forward|failed to update ref|cannot lock ref", re.I)
MISSING_BRANCH = re.compile(r"couldn't find remote ref|not our ref|invalid refspec", re.I)
SHA = re.compile(r"[0-9a-f]{7,64}")


class GitError(Exception):
    """A git command failed; the message holds its output (the caller's log masks secrets)."""


@dataclass(frozen=True)
class Remote:
    url: str
    credential: str = ""  # https: a token (or user:token); ssh: a private key
    known_hosts: str = ""  # ssh: the host's keys, as in a known_hosts file; "": accepted on first use
    timeout: float = 120.0  # seconds per git command


@dataclass(frozen=True)
class Commit:
    sha: str  # the commit that holds the file: the new one, or the branch's head when nothing changed
    changed: bool
    previous: bytes | None = None  # the file before the commit; None: there was no such file


def check_path(path: str) -> str:
    """A file path inside a repository: relative, no `..`, not under .git. Returns it normalised."""
    parts = PurePosixPath(path.strip()).parts
    if not parts or path.strip().startswith("/") or ".." in parts or parts[0] == ".git" or "\\" in path:
        raise ValueError("Give a relative file path inside the repository, without '..' (e.g. apps/web/values.yaml).")
    return "/".join(parts)


def is_ssh(url: str) -> bool:
    """ssh://host/path, or the scp-like user@host:path."""
    return url.startswith("ssh://") or ("://" not in url and re.match(r"^[^-/:][^/:]*@[^-/:][^/:]*:", url) is not None)


def is_http(url: str) -> bool:
    return url.startswith(("https://", "http://"))


class Repository:
    """An empty bare repository in a temporary directory whose `origin` is the remote."""

    def __init__(self, remote: Remote, directory: str) -> None:
        self.remote = remote
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": directory,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_COMMITTER_NAME": COMMITTER[0],
            "GIT_COMMITTER_EMAIL": COMMITTER[1],
            "LC_ALL": "C",
        }
        config = {"protocol.file.allow": "always", "core.hooksPath": "/dev/null"}
        if remote.credential and is_http(remote.url):
            user, _, token = remote.credential.rpartition(":") if ":" in remote.credential else ("", "", "")
            basic = f"{user}:{token}" if user else f"x-access-token:{remote.credential}"
            config["http.extraHeader"] = "Authorization: Basic " + base64.b64encode(basic.encode()).decode()
        elif is_ssh(remote.url):
            known = os.path.join(directory, "known_hosts")
            _private_file(known, remote.known_hosts.strip() + "\n" if remote.known_hosts.strip() else "")
            options = ["-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}"]
            options += ["-o", "StrictHostKeyChecking=" + ("yes" if remote.known_hosts.strip() else "accept-new")]
            if remote.credential:
                key = os.path.join(directory, "ssh-key")
                _private_file(key, remote.credential.strip() + "\n")
                options += ["-i", key, "-o", "IdentitiesOnly=yes"]
            self.env["GIT_SSH_COMMAND"] = shlex.join(["ssh", *options])
        for index, (key, value) in enumerate(config.items()):
            self.env[f"GIT_CONFIG_KEY_{index}"] = key
            self.env[f"GIT_CONFIG_VALUE_{index}"] = value
        self.env["GIT_CONFIG_COUNT"] = str(len(config))
        self.directory = os.path.join(directory, "repository.git")
        os.mkdir(self.directory)
        self.git("init", "--quiet", "--bare")
        self.git("remote", "add", "origin", "--", remote.url)

    def run(self, *args: str, input: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(  # noqa: S603 - git with arguments this module builds, no shell
                ["git", *args],  # noqa: S607 - the git on PATH, as for people
                cwd=self.directory,
                env={**self.env, **(env or {})},
                capture_output=True,
                input=input,
                timeout=self.remote.timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]} took longer than {self.remote.timeout:g}s.") from exc

    def git(self, *args: str, input: bytes | None = None, env: dict | None = None) -> str:
        done = self.run(*args, input=input, env=env)
        if done.returncode != 0:
            output = (done.stderr or done.stdout).decode(errors="replace").strip()
            raise GitError(f"git {args[0]} failed: {output[-2000:]}")
        return done.stdout.decode(errors="replace").strip()

    def fetch(self, branch: str, *, depth: int | None = 1) -> str | None:
        """Fetch the branch; its head, or None when the remote has no such branch (an empty repository)."""
        args = ["fetch", "--quiet", "--no-tags"] + ([f"--depth={depth}"] if depth else [])
        done = self.run(*args, "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
        if done.returncode != 0:
            if MISSING_BRANCH.search(done.stderr.decode(errors="replace")):
                return None
            raise GitError(f"git fetch failed: {done.stderr.decode(errors='replace').strip()[-2000:]}")
        return self.git("rev-parse", f"refs/remotes/origin/{branch}")

    def read(self, head: str, path: str) -> bytes | None:
        """The file at `path` in commit `head`; None when there is none. Raises GitError when `path` is
        something else there (a directory, a symbolic link, a submodule)."""
        entry = self.git("ls-tree", "--full-tree", head, "--", path)
        if not entry:
            return None
        mode, kind, blob = entry.split("\t", 1)[0].split()
        if kind != "blob" or mode not in ("100644", "100755"):
            raise GitError(f"{path} is not a regular file in the repository (git mode {mode}); refusing to replace it.")
        return self.run("cat-file", "blob", blob).stdout


def _private_file(path: str, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def _workspace(remote: Remote) -> tuple[tempfile.TemporaryDirectory, Repository]:
    holder = tempfile.TemporaryDirectory(prefix="releasehub-git-")
    try:
        return holder, Repository(remote, holder.name)
    except BaseException:
        holder.cleanup()
        raise


def commit_file(
    remote: Remote,
    *,
    branch: str,
    path: str,
    content: bytes | None,
    message: str,
    author: tuple[str, str],
    push_branch: Callable[[str], str] | None = None,
    attempts: int = 5,
    log: Callable[[str], None] = lambda line: None,
) -> Commit:
    """Make `path` on `branch` hold `content` (None: not exist), in one commit by `author`.

    Pushes to `branch`; when another commit landed there first (a concurrent deployment), fetches the new head
    and makes the commit again on top of it, up to `attempts` times: never a force push. With `push_branch`
    (given the new commit's SHA, returns a branch name) the commit goes to that new branch instead, for a pull
    request into `branch`. When the file already is as asked, nothing is committed: Commit(head, False).
    """
    path = check_path(path)
    holder, repository = _workspace(remote)
    identity = {"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1]}
    with holder:
        for attempt in range(1, attempts + 1):
            head = repository.fetch(branch)
            previous = repository.read(head, path) if head else None
            if head and previous == content:
                return Commit(head, changed=False, previous=previous)
            repository.git("read-tree", head) if head else repository.git("read-tree", "--empty")
            if content is None:
                repository.git("update-index", "--force-remove", "--", path)
            else:
                blob = repository.git("hash-object", "-w", "--stdin", input=content)
                repository.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}")
            tree = repository.git("write-tree")
            parents = ["-p", head] if head else []
            sha = repository.git("commit-tree", tree, *parents, input=message.encode(), env=identity)
            destination = push_branch(sha) if push_branch else branch
            done = repository.run("push", "--porcelain", "origin", f"{sha}:refs/heads/{destination}")
            if done.returncode == 0:
                log(f"Pushed {sha[:12]} to {destination}.")
                return Commit(sha, changed=True, previous=previous)
            output = f"{done.stdout.decode(errors='replace')}\n{done.stderr.decode(errors='replace')}"
            if push_branch or not REJECTED.search(output):
                raise GitError(f"git push failed: {output.strip()[-2000:]}")
            log(f"{branch} moved while committing (attempt {attempt} of {attempts}); fetching it and trying again.")
        raise GitError(f"{branch} kept moving: the push was rejected {attempts} times. Nothing was forced.")


def containing(remote: Remote, *, branch: str, commit: str, revisions: Iterable[str]) -> set[str]:
    """Which of `revisions` (commits an operator reports it applied) include `commit`: are it or come after it
    on `branch`. One fetch of the branch, only when a revision is not `commit` itself."""
    wanted = {revision for revision in revisions if SHA.fullmatch(revision)}
    found = {revision for revision in wanted if commit.startswith(revision)}
    if not wanted - found or not SHA.fullmatch(commit):
        return found
    holder, repository = _workspace(remote)
    with holder:
        if repository.fetch(branch, depth=None) is None:
            return found
        for revision in wanted - found:
            known = repository.run("cat-file", "-e", f"{revision}^{{commit}}").returncode == 0
            if known and repository.run("merge-base", "--is-ancestor", commit, revision).returncode == 0:
                found.add(revision)
    return found
