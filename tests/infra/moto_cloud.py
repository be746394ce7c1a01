"""moto as the cloud behind Pulumi's mocks: the aws_batch program's resources are created
for real in moto's server, from the inputs the program declares.

`run_mocked(program, MotoCloud(...))` runs the real program; every resource it registers
reaches `resource()` with the inputs the engine would send to AWS, and is created through
boto3 in moto (the bucket with its versioning, encryption, public access block and policy;
the roles with their trust and inline policies; the managed policies; the security group
in moto's default VPC; the Fargate compute environment and the job queue). What comes back
is what AWS would report (names, ARNs), so the program's outputs point at moto.

Where moto and AWS differ, the test stands in, and says so:
- moto insists on a service role for a compute environment; AWS uses its service-linked
  role when none is given (which the program relies on), so one is made here;
- moto's ECR has no registry behind its API, so the repository URL is a path in the local
  registry (scripts/services/docker.sh) with the repository's name;
- moto's Batch writes every job's output to the log group /aws/batch/job, so that is the
  log group's name here;
- the bucket policy refuses plain HTTP and moto enforces it, but moto's server speaks
  only HTTP: the test checks the refusal, then removes the policy.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

MOTO_LOG_GROUP = "/aws/batch/job"
REGION = "us-east-1"


class MotoCloud:
    def __init__(self, endpoint: str, registry: str) -> None:
        import boto3

        kw: dict[str, Any] = {
            "endpoint_url": endpoint,
            "region_name": REGION,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        self.registry = registry
        self.suffix = uuid.uuid4().hex[:8]
        self.s3 = boto3.client("s3", **kw)
        self.iam = boto3.client("iam", **kw)
        self.ec2 = boto3.client("ec2", **kw)
        self.batch = boto3.client("batch", **kw)
        self.logs = boto3.client("logs", **kw)
        self.account = boto3.client("sts", **kw).get_caller_identity()["Account"]
        self.created: list[tuple[str, str]] = []
        self._service_role: str | None = None

    def _name(self, name: str) -> str:
        # Pulumi's auto-naming: the logical name plus a random suffix.
        return f"{name}-{self.suffix}"

    def resource(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        made = self._create(typ, name, inputs)
        self.created.append((typ, made[0]))
        return made[0], {**inputs, **made[1]}

    def _create(self, typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if typ == "aws:s3/bucket:Bucket":
            bucket = self._name(name)
            self.s3.create_bucket(Bucket=bucket)
            return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        if typ == "aws:s3/bucketVersioning:BucketVersioning":
            status = inputs["versioningConfiguration"]["status"]
            self.s3.put_bucket_versioning(
                Bucket=inputs["bucket"], VersioningConfiguration={"Status": status}
            )
        elif typ == "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock":
            flags = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy")
            config = {f: bool(inputs[f[0].lower() + f[1:]]) for f in flags}
            config["RestrictPublicBuckets"] = bool(inputs["restrictPublicBuckets"])
            self.s3.put_public_access_block(
                Bucket=inputs["bucket"], PublicAccessBlockConfiguration=config
            )
        elif (
            typ == "aws:s3/bucketServerSideEncryptionConfiguration:"
            "BucketServerSideEncryptionConfiguration"
        ):
            rules = [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": r["applyServerSideEncryptionByDefault"]["sseAlgorithm"]
                    },
                    "BucketKeyEnabled": bool(r.get("bucketKeyEnabled")),
                }
                for r in inputs["rules"]
            ]
            self.s3.put_bucket_encryption(
                Bucket=inputs["bucket"], ServerSideEncryptionConfiguration={"Rules": rules}
            )
        elif typ == "aws:s3/bucketPolicy:BucketPolicy":
            self.s3.put_bucket_policy(Bucket=inputs["bucket"], Policy=inputs["policy"])
        elif typ == "aws:ecr/repository:Repository":
            return name, {
                "arn": f"arn:aws:ecr:{REGION}:{self.account}:repository/{name}",
                "repositoryUrl": f"{self.registry}/{name}",
            }
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            try:
                self.logs.create_log_group(logGroupName=MOTO_LOG_GROUP)
            except self.logs.exceptions.ResourceAlreadyExistsException:
                pass
            arn = f"arn:aws:logs:{REGION}:{self.account}:log-group:{MOTO_LOG_GROUP}"
            return MOTO_LOG_GROUP, {"name": MOTO_LOG_GROUP, "arn": arn}
        elif typ == "aws:iam/role:Role":
            role = self._name(name)
            arn = self.iam.create_role(
                RoleName=role,
                AssumeRolePolicyDocument=inputs["assumeRolePolicy"],
                Description=inputs.get("description", ""),
            )["Role"]["Arn"]
            return role, {"name": role, "arn": arn}
        elif typ == "aws:iam/rolePolicy:RolePolicy":
            self.iam.put_role_policy(
                RoleName=inputs["role"], PolicyName=name, PolicyDocument=inputs["policy"]
            )
        elif typ == "aws:iam/policy:Policy":
            arn = self.iam.create_policy(
                PolicyName=self._name(name), PolicyDocument=inputs["policy"]
            )["Policy"]["Arn"]
            return arn, {"arn": arn}
        elif typ == "aws:ec2/securityGroup:SecurityGroup":
            group = self.ec2.create_security_group(
                GroupName=self._name(name),
                Description=inputs["description"],
                VpcId=inputs["vpcId"],
            )["GroupId"]
            return group, {"id": group}
        elif typ == "aws:batch/computeEnvironment:ComputeEnvironment":
            resources = inputs["computeResources"]
            arn = self.batch.create_compute_environment(
                computeEnvironmentName=self._name(name),
                type=inputs["type"],
                state=inputs["state"],
                computeResources={
                    "type": resources["type"],
                    "maxvCpus": int(resources["maxVcpus"]),
                    "subnets": resources["subnets"],
                    "securityGroupIds": resources["securityGroupIds"],
                },
                serviceRole=self._moto_service_role(),
            )["computeEnvironmentArn"]
            return arn, {"arn": arn}
        elif typ == "aws:batch/jobQueue:JobQueue":
            arn = self.batch.create_job_queue(
                jobQueueName=self._name(name),
                state=inputs["state"],
                priority=int(inputs["priority"]),
                computeEnvironmentOrder=[
                    {"order": int(o["order"]), "computeEnvironment": o["computeEnvironment"]}
                    for o in inputs["computeEnvironmentOrders"]
                ],
            )["jobQueueArn"]
            return arn, {"arn": arn}
        return f"{name}-id", {}

    def _moto_service_role(self) -> str:
        if self._service_role is None:
            self._service_role = self.iam.create_role(
                RoleName=f"moto-batch-service-{self.suffix}",
                AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
            )["Role"]["Arn"]
        return self._service_role

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        if token == "aws:ec2/getVpc:getVpc":
            vpc = self.ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])[
                "Vpcs"
            ][0]
            return {"id": vpc["VpcId"], "default": True, "cidrBlock": vpc["CidrBlock"]}
        if token == "aws:ec2/getSubnets:getSubnets":
            vpc_ids = [v for f in args.get("filters", []) for v in f["values"]]
            subnets = self.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": vpc_ids}])
            return {"id": REGION, "ids": [s["SubnetId"] for s in subnets["Subnets"]]}
        return {}
