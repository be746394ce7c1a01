"""The Helm chart under infra/helm/kitaru-server: linted, rendered with several sets of
values, and every manifest validated against the Kubernetes schemas (strict).

`helm` cannot be installed here (no binary downloads), so tests/helm_render.py renders
the subset of Go templates the chart uses; no cluster runs in these tests.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO
from tests.helm_render import Renderer, TemplateError, merged

CHART = REPO / "infra" / "helm" / "kitaru-server"
K8S_VERSION = "1.30.0"


def _values(**override: Any) -> dict[str, Any]:
    return merged(yaml.safe_load((CHART / "values.yaml").read_text()), override)


def _render(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(values, schema)
    docs = Renderer(CHART, values).manifests()
    by_kind = {}
    for doc in docs:
        source = doc.pop("__file__")
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["kind"] not in by_kind, f"two {doc['kind']} manifests ({source})"
        by_kind[doc["kind"]] = doc
    return by_kind


def test_chart_metadata_and_values_lint() -> None:
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == CHART.name
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"])
    from kitaru import __version__

    assert meta["appVersion"] == __version__
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(_values(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_values(artifactStore="ftp://nowhere"), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_values(replicaCount=0), schema)


def test_default_values_render_a_valid_deployment_and_service() -> None:
    docs = _render(_values())
    assert set(docs) == {"Deployment", "Service"}
    deployment, service = docs["Deployment"], docs["Service"]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"] == "kitaru-server:1.0.0a1"
    assert container["command"] == ["python", "-m", "kitaru", "server", "start"]
    assert "--artifact-store=s3://kitaru-artifacts/server" in container["args"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    journal = next(e for e in container["env"] if e["name"] == "KITARU_JOURNAL_URL")
    assert journal == {
        "name": "KITARU_JOURNAL_URL",
        "valueFrom": {"secretKeyRef": {"name": "kitaru-journal", "key": "url"}},
    }
    assert not any("postgresql://" in json.dumps(d) for d in docs.values())
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert deployment["spec"]["template"]["metadata"]["labels"] == selector
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert container["ports"][0] == {"name": "http", "containerPort": 8080, "protocol": "TCP"}


def test_ingress_signing_secret_and_extra_env_render_valid_manifests() -> None:
    docs = _render(
        _values(
            ingress={"enabled": True, "className": "nginx", "host": "kitaru.acme.dev",
                     "tlsSecretName": "kitaru-tls", "annotations": {"a/b": "c"}},
            serverSecret={"existingSecret": "kitaru-signing", "key": "secret"},
            publicUrl="https://kitaru.acme.dev",
            env=[{"name": "AWS_REGION", "value": "eu-west-1"}],
            image={"repository": "registry.acme.dev/kitaru-server", "tag": "sha-1234"},
            replicaCount=2,
        )
    )  # fmt: skip
    assert set(docs) == {"Deployment", "Service", "Ingress"}
    ingress = docs["Ingress"]
    rule = ingress["spec"]["rules"][0]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": docs["Service"]["metadata"]["name"], "port": {"name": "http"}}
    assert ingress["spec"]["tls"] == [{"hosts": ["kitaru.acme.dev"], "secretName": "kitaru-tls"}]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    [container] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    names = [e["name"] for e in container["env"]]
    assert names == ["KITARU_JOURNAL_URL", "KITARU_SERVER_SECRET", "KITARU_HOME", "AWS_REGION"]
    assert "--public-url=https://kitaru.acme.dev" in container["args"]
    assert container["image"] == "registry.acme.dev/kitaru-server:sha-1234"
    assert docs["Deployment"]["spec"]["replicas"] == 2


def test_a_missing_journal_secret_fails_the_render_with_the_setting_named() -> None:
    with pytest.raises(TemplateError, match=r"journal\.existingSecret is required"):
        Renderer(CHART, _values(journal={"existingSecret": "", "key": "url"})).render()


def test_every_template_is_within_the_renderer_subset() -> None:
    # The renderer refuses what it does not know; parsing every file proves the chart
    # uses nothing it would render differently from Helm.
    renderer = Renderer(CHART, _values())
    assert set(renderer.templates) == {"deployment.yaml", "service.yaml", "ingress.yaml"}
    assert {"kitaru-server.fullname", "kitaru-server.labels"} <= set(renderer.defines)
    notes = (CHART / "templates" / "NOTES.txt").read_text()
    assert "kitaru server token create" in notes


def test_an_image_digest_pins_the_image_and_wins_over_the_tag() -> None:
    digest = "sha256:" + "ab12" * 16
    docs = _render(
        _values(image={"repository": "registry.acme.dev/kitaru-server", "digest": digest,
                       "tag": "ignored"})
    )  # fmt: skip
    [container] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"registry.acme.dev/kitaru-server@{digest}"
    schema = json.loads((CHART / "values.schema.json").read_text())
    for wrong in ("ab12", "sha256:short", "@sha256:" + "ab12" * 16):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(_values(image={"digest": wrong}), schema)


def test_the_server_image_recipe_matches_the_chart() -> None:
    from kitaru_builders import dockerfile
    from kitaru_builders._recipes import SERVER_ARGS, SERVER_ENTRYPOINT

    text = dockerfile("python:3.11-slim", False, "server")
    values = _values()
    uid = values["podSecurityContext"]["runAsUser"]
    assert f"USER {uid}:{uid}" in text
    assert f"EXPOSE {values['service']['targetPort']}" in text
    docs = _render(values)
    [container] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    # The chart replaces the image's arguments, never its command.
    assert container["command"] == list(SERVER_ENTRYPOINT)
    assert f"ENTRYPOINT {json.dumps(list(SERVER_ENTRYPOINT))}" in text
    assert f"--port={values['service']['targetPort']}" in container["args"]
    assert SERVER_ARGS[-1] == str(values["service"]["targetPort"])
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    home = next(e["value"] for e in container["env"] if e["name"] == "KITARU_HOME")
    assert home in mounts  # the only place the server writes
    assert f"KITARU_HOME={home}" in text
