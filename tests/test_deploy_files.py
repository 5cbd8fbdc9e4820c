"""docker-compose.yml is accepted by a compose client and describes the platform of DESIGN.md."""

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent


def test_compose_file_is_valid_and_complete():
    compose = shutil.which("docker-compose")
    require(compose is not None, "docker-compose is not installed (apt-get install docker-compose)")
    result = subprocess.run([compose, "config", "-q"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(subprocess.run([compose, "config"], cwd=ROOT, capture_output=True, text=True).stdout)
    services = config["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    # Workers scale with --scale worker=N: nothing in them may be unique to one container.
    assert "ports" not in services["worker"]
    assert "container_name" not in services["worker"]
    assert services["web"]["command"][0] == "gunicorn"
    assert {"pgdata", "redisdata"} <= set(config["volumes"])
