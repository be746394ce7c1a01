"""A store that cannot work is reported when it is opened - before any checkpoint runs -
with the URI, the endpoint and what to check, and without any secret."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import kitaru_cli, run_python, write_script

import kitaru.artifacts
from kitaru._errors import ConfigurationError

from .backends import AWS_TEST_ENV, OBJECT_BACKENDS, Backend

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def dead_endpoint() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def open_error(uri: str) -> str:
    kitaru.artifacts.reset_for_tests()
    with pytest.raises(ConfigurationError) as info:
        kitaru.artifacts.open_store(uri)
    return str(info.value)


def missing_bucket_uri(backend: Backend) -> str:
    scheme = backend.uri.split("://")[0]
    return f"{scheme}://kitaru-no-such-bucket-x7/runs"


@pytest.mark.parametrize("backend", OBJECT_BACKENDS, indirect=True)
def test_missing_bucket(backend: Backend) -> None:
    uri = missing_bucket_uri(backend)
    message = open_error(uri)
    assert uri in message
    assert "does not exist" in message
    assert "endpoint http://127.0.0.1:" in message


@pytest.mark.parametrize("backend", OBJECT_BACKENDS, indirect=True)
def test_unreachable_endpoint(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = dead_endpoint()
    if backend.name.startswith("s3-"):
        monkeypatch.setenv("KITARU_S3_ENDPOINT_URL", dead)
    elif backend.name == "gcs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", dead)
    else:
        conn = backend.env["AZURE_STORAGE_CONNECTION_STRING"]
        live = conn.split("BlobEndpoint=")[1].split("/devstoreaccount1")[0]
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn.replace(live, dead))
    message = open_error(backend.uri)
    assert f"artifact store {backend.uri} cannot be reached at {dead}" in message
    assert "check that the endpoint is right" in message
    assert AZURITE_KEY not in message


@pytest.mark.parametrize("backend", ["azure"], indirect=True)
def test_wrong_azure_key(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ=="
    conn = backend.env["AZURE_STORAGE_CONNECTION_STRING"].replace(AZURITE_KEY, wrong)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", conn)
    message = open_error(backend.uri)
    assert backend.uri in message
    assert "access denied" in message and "account key" in message
    assert wrong not in message and AZURITE_KEY not in message


@pytest.mark.parametrize("backend", ["s3-moto"], indirect=True)
def test_no_aws_credentials(
    backend: Backend, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    message = open_error(backend.uri)
    assert backend.uri in message
    assert "no AWS credentials found" in message


@pytest.mark.parametrize("backend", ["s3-moto"], indirect=True)
def test_secrets_never_appear_in_errors(backend: Backend) -> None:
    message = open_error(missing_bucket_uri(backend))
    assert AWS_TEST_ENV["AWS_SECRET_ACCESS_KEY"] not in message
    assert AWS_TEST_ENV["AWS_ACCESS_KEY_ID"] not in message


@pytest.mark.parametrize(
    "uri",
    ["s3://", "s3:///prefix", "gs://bucket/p?endpoint=http://x", "az://c/p#frag"],
)
def test_malformed_uris(uri: str) -> None:
    message = open_error(uri)
    assert repr(uri) in message


def test_unknown_scheme_lists_the_known_ones() -> None:
    message = open_error("ftp://host/dir")
    assert "s3://" in message and "gs://" in message and "az://" in message


@pytest.mark.parametrize(
    ("uri", "module", "extra"),
    [
        ("s3://b/p", "boto3", "aws"),
        ("gs://b/p", "google.cloud", "gcp"),
        ("az://c/p", "azure.storage.blob", "azure"),
    ],
)
def test_missing_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, uri: str, module: str, extra: str
) -> None:
    for name in list(sys.modules):
        if name.startswith("kitaru.artifacts._") and name != "kitaru.artifacts._base":
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if not installed
    message = open_error(uri)
    assert f'pip install "kitaru[{extra}]"' in message


def test_import_kitaru_imports_no_cloud_sdk() -> None:
    code = (
        "import sys, kitaru, kitaru.artifacts; "
        "print([m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'azure') "
        "or m.startswith('google.cloud')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("backend", ["s3-localstack"], indirect=True)
def test_flow_with_missing_bucket_fails_before_any_checkpoint(
    backend: Backend, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    script = write_script(
        tmp_path / "flow.py",
        f"""
        from pathlib import Path
        from kitaru import checkpoint, flow

        @checkpoint
        def step() -> int:
            Path({str(marker)!r}).write_text("ran")
            return 1

        @flow
        def pipeline() -> int:
            return step()

        if __name__ == "__main__":
            pipeline.run()
        """,
    )
    uri = missing_bucket_uri(backend)
    env = {**backend.subprocess_env(), "KITARU_ARTIFACT_STORE": uri}
    proc = run_python(script, env=env)
    assert proc.returncode != 0
    assert uri in proc.stderr and "does not exist" in proc.stderr
    assert not marker.exists()
    listed = kitaru_cli("executions", "list", "--json", env=env)
    assert listed.returncode == 0, listed
    assert listed.json() == []
