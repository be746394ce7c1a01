"""The artifact-store backends the conformance suite runs against, on real local services.

Each backend makes a fresh bucket or container and returns the store URI plus the
environment a process needs to use it (endpoint and credentials), so that tests can run
stores in this process and in subprocesses alike. A service that scripts/test.sh did not
start is a test failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

import pytest

BACKENDS = ["local", "s3-localstack", "s3-moto", "gcs", "azure"]
OBJECT_BACKENDS = BACKENDS[1:]

# Keys and tokens of the emulators; never real secrets.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "kitaru-test-key",
    "AWS_SECRET_ACCESS_KEY": "kitaru-test-secret-value",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}

# Variables from the developer's own environment that would redirect or re-authenticate
# a store under test.
CLOUD_VARS = [
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_DEFAULT_REGION",
    "KITARU_S3_ENDPOINT_URL",
    "STORAGE_EMULATOR_HOST",
    "KITARU_GCS_ENDPOINT_URL",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_URL",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
    "KITARU_AZURE_ACCOUNT_URL",
]


def service(var: str, script: str) -> str:
    value = os.environ.get(var)
    if not value:
        pytest.fail(
            f"{var} is not set: start the service with `bash scripts/services/{script}.sh up` "
            f"and source .test-services/{script}.env, or run `make test`",
            pytrace=False,
        )
    return value


@dataclass
class Backend:
    name: str
    uri: str
    env: dict[str, str] = field(default_factory=dict)
    bucket: str = ""

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for var in CLOUD_VARS:
            monkeypatch.delenv(var, raising=False)
        for var, value in self.env.items():
            monkeypatch.setenv(var, value)

    def subprocess_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in CLOUD_VARS}
        env.update(self.env)
        return env


def unique(name: str) -> str:
    return f"kitaru-{name}-{uuid.uuid4().hex[:10]}"


def s3_env(url: str) -> dict[str, str]:
    return {**AWS_TEST_ENV, "KITARU_S3_ENDPOINT_URL": url}


def make(name: str, tmp_path_factory: pytest.TempPathFactory) -> Backend:
    """A fresh, empty store of the given backend."""
    if name == "local":
        root = tmp_path_factory.mktemp("store")
        return Backend(name, root.as_uri())
    if name.startswith("s3-"):
        import boto3

        flavor = name.removeprefix("s3-")
        url = service(f"KITARU_TEST_{flavor.upper()}_URL", flavor)
        bucket = unique("s3")
        env = s3_env(url)
        boto3.client(
            "s3",
            endpoint_url=url,
            region_name=env["AWS_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=bucket)
        return Backend(name, f"s3://{bucket}/runs", env, bucket)
    if name == "gcs":
        url = service("KITARU_TEST_GCS_URL", "gcs")
        bucket = unique("gcs")
        env = {"STORAGE_EMULATOR_HOST": url, "GOOGLE_CLOUD_PROJECT": "kitaru-test"}
        gcs_client(url).create_bucket(bucket)
        return Backend(name, f"gs://{bucket}/runs", env, bucket)
    if name == "azure":
        conn = service("KITARU_TEST_AZURITE_CONNECTION_STRING", "azurite")
        container = unique("az")
        azure_service(conn).create_container(container)
        return Backend(
            name, f"az://{container}/runs", {"AZURE_STORAGE_CONNECTION_STRING": conn}, container
        )
    raise ValueError(name)


def gcs_client(url: str):  # type: ignore[no-untyped-def]
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="kitaru-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": url},
    )


def azure_service(conn: str):  # type: ignore[no-untyped-def]
    from azure.storage.blob import BlobServiceClient

    return BlobServiceClient.from_connection_string(conn)
