"""Pull mode's git work: what the gitops_commit step costs against a local bare repository, through the real
apps.gitops.git.commit_file (the git command line: a fetch of one branch at depth 1 into a fresh bare repository,
the file written with git's plumbing, a push):

1. a commit and push that changes the manifest, in a repository of --history commits over 50 files;
2. the same call when the file already holds the content ("already at this version": fetch and compare);
3. two commits to one branch pushed at the same moment (threads; a pre-receive hook holds each push 0.2 s so
   they race): the time until both landed, one of them having fetched and committed again;
4. checking a webhook signature (apps.gitops.providers.signed) against 100 repositories' secrets, as a
   delivery is checked against every repository configured for its provider, and reading its event.

    .venv/bin/python bench/gitops.py [--runs 30] [--history 500]

Needs no database: the repository lives in a temporary directory removed at the end. Local repositories
leave out the network; against a remote, add its round trips (a fetch and a push) to cases 1 and 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from apps.gitops import git, providers  # noqa: E402

AUTHOR = ("Bench", "bench@example.com")


def figures(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:8.1f} ms   p95 {p95 * 1000:8.1f} ms   ({len(ordered)} runs)"


def seed(repo: Path, history: int) -> None:
    """`history` commits over 50 files, made in a scratch clone and pushed once."""
    work = repo.parent / "seed"
    subprocess.run(["git", "init", "--quiet", "--initial-branch=main", str(work)], check=True)
    run = lambda *args: subprocess.run(["git", "-C", str(work), *args], check=True, capture_output=True)  # noqa: E731
    run("config", "user.name", "Seed")
    run("config", "user.email", "seed@example.com")
    for index in range(history):
        path = work / f"apps/app-{index % 50}/values.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"image: {{tag: '{index}'}}\n" + "x: y\n" * 200)
        run("add", "-A")
        run("commit", "--quiet", "-m", f"commit {index}")
    run("push", "--quiet", str(repo), "main")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--history", type=int, default=500)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="releasehub-bench-git-") as directory:
        repo = Path(directory, "envs.git")
        subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(repo)], check=True)
        seed(repo, options.history)
        remote = git.Remote(str(repo))
        version = subprocess.run(["git", "--version"], capture_output=True, text=True, check=True).stdout.strip()
        print(f"repository: {options.history} commits over 50 files; {version}")

        def commit(content: str, path: str = "apps/shop/values.yaml", **extra) -> git.Commit:
            return git.commit_file(
                remote, branch="main", path=path, content=content.encode(), message="bench", author=AUTHOR, **extra
            )

        changed, unchanged = [], []
        for run in range(options.runs):
            start = time.perf_counter()
            assert commit(f"tag: '{run}'\n").changed
            changed.append(time.perf_counter() - start)
            start = time.perf_counter()
            assert not commit(f"tag: '{run}'\n").changed
            unchanged.append(time.perf_counter() - start)
        print(f"1. commit and push            {figures(changed)}")
        print(f"2. already at this version    {figures(unchanged)}")

        hook = repo / "hooks" / "pre-receive"
        hook.write_text("#!/bin/sh\ncat >/dev/null\nsleep 0.2\n")
        hook.chmod(0o755)
        races, retries = [], 0
        for run in range(max(3, options.runs // 3)):
            barrier, logs = threading.Barrier(2), []

            def push(name: str, run: int = run, barrier: threading.Barrier = barrier, logs: list = logs) -> None:
                barrier.wait()
                commit(f"{name} {run}\n", path=f"apps/{name}/values.yaml", log=logs.append)

            threads = [threading.Thread(target=push, args=(name,)) for name in ("eu", "us")]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            races.append(time.perf_counter() - start)
            retries += sum("moved while committing" in line for line in logs)
        print(f"3. two racing pushes, both in {figures(races)}; {retries} fetched and committed again")
        hook.unlink()

        body = json.dumps({"action": "closed", "pull_request": {"number": 1, "merged": True}}).encode()
        secrets = [f"secret-{index}" for index in range(100)]
        headers = {"X-Hub-Signature-256": "sha256=" + "0" * 64, "X-GitHub-Event": "pull_request"}
        samples = []
        for _ in range(options.runs * 10):
            start = time.perf_counter()
            assert not any(providers.signed("github", headers, body, secret) for secret in secrets)
            providers.parse("github", headers, body)
            samples.append(time.perf_counter() - start)
        print(f"4. 100 signatures checked     {figures(samples)}")


if __name__ == "__main__":
    main()
