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
# Custom resources the chart may render (the Prometheus Operator's ServiceMonitor).
CRDS = {"monitoring.coreos.com/v1"}


def _values(**override: Any) -> dict[str, Any]:
    return merged(yaml.safe_load((CHART / "values.yaml").read_text()), override)


def _render_all(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every manifest, after the values pass the chart's schema (as `helm` checks them)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(values, schema)
    docs = Renderer(CHART, values).manifests()
    for doc in docs:
        if doc["apiVersion"] in CRDS:
            continue  # not in the Kubernetes schemas; its test checks its fields
        kubernetes_validate.validate(
            {k: v for k, v in doc.items() if k != "__file__"}, K8S_VERSION, strict=True
        )
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(set(names)) == len(names), f"two manifests of the same kind and name: {names}"
    return docs


def _render(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by_kind = {}
    for doc in _render_all(values):
        source = doc.pop("__file__")
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
    assert not any(a.startswith("--retention") for a in container["args"])  # keeps all


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
            retention={"olderThan": "30d", "interval": 600},
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
    assert {"--retention=30d", "--retention-interval=600"} <= set(container["args"])
    assert container["image"] == "registry.acme.dev/kitaru-server:sha-1234"
    assert docs["Deployment"]["spec"]["replicas"] == 2


def test_a_missing_journal_secret_fails_the_render_with_the_setting_named() -> None:
    with pytest.raises(TemplateError, match=r"journal\.existingSecret is required"):
        Renderer(CHART, _values(journal={"existingSecret": "", "key": "url"})).render()


def test_every_template_is_within_the_renderer_subset() -> None:
    # The renderer refuses what it does not know; parsing every file proves the chart
    # uses nothing it would render differently from Helm.
    renderer = Renderer(CHART, _values())
    assert set(renderer.templates) == {
        "deployment.yaml", "service.yaml", "ingress.yaml", "workers.yaml", "servicemonitor.yaml"
    }  # fmt: skip
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


# -- workers -------------------------------------------------------------------------------

DIGEST = "sha256:" + "5624190c" * 8


def _worker(name: str = "agents", **override: Any) -> dict[str, Any]:
    return merged(
        {
            "name": name,
            "image": {"repository": f"registry.acme.dev/kitaru/{name}", "digest": DIGEST},
            "flows": [f"{name}.flows"],
            "apiToken": {"existingSecret": "kitaru-worker-token"},
        },
        override,
    )


def _workers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The worker Deployments by worker name."""
    return {
        d["metadata"]["labels"]["kitaru.dev/worker"]: d
        for d in docs
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    }


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_workers_are_off_by_default_and_render_nothing() -> None:
    values = _values()
    assert values["workers"] == []
    renderer = Renderer(CHART, values)
    assert renderer.render()["workers.yaml"].strip() == ""
    assert set(_render(values)) == {"Deployment", "Service"}
    assert "Worker" not in renderer.render_notes()


def test_two_workers_render_two_deployments_next_to_the_server() -> None:
    values = _values(
        workers=[
            _worker("agents", replicas=3, flows=["support.flows", "support.review:triage"],
                    queues=["default", "approvals"], concurrency=16, grace=120,
                    resources={"requests": {"cpu": "500m"}, "limits": {"memory": "2Gi"}},
                    env=[{"name": "OPENAI_API_KEY",
                          "valueFrom": {"secretKeyRef": {"name": "llm", "key": "openai"}}}]),
            _worker("batch", apiToken={"existingSecret": "batch-token", "key": "kt"}),
        ]
    )  # fmt: skip
    docs = _render_all(values)
    workers = _workers(docs)
    assert set(workers) == {"agents", "batch"}
    [server] = [d for d in docs if d["kind"] == "Deployment" and d not in workers.values()]
    [service] = [d for d in docs if d["kind"] == "Service"]
    assert _container(server)["command"] == ["python", "-m", "kitaru", "server", "start"]

    agents, batch = workers["agents"], workers["batch"]
    assert agents["metadata"]["name"] == "kitaru-kitaru-server-worker-agents"
    assert agents["spec"]["replicas"] == 3 and batch["spec"]["replicas"] == 1
    a, b = _container(agents), _container(batch)
    assert a["command"] + a["args"] == [
        "python", "-m", "kitaru", "worker",
        "--flows=support.flows", "--flows=support.review:triage",
        "--queue=default", "--queue=approvals", "--concurrency=16", "--grace=120",
    ]  # fmt: skip
    assert b["args"] == ["--flows=batch.flows", "--queue=default", "--concurrency=8", "--grace=30"]
    assert a["image"] == f"registry.acme.dev/kitaru/agents@{DIGEST}"
    assert b["image"] == f"registry.acme.dev/kitaru/batch@{DIGEST}"
    assert a["workingDir"] == b["workingDir"] == "/app"

    # Kubernetes' SIGKILL comes after the worker's own grace, never during it.
    for deployment, grace in ((agents, 120), (batch, 30)):
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace

    # The server is this release's Service; the token comes from a Secret.
    server_url = f"http://{service['metadata']['name']}:{service['spec']['ports'][0]['port']}"
    env = _env(a)
    assert env["KITARU_SERVER_URL"] == server_url == _env(b)["KITARU_SERVER_URL"]
    assert env["KITARU_API_TOKEN"] == {
        "secretKeyRef": {"name": "kitaru-worker-token", "key": "token"}
    }
    assert _env(b)["KITARU_API_TOKEN"] == {"secretKeyRef": {"name": "batch-token", "key": "kt"}}
    assert env["KITARU_HOST"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "KITARU_JOURNAL_URL" not in env  # the worker holds no database URL
    assert env["OPENAI_API_KEY"] == {"secretKeyRef": {"name": "llm", "key": "openai"}}
    assert a["resources"]["limits"] == {"memory": "2Gi"} and "resources" not in b

    # Non-root with a read-only root filesystem, writing only to an emptyDir.
    pod = agents["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert a["securityContext"]["readOnlyRootFilesystem"] is True
    [mount] = a["volumeMounts"]
    assert env["KITARU_HOME"].startswith(mount["mountPath"] + "/")
    assert {"name": mount["name"], "emptyDir": {}} in pod["volumes"]

    # The server's Service and Deployment select none of the workers' pods, and no
    # worker's Deployment selects another's.
    for deployment in workers.values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert not service["spec"]["selector"].items() <= labels.items()
        assert not server["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for other in workers.values():
            if other is not deployment:
                assert not other["spec"]["selector"]["matchLabels"].items() <= labels.items()
    notes = Renderer(CHART, values).render_notes()
    assert "kubectl create secret generic batch-token --from-literal=kt=kt_..." in notes


def test_a_zero_grace_is_kept_and_the_server_url_can_point_elsewhere() -> None:
    docs = _render_all(
        _values(
            workers=[_worker(grace=0, replicas=0, serverUrl="https://kitaru.acme.dev",
                             imagePullSecrets=[{"name": "acme-registry"}],
                             podSecurityContext={"runAsNonRoot": True, "runAsUser": 2000})],
            imagePullSecrets=[{"name": "server-registry"}],
        )
    )  # fmt: skip
    worker = _workers(docs)["agents"]
    pod = worker["spec"]["template"]["spec"]
    assert "--grace=0" in _container(worker)["args"]
    assert pod["terminationGracePeriodSeconds"] == 15
    assert worker["spec"]["replicas"] == 0
    assert _env(_container(worker))["KITARU_SERVER_URL"] == "https://kitaru.acme.dev"
    assert pod["imagePullSecrets"] == [{"name": "acme-registry"}]
    assert pod["securityContext"]["runAsUser"] == 2000


def test_the_rendered_arguments_are_kitaru_worker_options() -> None:
    import click
    import typer.main

    from kitaru.cli import app

    docs = _render_all(
        _values(workers=[_worker(flows=["a.flows", "scripts/b.py:review"], queues=["gpu-batch"],
                                 concurrency=4, grace=45)])
    )  # fmt: skip
    container = _container(_workers(docs)["agents"])
    assert container["command"] == ["python", "-m", "kitaru", "worker"]
    cli = typer.main.get_command(app)
    parent = click.Context(cli, info_name="kitaru")
    worker = cli.get_command(parent, "worker")
    params = worker.make_context("worker", list(container["args"]), parent=parent).params
    assert params["flows"] == ("a.flows", "scripts/b.py:review")
    assert params["queue"] == ("gpu-batch",)
    assert params["concurrency"] == 4 and params["grace"] == 45


def test_the_flow_image_fits_the_worker_deployment() -> None:
    from kitaru_builders import dockerfile
    from kitaru_builders._docker import PROJECT_DIR, VENV

    text = dockerfile("python:3.11-slim", False, "flow")
    docs = _render_all(_values(workers=[_worker()]))
    container = _container(_workers(docs)["agents"])
    assert f"WORKDIR {PROJECT_DIR}" in text and container["workingDir"] == PROJECT_DIR
    # `python` is the image's virtualenv, which holds the project's locked requirements.
    assert f"ENV PATH={VENV}/bin:" in text
    # The flow recipe has no entrypoint that would take the worker's command as arguments.
    assert "ENTRYPOINT" not in text
    # Nothing is written next to the code on a read-only root filesystem.
    assert "PYTHONDONTWRITEBYTECODE=1" in text


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"flows": None}, "flows"),
        ({"flows": []}, "flows"),
        ({"apiToken": None}, "apiToken"),
        ({"apiToken": {"existingSecret": ""}}, "existingSecret"),
        # A literal token never sits in values, under any name.
        ({"apiToken": "kt_abcdef"}, "apiToken"),
        ({"apiToken": {"existingSecret": "s", "value": "kt_abcdef"}}, "value"),
        ({"token": "kt_abcdef"}, "token"),
        ({"env": [{"name": "KITARU_API_TOKEN", "value": "kt_abcdef"}]}, "KITARU_API_TOKEN"),
        ({"image": {"repository": "registry.acme.dev/kitaru/agents", "tag": "latest"}}, "digest"),
        ({"image": {"repository": "r", "digest": "sha256:short"}}, "digest"),
        ({"queues": ["no spaces"]}, "queues"),
        ({"name": "Agents_1"}, "name"),
        ({"concurrency": 0}, "concurrency"),
        ({"grace": -1}, "grace"),
    ],
)
def test_bad_worker_values_are_refused_by_the_schema(change: dict[str, Any], field: str) -> None:
    worker = _worker()
    for key, value in change.items():
        if value is None:
            del worker[key]
        else:
            worker[key] = value
    schema = json.loads((CHART / "values.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError) as caught:
        jsonschema.validate(_values(workers=[worker]), schema)
    error = caught.value
    assert field in f"{error.message} {list(error.absolute_path)}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"flows": []}, r"workers: agents needs flows \(pkg\.module or pkg\.module:flow"),
        ({"apiToken": {"existingSecret": ""}},
         r"workers: agents needs apiToken\.existingSecret, a Secret holding a write-scope token"),
        ({"image": {"repository": "r", "digest": ""}}, r"workers: agents needs image\.digest"),
    ],
)  # fmt: skip
def test_bad_worker_values_fail_the_render_with_the_setting_named(
    change: dict[str, Any], message: str
) -> None:
    # What `helm template --skip-schema-validation` would still catch.
    with pytest.raises(TemplateError, match=message):
        Renderer(CHART, _values(workers=[_worker(**change)])).render()


def test_the_renderer_follows_helm_where_the_worker_template_relies_on_it(tmp_path: Any) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "Chart.yaml").write_text("name: t\nversion: 0.1.0\n")
    (tmp_path / "templates" / "t.yaml").write_text(
        '{{- range .Values.items }}{{ if hasKey . "n" }}{{ .n }}{{ else }}d{{ end }},'
        '{{ .n | default 7 }},{{ add (include "x" .) 1 }};{{ else }}none{{ end }}'
        '{{- define "x" }}{{ if hasKey . "n" }}{{ .n }}{{ else }}30{{ end }}{{ end }}'
    )
    render = lambda values: Renderer(tmp_path, values).render()["t.yaml"]  # noqa: E731
    # `default` takes 0 for unset (Helm's emptiness); `hasKey` keeps it.
    assert render({"items": [{"n": 0}, {}]}) == "0,7,1;d,7,31;"
    assert render({"items": []}) == "none"
    (tmp_path / "templates" / "t.yaml").write_text("{{ .Values.missing.field }}")
    with pytest.raises(TemplateError, match="nil pointer evaluating"):
        render({})
    (tmp_path / "templates" / "t.yaml").write_text("{{ if 1 }}{{ else if 2 }}{{ end }}")
    with pytest.raises(TemplateError, match="not supported"):
        render({})


def test_the_documented_worker_values_render() -> None:
    text = (REPO / "docs" / "server.md").read_text()
    block = text.split("```yaml\n# values-prod.yaml\n", 1)[1].split("```", 1)[0]
    # The docs shorten digests; any full one stands for them.
    workers = yaml.safe_load(re.sub(r"sha256:[0-9a-f]+\.\.\.", DIGEST, block))["workers"]
    docs = _render_all(_values(workers=workers))
    rendered = _workers(docs)
    assert set(rendered) == {w["name"] for w in workers} == {"support", "batch"}
    assert _container(rendered["batch"])["args"] == [
        "--flows=batch.jobs:nightly", "--queue=batch", "--concurrency=8", "--grace=30"
    ]  # fmt: skip
    support = rendered["support"]["spec"]["template"]["spec"]
    assert support["terminationGracePeriodSeconds"] == 75


def test_a_service_monitor_scrapes_metrics_of_the_service_with_a_read_token() -> None:
    docs = _render(
        _values(metrics={"interval": 60, "serviceMonitor": {
            "enabled": True, "tokenSecret": "kitaru-prometheus", "tokenKey": "token",
            "interval": "30s", "labels": {"release": "prometheus"}}})
    )  # fmt: skip
    assert set(docs) == {"Deployment", "Service", "ServiceMonitor"}
    monitor, service = docs["ServiceMonitor"], docs["Service"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    assert {p["name"] for p in service["spec"]["ports"]} == {endpoint["port"]}
    assert endpoint == {
        "port": "http",
        "path": "/metrics",
        "interval": "30s",
        "authorization": {
            "type": "Bearer",
            "credentials": {"name": "kitaru-prometheus", "key": "token"},
        },
    }
    [container] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert "--metrics-interval=60" in container["args"]


def test_metrics_defaults_render_no_monitor_and_the_default_interval() -> None:
    docs = _render(_values())
    [container] = docs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert "--metrics-interval=30" in container["args"] and "ServiceMonitor" not in docs
    with pytest.raises(TemplateError, match=r"metrics\.serviceMonitor\.tokenSecret is required"):
        Renderer(CHART, _values(metrics={"serviceMonitor": {"enabled": True}})).render()
    schema = json.loads((CHART / "values.schema.json").read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_values(metrics={"serviceMonitor": {"interval": "often"}}), schema)
