"""The kubernetes program on Pulumi's mocks."""

from __future__ import annotations

import pytest
from infra_mocks import Recorded, run_program
from kitaru_infra import OUTPUTS, Flavor

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
ACCOUNT = "kubernetes:core/v1:ServiceAccount"
SECRET = "kubernetes:core/v1:Secret"
# What Pulumi puts in place of a value marked secret.
SECRET_SIG = "4dabf18193072939515e22adb298388d"


@pytest.fixture(scope="module")
def default() -> Recorded:
    return run_program("kubernetes")


def test_role_allows_exactly_the_job_operations(default: Recorded) -> None:
    role = default.one(ROLE).inputs
    assert role["metadata"]["namespace"] == "kitaru"
    assert role["rules"] == [
        {
            "apiGroups": ["batch"],
            "resources": ["jobs"],
            "verbs": ["create", "get", "list", "watch", "delete"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
    ]
    assert not default.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole")
    assert not default.of_type("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding")


def test_role_is_bound_to_the_orchestrator_account_only(default: Recorded) -> None:
    binding = default.one(BINDING).inputs
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "kitaru-orchestrator",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "kitaru-orchestrator", "namespace": "kitaru"}
    ]


def test_execution_pods_get_no_api_token(default: Recorded) -> None:
    job = default.one(ACCOUNT, "kitaru-job").inputs
    assert job["automountServiceAccountToken"] is False
    assert job["metadata"]["namespace"] == "kitaru"
    namespace = default.one("kubernetes:core/v1:Namespace").inputs
    assert namespace["metadata"]["name"] == "kitaru"


def test_without_a_journal_url_no_secret_is_created_but_its_reference_is_exported(
    default: Recorded,
) -> None:
    assert not default.of_type(SECRET)
    assert list(default.outputs) == list(OUTPUTS[Flavor.KUBERNETES])
    assert default.outputs == {
        "namespace": "kitaru",
        "service_account": "kitaru-job",
        "orchestrator_service_account": "kitaru-orchestrator",
        "orchestrator_role": "kitaru-orchestrator",
        "journal_secret": "kitaru-journal",
        "journal_secret_key": "url",
    }


def test_journal_url_is_stored_as_a_secret_in_state_and_cluster() -> None:
    url = "postgresql://kitaru:s3cret@db.internal:5432/kitaru"
    recorded = run_program(
        "kubernetes",
        {
            "journal_url": url,
            "namespace": "agents",
            "create_namespace": False,
            "name_prefix": "kx",
            "journal_secret_name": "journal",
        },
    )
    assert not recorded.of_type("kubernetes:core/v1:Namespace")
    secret = recorded.one(SECRET).inputs
    assert secret["type"] == "Opaque"
    assert secret["metadata"]["name"] == "journal"
    assert secret["metadata"]["namespace"] == "agents"
    # The value reaches the engine wrapped as a secret, so the state encrypts it.
    assert secret["stringData"][SECRET_SIG]
    assert secret["stringData"]["value"] == {"url": url}
    assert recorded.outputs["journal_secret"] == "journal"
    assert recorded.outputs["service_account"] == "kx-job"
    assert recorded.outputs["namespace"] == "agents"
    assert url not in repr(recorded.outputs)
