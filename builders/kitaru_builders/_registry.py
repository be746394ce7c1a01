"""Container registries the builder pushes to: any Docker registry (the engine's own
login is used), and Amazon ECR, which gets a fresh token through boto3."""

from __future__ import annotations

import base64
import re
from typing import Any

from kitaru import ConfigurationError
from kitaru.stacks import probe_registry

_ECR = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(/|$)")


class DockerRegistry:
    """A registry the Docker engine can already push to (loopback, or after docker login)."""

    def __init__(self, uri: str, client: Any) -> None:
        self.uri = uri
        self._client = client

    def check(self) -> None:
        probe_registry(self.uri)

    def credentials(self) -> dict[str, str] | None:
        return None

    def digest(self, ref: str) -> str | None:
        """None when the registry does not have `ref`. A registry that refuses this
        machine fails here, before anything is built."""
        import docker.errors

        credentials = self.credentials()
        try:
            data = self._client.images.get_registry_data(ref, auth_config=credentials)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as exc:
            refused(self.uri, str(exc.explanation or exc), logged_in=credentials is not None)
            return None
        return str(data.id)


_REFUSED = ("no basic auth credentials", "unauthorized", "authentication required", "denied")


def refused(uri: str, reason: str, *, logged_in: bool) -> None:
    """Raise if the registry's answer means it will not take a push from this machine."""
    # The engine quotes the request it made (`Head "http://.../manifests/...": ...`).
    reason = re.sub(r'^[A-Za-z]+ "[^"]*": ', "", reason.strip())
    text = reason.lower()
    if any(marker in text for marker in _REFUSED):
        who = "the credentials it was given" if logged_in else "this machine"
        host = uri.split("/", 1)[0]
        raise ConfigurationError(
            f"the registry {uri} refused {who} ({reason}); log the Docker engine in "
            f"with `docker login {host}` (for ECR, check the AWS credentials) and try again"
        )


class EcrRegistry(DockerRegistry):
    """Amazon ECR: push credentials are a short-lived token from GetAuthorizationToken."""

    def __init__(self, uri: str, client: Any, region: str) -> None:
        super().__init__(uri, client)
        self.region = region
        self._creds: dict[str, str] | None = None

    def credentials(self) -> dict[str, str] | None:
        if self._creds is None:
            try:
                import boto3
            except ImportError:
                raise ConfigurationError(
                    'pushing to Amazon ECR needs boto3; install it with: pip install "kitaru[aws]"'
                ) from None
            data = boto3.client("ecr", region_name=self.region).get_authorization_token()
            token = data["authorizationData"][0]["authorizationToken"]
            user, _, password = base64.b64decode(token).decode().partition(":")
            self._creds = {"username": user, "password": password}
        return self._creds


def registry_for(uri: str, client: Any) -> DockerRegistry:
    match = _ECR.match(uri)
    if match:
        return EcrRegistry(uri, client, match.group(2))
    return DockerRegistry(uri, client)
