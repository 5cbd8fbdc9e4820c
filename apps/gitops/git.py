"""Git for pull-mode environments: write one file to a branch of an environment repository, commit and push,
never force. The `git` command line does the work, so local paths, file://, ssh:// and https:// remotes all
behave as they do for people.

Each call works in a throw-away directory with its own HOME and no system configuration, so nothing on the
worker's machine changes what is committed. An https credential travels as an HTTP header through git's
environment (GIT_CONFIG_*), never in the URL, a command line or a file; an ssh credential (a private key) lives
in a 0600 file inside that directory for the duration of the call.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

COMMITTER = ("ReleaseHub", "releasehub@localhost")
REJECTED = re.compile(r"\[rejected\]|\(fetch first\)|non-fast-forward|failed to update ref|cannot lock ref", re.I)
MISSING_BRANCH = re.compile(r"couldn't find remote ref|not our ref|invalid refspec", re.I)


class GitError(Exception):
    """A git command failed; the message holds its output (the caller's log masks secrets)."""


@dataclass(frozen=True)
class Remote:
    url: str
    credential: str = ""  # https: a token (or user:token); ssh: a private key
    timeout: float = 120.0  # seconds per git command


@dataclass(frozen=True)
class Commit:
    sha: str  # the commit that holds the file: the new one, or the branch's head when nothing changed
    changed: bool
    previous: str | None = None  # the file's content before the commit; None: there was no such file


def check_path(path: str) -> str:
    """A file path inside a repository: relative, no `..`, not under .git. Returns it normalised."""
    parts = PurePosixPath(path.strip()).parts
    if not parts or path.strip().startswith("/") or ".." in parts or parts[0] == ".git" or "\\" in path:
        raise ValueError("Give a relative file path inside the repository, without '..' (e.g. apps/web/values.yaml).")
    return "/".join(parts)


def is_ssh(url: str) -> bool:
    """ssh://host/path, or the scp-like user@host:path."""
    return url.startswith("ssh://") or ("://" not in url and re.match(r"^[^-/:][^/:]*@[^-/:][^/:]*:", url) is not None)


class WorkingCopy:
    """An empty repository in a temporary directory whose `origin` is the remote."""

    def __init__(self, remote: Remote, directory: str) -> None:
        self.remote = remote
        self.directory = directory
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": directory,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_COMMITTER_NAME": COMMITTER[0],
            "GIT_COMMITTER_EMAIL": COMMITTER[1],
            "LC_ALL": "C",
        }
        config = {
            "protocol.file.allow": "always",
            "init.defaultBranch": "main",
            "core.hooksPath": "/dev/null",
            "user.name": COMMITTER[0],
            "user.email": COMMITTER[1],
        }
        if remote.credential and remote.url.startswith(("https://", "http://")):
            user, _, token = remote.credential.rpartition(":") if ":" in remote.credential else ("", "", "")
            basic = f"{user}:{token}" if user else f"x-access-token:{remote.credential}"
            config["http.extraHeader"] = "Authorization: Basic " + base64.b64encode(basic.encode()).decode()
        elif remote.credential and is_ssh(remote.url):
            key = Path(directory, ".ssh-key")
            key.write_text(remote.credential.strip() + "\n")
            key.chmod(0o600)
            known = Path(directory, ".known_hosts")
            self.env["GIT_SSH_COMMAND"] = (
                f"ssh -i {key} -o IdentitiesOnly=yes -o BatchMode=yes "
                f"-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={known}"
            )
        for index, (key, value) in enumerate(config.items()):
            self.env[f"GIT_CONFIG_KEY_{index}"] = key
            self.env[f"GIT_CONFIG_VALUE_{index}"] = value
        self.env["GIT_CONFIG_COUNT"] = str(len(config))
        self.work = os.path.join(directory, "work")
        os.mkdir(self.work)
        self.git("init", "--quiet")
        self.git("remote", "add", "origin", "--", remote.url)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(  # noqa: S603 - git with arguments this module builds, no shell
                ["git", *args],  # noqa: S607 - the git on PATH, as for people
                cwd=self.work,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.remote.timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise GitError(f"git {args[0]} took longer than {self.remote.timeout:g}s.") from exc

    def git(self, *args: str) -> str:
        done = self.run(*args)
        if done.returncode != 0:
            raise GitError(f"git {args[0]} failed: {(done.stderr or done.stdout).strip()[-2000:]}")
        return done.stdout.strip()

    def fetch(self, branch: str, *, depth: int | None = 1) -> str | None:
        """Fetch the branch; its head, or None when the remote has no such branch (an empty repository)."""
        args = ["fetch", "--quiet", "--no-tags"] + ([f"--depth={depth}"] if depth else [])
        done = self.run(*args, "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
        if done.returncode != 0:
            if MISSING_BRANCH.search(done.stderr):
                return None
            raise GitError(f"git fetch failed: {done.stderr.strip()[-2000:]}")
        return self.git("rev-parse", f"refs/remotes/origin/{branch}")


def _workspace(remote: Remote) -> tuple[tempfile.TemporaryDirectory, WorkingCopy]:
    holder = tempfile.TemporaryDirectory(prefix="releasehub-git-")
    try:
        return holder, WorkingCopy(remote, holder.name)
    except BaseException:
        holder.cleanup()
        raise


def commit_file(
    remote: Remote,
    *,
    branch: str,
    path: str,
    content: str | None,
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
    holder, copy = _workspace(remote)
    with holder:
        for attempt in range(1, attempts + 1):
            head = copy.fetch(branch)
            if head:
                copy.git("checkout", "--quiet", "-B", "work", head)
            else:
                copy.git("checkout", "--quiet", "--orphan", "work")
            file = Path(copy.work, path)
            previous = file.read_text(errors="replace") if head and file.is_file() else None
            if head and previous == content:
                return Commit(head, changed=False, previous=previous)
            if content is None:
                copy.git("rm", "--quiet", "--", path)
            else:
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(content)
                copy.git("add", "--", path)
            copy.git("commit", "--quiet", "--no-verify", f"--author={author[0]} <{author[1]}>", "-m", message)
            sha = copy.git("rev-parse", "HEAD")
            destination = push_branch(sha) if push_branch else branch
            done = copy.run("push", "--porcelain", "origin", f"HEAD:refs/heads/{destination}")
            if done.returncode == 0:
                log(f"Pushed {sha[:12]} to {destination}.")
                return Commit(sha, changed=True, previous=previous)
            output = f"{done.stdout}\n{done.stderr}"
            if push_branch or not REJECTED.search(output):
                raise GitError(f"git push failed: {output.strip()[-2000:]}")
            log(f"{branch} moved while committing (attempt {attempt} of {attempts}); fetching it and trying again.")
        raise GitError(f"{branch} kept moving: the push was rejected {attempts} times. Nothing was forced.")


def contains(remote: Remote, *, branch: str, commit: str, revision: str) -> bool:
    """Whether `revision` (a commit the operator applied) includes `commit`: it is `commit` or comes after it."""
    if revision == commit or (len(revision) >= 7 and commit.startswith(revision)):
        return True
    holder, copy = _workspace(remote)
    with holder:
        if copy.fetch(branch, depth=None) is None:
            return False
        if copy.run("cat-file", "-e", f"{revision}^{{commit}}").returncode != 0:
            return False
        return copy.run("merge-base", "--is-ancestor", commit, revision).returncode == 0
