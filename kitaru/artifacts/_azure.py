"""Artifacts in Azure Blob Storage (`az://container/prefix`), through azure-storage-blob.

The storage account, in the order tried:

1. AZURE_STORAGE_CONNECTION_STRING (account, key or SAS, endpoint - Azurite's too);
2. KITARU_AZURE_ACCOUNT_URL or AZURE_STORAGE_ACCOUNT_URL (`https://<account>.blob.core.windows.net`);
3. AZURE_STORAGE_ACCOUNT (the account name; the public cloud's endpoint is assumed).

With 2 and 3 the credential is AZURE_STORAGE_KEY if set, else azure-identity's
DefaultAzureCredential (environment service principal, workload identity, managed
identity, Azure CLI login).

A value larger than one block is staged block by block, in parallel, straight from the
caller's memoryview, and committed with one block list at the end: staged blocks that
are never committed are invisible to reads and listings (Azure drops them after a
week), so a writer killed halfway leaves nothing that looks like data.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from azure.core import exceptions as azexc
from azure.storage.blob import ContainerClient, ExponentialRetry

from kitaru._config import Durability
from kitaru._errors import ConfigurationError
from kitaru.artifacts._buffer import Buffer, OnData
from kitaru.artifacts._object import (
    ATTEMPTS,
    Location,
    MiB,
    ViewReader,
    env_int,
    unreachable,
)

BLOCK_SIZE = 8 * MiB


class AzureArtifactStore:
    def __init__(self, uri: str, durability: Durability = Durability.PROCESS) -> None:
        del durability  # Azure acknowledges a write only once it is durably stored
        self._at = Location(uri, "az", "container")
        self.uri = self._at.uri
        self.block_size = env_int("KITARU_AZURE_BLOCK_SIZE", BLOCK_SIZE)
        self.workers = env_int("KITARU_AZURE_MAX_CONCURRENCY", 8)
        self._lock = threading.Lock()
        self._containers: dict[int, ContainerClient] = {}

    def _container(self, *, retries: int = ATTEMPTS - 1) -> ContainerClient:
        with self._lock:
            client = self._containers.get(retries)
            if client is None:
                client = self._containers[retries] = _container_client(
                    self._at.bucket,
                    # The SDK's own default waits 15 s before the first retry and
                    # minutes in all; this one waits about 1, 3, 5, 9, 17 s.
                    retry_policy=ExponentialRetry(
                        initial_backoff=1,
                        increment_base=2,
                        retry_total=retries,
                        random_jitter_range=1,
                    ),
                    connection_timeout=10,
                    max_single_put_size=self.block_size,
                    max_block_size=self.block_size,
                    max_single_get_size=self.block_size,
                    max_chunk_get_size=self.block_size,
                )
            return client

    @property
    def endpoint(self) -> str:
        """The account's blob endpoint, without any SAS token."""
        conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if conn:
            fields = _connection_fields(conn)
            if "BlobEndpoint" in fields:
                url = fields["BlobEndpoint"]
            elif "AccountName" in fields:
                suffix = fields.get("EndpointSuffix", "core.windows.net")
                scheme = fields.get("DefaultEndpointsProtocol", "https")
                url = f"{scheme}://{fields['AccountName']}.blob.{suffix}"
            else:
                url = "the account in AZURE_STORAGE_CONNECTION_STRING"
        else:
            url = _account_url() or "no account configured"
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url

    def check(self) -> None:
        where = f"artifact store {self.uri} (endpoint {self.endpoint})"
        try:
            # No retries: a check says at once what is wrong.
            self._container(retries=0).get_container_properties(timeout=10)
        except ConfigurationError:
            raise
        except azexc.ResourceNotFoundError:
            raise ConfigurationError(
                f"{where}: container {self._at.bucket!r} does not exist; create it or fix "
                "the container name"
            ) from None
        except azexc.ClientAuthenticationError as exc:
            raise ConfigurationError(
                f"{where}: access denied to container {self._at.bucket!r} "
                f"({getattr(exc, 'error_code', None) or exc.status_code}); check the account key, SAS token "
                "or Azure identity and that it may read and write the container"
            ) from None
        except azexc.ServiceRequestError as exc:
            raise unreachable(self.uri, self.endpoint, exc) from None
        except azexc.HttpResponseError as exc:
            if exc.status_code in (401, 403):
                raise ConfigurationError(
                    f"{where}: access denied to container {self._at.bucket!r} ({_code(exc)}); "
                    "check the account key, SAS token or Azure identity and that it may read "
                    "and write the container"
                ) from None
            raise ConfigurationError(
                f"{where}: the service answered {getattr(exc, 'error_code', None) or exc.status_code}; check "
                "the container, endpoint and credentials"
            ) from None
        except ValueError as exc:
            # The SDK's way of refusing a malformed connection string or account URL.
            raise ConfigurationError(
                f"{where}: the Azure account settings cannot be used ({exc}); check "
                "AZURE_STORAGE_CONNECTION_STRING or the account URL"
            ) from None

    def write(self, key: str, data: bytes | memoryview) -> str:
        view = memoryview(data).cast("B")
        self._container().upload_blob(
            self._at.name_of(key),
            ViewReader(view),
            length=len(view),
            overwrite=True,
            max_concurrency=self.workers,
        )
        return self._at.uri_of(key)

    def read(self, key: str, on_data: OnData | None = None) -> bytes:
        try:
            download = self._container().download_blob(
                self._at.name_of(key), max_concurrency=self.workers
            )
        except azexc.ResourceNotFoundError:
            raise KeyError(key) from None
        # The first response fixes the blob's ETag; later ranges are requested against it,
        # so a concurrent overwrite cannot mix two values.
        buffer = Buffer(int(download.size), on_data)
        try:
            download.readinto(buffer)  # type: ignore[arg-type]
        except BaseException:
            buffer.discard()
            raise
        return buffer.value()

    def exists(self, key: str) -> bool:
        return bool(self._container().get_blob_client(self._at.name_of(key)).exists())

    def list(self, prefix: str = "") -> Iterator[str]:
        for name in self._container().list_blob_names(
            name_starts_with=self._at.list_prefix(prefix)
        ):
            yield self._at.key_from_name(name)

    def delete(self, key: str) -> None:
        try:
            self._container().delete_blob(self._at.name_of(key))
        except azexc.ResourceNotFoundError:
            pass

    def key_of(self, uri: str) -> str:
        return self._at.key_of(uri)


def _code(exc: azexc.HttpResponseError) -> str:
    return str(getattr(exc, "error_code", None) or exc.status_code)


def _connection_fields(conn: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in conn.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


def _account_url() -> str | None:
    url = os.environ.get("KITARU_AZURE_ACCOUNT_URL") or os.environ.get("AZURE_STORAGE_ACCOUNT_URL")
    if url:
        return url
    account = os.environ.get("AZURE_STORAGE_ACCOUNT")
    return f"https://{account}.blob.core.windows.net" if account else None


def _container_client(container: str, **options: Any) -> ContainerClient:
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        return ContainerClient.from_connection_string(conn, container, **options)
    url = _account_url()
    if url is None:
        raise ConfigurationError(
            f"artifact store az://{container}: no Azure storage account configured; set "
            "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT_URL or "
            "AZURE_STORAGE_ACCOUNT"
        )
    credential: Any = os.environ.get("AZURE_STORAGE_KEY")
    if credential:
        account = urlsplit(url).netloc.split(".")[0]
        credential = {"account_name": account, "account_key": credential}
    elif "sig=" not in (urlsplit(url).query or ""):
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise ConfigurationError(
                "the az:// artifact store needs azure-identity to sign in without a key; "
                'install it with: pip install "kitaru[azure]"'
            ) from None
        credential = DefaultAzureCredential()
    else:
        credential = None  # the SAS token in the URL is the credential
    return ContainerClient(url, container, credential=credential, **options)
