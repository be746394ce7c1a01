"""Every permission the infrastructure programs grant, as data.

The programs build their policies, roles and RBAC rules from these constants, the tests
assert on them, and docs/infrastructure.md lists them, so an orchestrator that needs one
more call shows up as a change here, in one reviewable place.

Two identities per cloud:
- the *job* identity: what the execution's container runs as. It reads and writes
  artifacts and (where the platform needs it) pulls its image and writes logs. It never
  submits, inspects or cancels jobs: a resumed wait is re-submitted by whoever answers it.
- the *orchestrator* permission set: what the machine that runs `kitaru` (a laptop, CI,
  the Kitaru server) needs to submit a job per execution, read its status and logs, and
  cancel it. The programs create it (an IAM policy, a custom role, an RBAC Role) but bind
  it only inside Kubernetes; binding it to your people and CI is yours to decide.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RbacRule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]


# -- Kubernetes -----------------------------------------------------------------------
# submit = create a batch/v1 Job; status = get/list/watch the Job and get/list its pods
# (the Job's status does not say why a pod is stuck, e.g. an image that cannot be pulled);
# logs = get pods/log; cancel = delete the Job (the garbage collector removes its pods, so
# no pod delete is needed); a Job without pods = list events (the Job controller's
# FailedCreate warning says why, e.g. a missing ServiceAccount).
K8S_ORCHESTRATOR_RULES: tuple[RbacRule, ...] = (
    RbacRule(("batch",), ("jobs",), ("create", "get", "list", "watch", "delete")),
    RbacRule(("",), ("pods",), ("get", "list")),
    RbacRule(("",), ("pods/log",), ("get",)),
    RbacRule(("",), ("events",), ("list",)),
)
K8S_JOURNAL_SECRET_KEY = "url"

# -- AWS ------------------------------------------------------------------------------
# Job role (the container's credentials): the artifact store contract is write, read,
# exists, list and delete; a multipart upload killed halfway must be abortable.
AWS_JOB_OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
)
AWS_JOB_BUCKET_ACTIONS = ("s3:ListBucket",)
# With a customer KMS key, reading and writing objects needs the key too.
AWS_KMS_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
# Execution role (used by Fargate before the container starts): pull the image, send the
# container's output to the log group, fetch the journal secret into the environment.
AWS_ECR_AUTH_ACTIONS = ("ecr:GetAuthorizationToken",)  # has no resource-level form
AWS_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
AWS_LOG_WRITE_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
AWS_SECRET_READ_ACTIONS = ("secretsmanager:GetSecretValue",)
# Orchestrator policy: register one job definition per image (named with the stack's
# prefix), submit to the queue, describe jobs (no resource-level form), read the job's log
# stream, terminate (cancels jobs that have not started, stops running ones), and pass the
# two roles to the job definition.
AWS_ORCHESTRATOR_JOBDEF_ACTIONS = ("batch:RegisterJobDefinition", "batch:DeregisterJobDefinition")
AWS_ORCHESTRATOR_SUBMIT_ACTIONS = ("batch:SubmitJob",)
AWS_ORCHESTRATOR_DESCRIBE_ACTIONS = ("batch:DescribeJobs", "batch:DescribeJobDefinitions")
AWS_ORCHESTRATOR_CANCEL_ACTIONS = ("batch:TerminateJob",)
AWS_ORCHESTRATOR_LOG_ACTIONS = ("logs:GetLogEvents",)
AWS_PASS_ROLE_ACTIONS = ("iam:PassRole",)
# Builder policy: push an image, and look a digest up before building (same hash, no build).
AWS_PUSH_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)

# -- GCP ------------------------------------------------------------------------------
# Job service account: objects in the artifact bucket only (objectUser: create, read,
# list, delete; a retried write replaces an object, which needs delete). Cloud Run pulls
# the image and ships stdout to Cloud Logging with its own service agent, so the job's
# account needs no registry or logging role.
GCP_JOB_BUCKET_ROLE = "roles/storage.objectUser"
GCP_JOB_SECRET_ROLE = "roles/secretmanager.secretAccessor"
# Orchestrator custom role: a Cloud Run Job per image, run with per-execution overrides,
# poll the execution and its long-running operation, cancel it, read its logs.
GCP_ORCHESTRATOR_PERMISSIONS = (
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
)
# Creating a job that runs as the job's service account also needs `actAs` on that one
# account; grant roles/iam.serviceAccountUser on it rather than adding actAs to the
# project-wide role.
GCP_ORCHESTRATOR_ACT_AS_ROLE = "roles/iam.serviceAccountUser"
GCP_BUILDER_ROLE = "roles/artifactregistry.writer"
GCP_APIS = (
    "artifactregistry.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
)
GCP_SECRET_API = "secretmanager.googleapis.com"

# -- Azure ----------------------------------------------------------------------------
# Built-in role definition ids (the same in every tenant).
AZURE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
AZURE_ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
AZURE_ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
# Job identity: blob data in the artifact container only, pull from the registry only.
AZURE_JOB_ROLES = (
    ("artifacts", AZURE_BLOB_DATA_CONTRIBUTOR),
    ("registry", AZURE_ACR_PULL),
)
# Orchestrator custom role, scoped to the stack's resource group: create or update a
# Container Apps job per image in the environment with the job identity attached, start
# an execution with a per-execution template, read executions, stop one, delete jobs no
# longer used, and query the environment's Log Analytics workspace for logs.
AZURE_ORCHESTRATOR_ACTIONS = (
    "Microsoft.App/jobs/read",
    "Microsoft.App/jobs/write",
    "Microsoft.App/jobs/delete",
    "Microsoft.App/jobs/start/action",
    "Microsoft.App/jobs/stop/action",
    "Microsoft.App/jobs/executions/read",
    "Microsoft.App/managedEnvironments/read",
    "Microsoft.App/managedEnvironments/join/action",
    "Microsoft.ManagedIdentity/userAssignedIdentities/assign/action",
    "Microsoft.OperationalInsights/workspaces/read",
    "Microsoft.OperationalInsights/workspaces/query/read",
)
