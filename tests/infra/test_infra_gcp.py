"""The gcp_cloud_run program on Pulumi's mocks."""

from __future__ import annotations

import pytest
from infra_mocks import Recorded, run_program
from kitaru_infra import OUTPUTS, Flavor, InfraConfigError, config_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROJECT = "acme-agents"


@pytest.fixture(scope="module")
def default() -> Recorded:
    return run_program("gcp_cloud_run", {"project": PROJECT})


def test_enables_the_apis_and_never_disables_them(default: Recorded) -> None:
    services = default.of_type("gcp:projects/service:Service")
    assert sorted(s.inputs["service"] for s in services) == [
        "artifactregistry.googleapis.com",
        "iam.googleapis.com",
        "logging.googleapis.com",
        "run.googleapis.com",
        "storage.googleapis.com",
    ]
    assert all(s.inputs["disableOnDestroy"] is False for s in services)
    assert all(s.inputs["project"] == PROJECT for s in services)


def test_bucket_is_private_uniform_and_versioned(default: Recorded) -> None:
    bucket = default.one("gcp:storage/bucket:Bucket").inputs
    assert bucket["uniformBucketLevelAccess"] is True
    assert bucket["publicAccessPrevention"] == "enforced"
    assert bucket["versioning"] == {"enabled": True}
    assert bucket["location"] == "US-CENTRAL1"
    assert bucket["forceDestroy"] is False
    assert "encryption" not in bucket  # Google-managed keys unless a KMS key is named
    (rule,) = bucket["lifecycleRules"]
    assert rule["action"] == {"type": "Delete"}
    assert rule["condition"]["daysSinceNoncurrentTime"] == 30


def test_registry_is_docker_with_immutable_tags(default: Recorded) -> None:
    repo = default.one("gcp:artifactregistry/repository:Repository").inputs
    assert repo["format"] == "DOCKER"
    assert repo["dockerConfig"] == {"immutableTags": True}
    assert repo["location"] == "us-central1"
    assert repo["repositoryId"] == "kitaru-images"


def test_job_service_account_has_only_object_access_to_the_bucket(default: Recorded) -> None:
    account = default.one("gcp:serviceaccount/account:Account").inputs
    assert account["accountId"] == "kitaru-job"
    member = f"serviceAccount:kitaru-job@{PROJECT}.iam.gserviceaccount.com"
    (grant,) = default.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")
    assert grant.inputs == {
        "bucket": default.outputs["bucket"],
        "role": "roles/storage.objectUser",
        "member": member,
    }
    # No project-level grant for the job: nothing else in the project is reachable.
    assert not default.of_type("gcp:projects/iAMMember:IAMMember")
    assert not default.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")


def test_orchestrator_role_lists_exactly_the_run_and_logging_permissions(default: Recorded) -> None:
    role = default.one("gcp:projects/iAMCustomRole:IAMCustomRole").inputs
    assert role["roleId"] == "kitaruOrchestrator"
    assert role["permissions"] == [
        "logging.logEntries.list",
        "run.executions.cancel",
        "run.executions.get",
        "run.executions.list",
        "run.jobs.create",
        "run.jobs.get",
        "run.jobs.run",
        "run.jobs.runWithOverrides",
        "run.jobs.update",
        "run.operations.get",
    ]
    assert not any("actAs" in p for p in role["permissions"])


def test_outputs_have_their_stable_names(default: Recorded) -> None:
    assert list(default.outputs) == list(OUTPUTS[Flavor.GCP_CLOUD_RUN])
    assert default.outputs == {
        "artifact_store": "gs://kitaru-artifacts-5e1d",
        "bucket": "kitaru-artifacts-5e1d",
        "registry": f"us-central1-docker.pkg.dev/{PROJECT}/kitaru-images",
        "project": PROJECT,
        "region": "us-central1",
        "service_account": f"kitaru-job@{PROJECT}.iam.gserviceaccount.com",
        "journal_secret": None,
        "orchestrator_role": f"projects/{PROJECT}/roles/kitaruOrchestrator",
    }


def test_journal_secret_kms_key_and_region() -> None:
    key = f"projects/{PROJECT}/locations/europe-west4/keyRings/k/cryptoKeys/artifacts"
    recorded = run_program(
        "gcp_cloud_run",
        {
            "project": PROJECT,
            "region": "europe-west4",
            "name_prefix": "agents-eu",
            "kms_key_name": key,
            "journal_secret": "kitaru-journal-url",
        },
    )
    apis = {s.inputs["service"] for s in recorded.of_type("gcp:projects/service:Service")}
    assert "secretmanager.googleapis.com" in apis
    (secret,) = recorded.of_type("gcp:secretmanager/secretIamMember:SecretIamMember")
    assert secret.inputs["secretId"] == "kitaru-journal-url"
    assert secret.inputs["role"] == "roles/secretmanager.secretAccessor"
    assert (
        secret.inputs["member"] == f"serviceAccount:agents-eu-job@{PROJECT}.iam.gserviceaccount.com"
    )
    bucket = recorded.one("gcp:storage/bucket:Bucket").inputs
    assert bucket["encryption"] == {"defaultKmsKeyName": key}
    assert bucket["location"] == "EUROPE-WEST4"
    role = recorded.one("gcp:projects/iAMCustomRole:IAMCustomRole").inputs
    assert role["roleId"] == "agentsEuOrchestrator"
    assert recorded.outputs["registry"] == f"europe-west4-docker.pkg.dev/{PROJECT}/agents-eu-images"


def test_project_is_required() -> None:
    with pytest.raises(InfraConfigError, match=r"gcp_cloud_run: setting 'project' is required"):
        config_for("gcp_cloud_run", {})
