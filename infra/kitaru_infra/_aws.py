"""AWS Batch on Fargate: what the `aws_batch` orchestrator and the S3 artifact store need."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from kitaru_infra import _permissions as perms
from kitaru_infra._config import AwsBatchConfig


def _assume_role(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": service}}
            ],
        }
    )


def _policy(*statements: dict[str, Any]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(sid: str, actions: tuple[str, ...], resources: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": resources}


class AwsBatchInfra(pulumi.ComponentResource):
    """S3 bucket, ECR repository, job and execution roles, a Fargate compute environment
    with its job queue, a CloudWatch log group, and the orchestrator and builder policies.
    """

    outputs: dict[str, pulumi.Input[Any]]

    def __init__(
        self, name: str, config: AwsBatchConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("kitaru:infra:AwsBatch", name, None, opts)
        p = config.name_prefix
        tags = config.tags()
        child = pulumi.ResourceOptions(parent=self)

        bucket = self._bucket(config, child)
        repo = aws.ecr.Repository(
            f"{p}-images",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "AES256"}],
            force_delete=config.force_destroy,
            tags=tags,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{p}-jobs", retention_in_days=config.log_retention_days, tags=tags, opts=child
        )
        log_streams = log_group.arn.apply(lambda arn: f"{arn}:log-stream:*")

        job_role = aws.iam.Role(
            f"{p}-job",
            description="Kitaru execution containers: artifacts in the stack's bucket only.",
            assume_role_policy=_assume_role("ecs-tasks.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        job_statements = [
            _allow(
                "ArtifactObjects",
                perms.AWS_JOB_OBJECT_ACTIONS,
                bucket.arn.apply(lambda arn: f"{arn}/*"),
            ),
            _allow("ArtifactList", perms.AWS_JOB_BUCKET_ACTIONS, bucket.arn),
        ]
        if config.kms_key_arn:
            job_statements.append(_allow("ArtifactKey", perms.AWS_KMS_ACTIONS, config.kms_key_arn))
        aws.iam.RolePolicy(
            f"{p}-job", role=job_role.id, policy=_policy(*job_statements), opts=child
        )

        execution_role = aws.iam.Role(
            f"{p}-execution",
            description="Fargate, before a Kitaru job starts: pull its image, write its logs.",
            assume_role_policy=_assume_role("ecs-tasks.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        execution_statements = [
            _allow("RegistryLogin", perms.AWS_ECR_AUTH_ACTIONS, "*"),
            _allow("PullImage", perms.AWS_PULL_ACTIONS, repo.arn),
            _allow("WriteLogs", perms.AWS_LOG_WRITE_ACTIONS, log_streams),
        ]
        if config.journal_secret_arn:
            execution_statements.append(
                _allow("JournalSecret", perms.AWS_SECRET_READ_ACTIONS, config.journal_secret_arn)
            )
        aws.iam.RolePolicy(
            f"{p}-execution",
            role=execution_role.id,
            policy=_policy(*execution_statements),
            opts=child,
        )

        subnets, security_groups = self._network(config, child)
        compute = aws.batch.ComputeEnvironment(
            f"{p}-compute",
            type="MANAGED",
            state="ENABLED",
            # No service_role: Batch then uses its service-linked role, so this stack owns
            # no broad service policy.
            compute_resources={
                "type": "FARGATE_SPOT" if config.spot else "FARGATE",
                "max_vcpus": config.max_vcpus,
                "subnets": subnets,
                "security_group_ids": security_groups,
            },
            tags=tags,
            opts=child,
        )
        queue = aws.batch.JobQueue(
            f"{p}-queue",
            state="ENABLED",
            priority=1,
            compute_environment_orders=[{"order": 1, "compute_environment": compute.arn}],
            tags=tags,
            opts=child,
        )

        # Job definitions and jobs have ARNs in the queue's region and account.
        arn_base = queue.arn.apply(lambda arn: arn.split(":job-queue/")[0])
        job_definitions = arn_base.apply(lambda base: f"{base}:job-definition/{p}-*")
        jobs = arn_base.apply(lambda base: f"{base}:job/*")
        orchestrator_policy = aws.iam.Policy(
            f"{p}-orchestrator",
            description="Run Kitaru executions on this stack: submit, status, logs, cancel.",
            policy=_policy(
                _allow("JobDefinitions", perms.AWS_ORCHESTRATOR_JOBDEF_ACTIONS, job_definitions),
                _allow(
                    "Submit", perms.AWS_ORCHESTRATOR_SUBMIT_ACTIONS, [queue.arn, job_definitions]
                ),
                _allow("Describe", perms.AWS_ORCHESTRATOR_DESCRIBE_ACTIONS, "*"),
                _allow("Cancel", perms.AWS_ORCHESTRATOR_CANCEL_ACTIONS, jobs),
                _allow("ReadLogs", perms.AWS_ORCHESTRATOR_LOG_ACTIONS, log_streams),
                _allow(
                    "PassRoles", perms.AWS_PASS_ROLE_ACTIONS, [job_role.arn, execution_role.arn]
                ),
            ),
            tags=tags,
            opts=child,
        )
        builder_policy = aws.iam.Policy(
            f"{p}-builder",
            description="Push Kitaru deployment images to this stack's repository.",
            policy=_policy(
                _allow("RegistryLogin", perms.AWS_ECR_AUTH_ACTIONS, "*"),
                _allow("PushImage", perms.AWS_PUSH_ACTIONS, repo.arn),
            ),
            tags=tags,
            opts=child,
        )

        self.outputs = {
            "artifact_store": bucket.bucket.apply(lambda name: f"s3://{name}"),
            "bucket": bucket.bucket,
            "registry": repo.repository_url,
            "region": config.region,
            "job_queue": queue.arn,
            "job_definition_prefix": f"{p}-",
            "job_role_arn": job_role.arn,
            "execution_role_arn": execution_role.arn,
            "log_group": log_group.name,
            "subnets": subnets,
            "security_groups": security_groups,
            "assign_public_ip": (
                config.uses_default_vpc
                if config.assign_public_ip is None
                else config.assign_public_ip
            ),
            "journal_secret": config.journal_secret_arn,
            "orchestrator_policy_arn": orchestrator_policy.arn,
            "builder_policy_arn": builder_policy.arn,
        }
        self.register_outputs(self.outputs)

    def _bucket(self, config: AwsBatchConfig, child: pulumi.ResourceOptions) -> Any:
        p = config.name_prefix
        bucket = aws.s3.Bucket(
            f"{p}-artifacts", force_destroy=config.force_destroy, tags=config.tags(), opts=child
        )
        public_block = aws.s3.BucketPublicAccessBlock(
            f"{p}-artifacts",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{p}-artifacts",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{p}-artifacts",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        if config.kms_key_arn:
            default: dict[str, Any] = {
                "sse_algorithm": "aws:kms",
                "kms_master_key_id": config.kms_key_arn,
            }
        else:
            default = {"sse_algorithm": "AES256"}
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{p}-artifacts",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": default,
                    "bucket_key_enabled": config.kms_key_arn is not None,
                }
            ],
            opts=child,
        )
        # Versioning keeps every overwritten or deleted object; without expiry the
        # bucket only grows.
        aws.s3.BucketLifecycleConfiguration(
            f"{p}-artifacts",
            bucket=bucket.id,
            rules=[
                {
                    "id": "expire-old-versions",
                    "status": "Enabled",
                    "filter": {},
                    "noncurrent_version_expiration": {"noncurrent_days": 30},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                }
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{p}-artifacts",
            bucket=bucket.id,
            policy=_policy(
                {
                    "Sid": "DenyPlainHttp",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket.arn, bucket.arn.apply(lambda arn: f"{arn}/*")],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ),
            # S3 rejects a bucket policy while the public access block is being applied.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_block]),
        )
        return bucket

    def _network(
        self, config: AwsBatchConfig, child: pulumi.ResourceOptions
    ) -> tuple[pulumi.Input[list[str]], pulumi.Input[list[str]]]:
        vpc_id: pulumi.Input[str] | None = config.vpc_id
        if vpc_id is None and (not config.subnet_ids or not config.security_group_ids):
            vpc_id = aws.ec2.get_vpc_output(
                default=True, opts=pulumi.InvokeOutputOptions(parent=self)
            ).id
        subnets: pulumi.Input[list[str]]
        if config.subnet_ids:
            subnets = list(config.subnet_ids)
        else:
            subnets = aws.ec2.get_subnets_output(
                filters=[{"name": "vpc-id", "values": [vpc_id]}],
                opts=pulumi.InvokeOutputOptions(parent=self),
            ).ids
        security_groups: pulumi.Input[list[str]]
        if config.security_group_ids:
            security_groups = list(config.security_group_ids)
        else:
            group = aws.ec2.SecurityGroup(
                f"{config.name_prefix}-jobs",
                description="Kitaru jobs: no inbound traffic, outbound to reach the journal, "
                "the artifact store and the registry.",
                vpc_id=vpc_id,
                egress=[
                    {
                        "protocol": "-1",
                        "from_port": 0,
                        "to_port": 0,
                        "cidr_blocks": ["0.0.0.0/0"],
                        "ipv6_cidr_blocks": ["::/0"],
                    }
                ],
                tags=config.tags(),
                opts=child,
            )
            security_groups = [group.id]
        return subnets, security_groups
