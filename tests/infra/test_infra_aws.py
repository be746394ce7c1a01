"""The aws_batch program on Pulumi's mocks: what it creates and the exact permissions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from infra_mocks import ACCOUNT, REGION, Recorded, run_program
from kitaru_infra import OUTPUTS, Flavor

# The provider packages warn about their own deprecated classes when imported.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KMS = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:journal-AbC"


@pytest.fixture(scope="module")
def default() -> Recorded:
    return run_program("aws_batch")


def _statements(resource: Any) -> dict[str, dict[str, Any]]:
    doc = json.loads(resource.inputs["policy"])
    assert doc["Version"] == "2012-10-17"
    return {s["Sid"]: s for s in doc["Statement"]}


def test_creates_every_resource_the_orchestrator_needs(default: Recorded) -> None:
    assert default.types() == {
        "kitaru:infra:AwsBatch",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:ecr/repository:Repository",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/policy:Policy",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:batch/computeEnvironment:ComputeEnvironment",
        "aws:batch/jobQueue:JobQueue",
    }
    # No account-wide or service-wide role is created: Batch uses its service-linked role.
    # (Pulumi registers resources concurrently: compare as a set.)
    assert {r.name for r in default.of_type("aws:iam/role:Role")} == {
        "kitaru-job",
        "kitaru-execution",
    }


def test_bucket_is_private_versioned_and_encrypted(default: Recorded) -> None:
    block = default.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert block["bucket"] == default.outputs["bucket"]
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[flag] is True, flag
    ownership = default.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    versioning = default.one("aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    sse = default.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    assert sse["rules"] == [
        {
            "applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
            "bucketKeyEnabled": False,
        }
    ]
    lifecycle = default.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    (rule,) = lifecycle.inputs["rules"]
    assert rule["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert rule["status"] == "Enabled"
    (deny,) = json.loads(default.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])[
        "Statement"
    ]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # Deleting the stack keeps artifacts unless asked.
    assert default.one("aws:s3/bucket:Bucket").inputs["forceDestroy"] is False


def test_repository_has_immutable_tags_and_scans_on_push(default: Recorded) -> None:
    repo = default.one("aws:ecr/repository:Repository").inputs
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repo["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    assert repo["forceDelete"] is False


def test_job_role_reaches_only_the_artifact_bucket(default: Recorded) -> None:
    role = default.one("aws:iam/role:Role", "kitaru-job").inputs
    trust = json.loads(role["assumeRolePolicy"])["Statement"]
    assert trust == [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
        }
    ]
    bucket_arn = f"arn:aws:s3:::{default.outputs['bucket']}"
    statements = _statements(default.one("aws:iam/rolePolicy:RolePolicy", "kitaru-job"))
    assert statements == {
        "ArtifactObjects": {
            "Sid": "ArtifactObjects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
            ],
            "Resource": f"{bucket_arn}/*",
        },
        "ArtifactList": {
            "Sid": "ArtifactList",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": bucket_arn,
        },
    }


def test_execution_role_pulls_from_this_repo_and_logs_to_this_group(default: Recorded) -> None:
    statements = _statements(default.one("aws:iam/rolePolicy:RolePolicy", "kitaru-execution"))
    log_streams = (
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{default.outputs['log_group']}:log-stream:*"
    )
    assert {sid: (s["Action"], s["Resource"]) for sid, s in statements.items()} == {
        "RegistryLogin": (["ecr:GetAuthorizationToken"], "*"),
        "PullImage": (
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/kitaru-images",
        ),
        "WriteLogs": (["logs:CreateLogStream", "logs:PutLogEvents"], log_streams),
    }


def test_orchestrator_policy_allows_submit_status_logs_cancel_only(default: Recorded) -> None:
    policy = default.one("aws:iam/policy:Policy", "kitaru-orchestrator")
    statements = _statements(policy)
    base = f"arn:aws:batch:{REGION}:{ACCOUNT}"
    job_definitions = f"{base}:job-definition/kitaru-*"
    assert {sid: (s["Action"], s["Resource"]) for sid, s in statements.items()} == {
        "JobDefinitions": (
            ["batch:RegisterJobDefinition", "batch:DeregisterJobDefinition"],
            job_definitions,
        ),
        "Submit": (["batch:SubmitJob"], [f"{base}:job-queue/kitaru-queue", job_definitions]),
        "Describe": (["batch:DescribeJobs", "batch:DescribeJobDefinitions"], "*"),
        "Cancel": (["batch:TerminateJob"], f"{base}:job/*"),
        "ReadLogs": (
            ["logs:GetLogEvents"],
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{default.outputs['log_group']}:log-stream:*",
        ),
        "PassRoles": (
            ["iam:PassRole"],
            [
                f"arn:aws:iam::{ACCOUNT}:role/kitaru-job",
                f"arn:aws:iam::{ACCOUNT}:role/kitaru-execution",
            ],
        ),
    }
    builder = _statements(default.one("aws:iam/policy:Policy", "kitaru-builder"))
    assert "ecr:PutImage" in builder["PushImage"]["Action"]
    assert builder["PushImage"]["Resource"].endswith(":repository/kitaru-images")
    # Nothing anywhere is granted with a wildcard action.
    for resource in default.of_type("aws:iam/policy:Policy") + default.of_type(
        "aws:iam/rolePolicy:RolePolicy"
    ):
        for statement in _statements(resource).values():
            assert all("*" not in action for action in statement["Action"]), statement


def test_fargate_compute_in_the_default_vpc_with_an_egress_only_group(default: Recorded) -> None:
    compute = default.one("aws:batch/computeEnvironment:ComputeEnvironment").inputs
    assert compute["type"] == "MANAGED"
    assert "serviceRole" not in compute
    assert compute["computeResources"] == {
        "type": "FARGATE",
        "maxVcpus": 16,
        "subnets": ["subnet-a1", "subnet-b2"],
        "securityGroupIds": ["sg-kitaru-jobs"],
    }
    group = default.one("aws:ec2/securityGroup:SecurityGroup").inputs
    assert group["vpcId"] == "vpc-0default"
    assert "ingress" not in group
    queue = default.one("aws:batch/jobQueue:JobQueue").inputs
    assert queue["state"] == "ENABLED"
    assert queue["computeEnvironmentOrders"] == [
        {
            "order": 1,
            "computeEnvironment": f"arn:aws:batch:{REGION}:{ACCOUNT}:compute-environment/kitaru-compute",
        }
    ]
    assert default.one("aws:cloudwatch/logGroup:LogGroup").inputs["retentionInDays"] == 30
    assert default.invokes == ["aws:ec2/getVpc:getVpc", "aws:ec2/getSubnets:getSubnets"]


def test_outputs_have_their_stable_names(default: Recorded) -> None:
    assert list(default.outputs) == list(OUTPUTS[Flavor.AWS_BATCH])
    assert default.outputs == {
        "artifact_store": "s3://kitaru-artifacts-8c2f1a",
        "bucket": "kitaru-artifacts-8c2f1a",
        "registry": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/kitaru-images",
        "region": "us-east-1",
        "job_queue": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/kitaru-queue",
        "job_definition_prefix": "kitaru-",
        "job_role_arn": f"arn:aws:iam::{ACCOUNT}:role/kitaru-job",
        "execution_role_arn": f"arn:aws:iam::{ACCOUNT}:role/kitaru-execution",
        "log_group": "kitaru-jobs-77aa01",
        "subnets": ["subnet-a1", "subnet-b2"],
        "security_groups": ["sg-kitaru-jobs"],
        "assign_public_ip": True,
        "journal_secret": None,
        "orchestrator_policy_arn": f"arn:aws:iam::{ACCOUNT}:policy/kitaru-orchestrator",
        "builder_policy_arn": f"arn:aws:iam::{ACCOUNT}:policy/kitaru-builder",
    }


def test_kms_key_journal_secret_and_own_network() -> None:
    recorded = run_program(
        "aws_batch",
        {
            "name_prefix": "team-a",
            "region": "eu-west-1",
            "subnet_ids": ["subnet-1", "subnet-2"],
            "security_group_ids": ["sg-1"],
            "spot": True,
            "max_vcpus": 64,
            "kms_key_arn": KMS,
            "journal_secret_arn": SECRET,
            "force_destroy": True,
        },
    )
    # Subnets and groups given: no lookup, no group created.
    assert recorded.invokes == []
    assert not recorded.of_type("aws:ec2/securityGroup:SecurityGroup")
    compute = recorded.one("aws:batch/computeEnvironment:ComputeEnvironment").inputs
    assert compute["computeResources"]["type"] == "FARGATE_SPOT"
    assert compute["computeResources"]["maxVcpus"] == 64
    sse = recorded.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs["rules"][0]
    assert sse == {
        "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KMS},
        "bucketKeyEnabled": True,
    }
    job = _statements(recorded.one("aws:iam/rolePolicy:RolePolicy", "team-a-job"))
    assert job["ArtifactKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert job["ArtifactKey"]["Resource"] == KMS
    execution = _statements(recorded.one("aws:iam/rolePolicy:RolePolicy", "team-a-execution"))
    assert execution["JournalSecret"]["Action"] == ["secretsmanager:GetSecretValue"]
    assert execution["JournalSecret"]["Resource"] == SECRET
    assert recorded.one("aws:s3/bucket:Bucket").inputs["forceDestroy"] is True
    assert recorded.one("aws:ecr/repository:Repository").inputs["forceDelete"] is True
    assert recorded.outputs["region"] == "eu-west-1"
    assert recorded.outputs["assign_public_ip"] is False
    assert recorded.outputs["journal_secret"] == SECRET
    assert recorded.outputs["job_definition_prefix"] == "team-a-"
    assert recorded.outputs["subnets"] == ["subnet-1", "subnet-2"]
