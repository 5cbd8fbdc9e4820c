"""Real deployments for the policy gates: the deployment tests' directory targets behind a local HTTP server."""

from tests.deployments.conftest import http_server, stage  # noqa: F401  (fixtures used by these tests)
