"""Is a container registry there? One request to its `/v2/` endpoint."""

from __future__ import annotations

import urllib.error
import urllib.request

from kitaru._errors import ConfigurationError

_PLAIN_HTTP = ("localhost", "127.", "[::1]")


def registry_host(uri: str) -> str:
    return uri.split("/", 1)[0]


def insecure(uri: str) -> bool:
    """Loopback registries speak plain HTTP (the Docker engine allows it without TLS)."""
    return registry_host(uri).startswith(_PLAIN_HTTP)


NO_CHECK_FIX = (
    "check the address and that the registry is running (or pass --no-check to register anyway)"
)


def probe_registry(
    uri: str, timeout: float = 5.0, *, what: str = "--registry", fix: str = NO_CHECK_FIX
) -> None:
    """Fail unless the registry answers; `what` names it and `fix` says what to do."""
    host = registry_host(uri)
    scheme = "http" if insecure(uri) else "https"
    url = f"{scheme}://{host}/v2/"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return  # it answers; pushing will log in
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc))
    raise ConfigurationError(f"{what} {uri} cannot be reached ({url}: {reason}); {fix}")
