"""Run the infrastructure programs against Pulumi's mocks.

`pulumi.runtime.set_mocks` replaces the engine and the cloud: every resource the program
registers reaches `RecordingMocks.new_resource` with its inputs exactly as the engine
would receive them (wire names, camelCase), and gets back the attributes the cloud would
compute (ARNs, URLs, ids). The tests assert on those recorded inputs and on the outputs
the program exports. Nothing here needs the Pulumi CLI or a cloud account.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"
REGION = "us-east-1"
SUBSCRIPTION = "00000000-1111-2222-3333-444444444444"


@dataclass
class Created:
    type: str
    name: str
    inputs: dict[str, Any]


@dataclass
class Recorded:
    resources: list[Created]
    outputs: dict[str, Any]
    invokes: list[str] = field(default_factory=list)
    protected: set[tuple[str, str]] = field(default_factory=set)

    def of_type(self, type_: str) -> list[Created]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> Created:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {type_} {name or ''}, got {found}"
        return found[0]

    def types(self) -> set[str]:
        return {r.type for r in self.resources}


def _aws(typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    if typ == "aws:s3/bucket:Bucket":
        bucket = f"{name}-8c2f1a"
        return bucket, {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
    if typ == "aws:ecr/repository:Repository":
        return name, {
            "arn": arn.format("ecr", f"repository/{name}"),
            "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}",
        }
    if typ == "aws:cloudwatch/logGroup:LogGroup":
        group = f"{name}-77aa01"
        return group, {"name": group, "arn": arn.format("logs", f"log-group:{group}")}
    if typ == "aws:iam/role:Role":
        return name, {"name": name, "arn": f"arn:aws:iam::{ACCOUNT}:role/{name}"}
    if typ == "aws:iam/policy:Policy":
        return name, {"arn": f"arn:aws:iam::{ACCOUNT}:policy/{name}"}
    if typ == "aws:batch/computeEnvironment:ComputeEnvironment":
        return name, {"arn": arn.format("batch", f"compute-environment/{name}")}
    if typ == "aws:batch/jobQueue:JobQueue":
        return name, {"arn": arn.format("batch", f"job-queue/{name}")}
    if typ == "aws:ec2/securityGroup:SecurityGroup":
        return f"sg-{name}", {}
    return f"{name}-id", {}


def _gcp(typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if typ == "gcp:storage/bucket:Bucket":
        return f"{name}-5e1d", {"name": f"{name}-5e1d"}
    if typ == "gcp:serviceaccount/account:Account":
        email = f"{inputs['accountId']}@{inputs['project']}.iam.gserviceaccount.com"
        return email, {
            "email": email,
            "name": f"projects/{inputs['project']}/serviceAccounts/{email}",
        }
    if typ == "gcp:projects/iAMCustomRole:IAMCustomRole":
        role = f"projects/{inputs['project']}/roles/{inputs['roleId']}"
        return role, {"name": role}
    return f"{name}-id", {}


def _azure(typ: str, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    sub = f"/subscriptions/{SUBSCRIPTION}"
    group = f"{sub}/resourceGroups/kitaru-rg4f2e1a"
    kind = typ.rsplit(":", maxsplit=1)[-1]
    if kind == "ResourceGroup":
        return group, {"name": "kitaru-rg4f2e1a"}
    if kind == "StorageAccount":
        account = f"{name}3b9c0d1e"
        return f"{group}/providers/Microsoft.Storage/storageAccounts/{account}", {
            "name": account,
            "primaryEndpoints": {"blob": f"https://{account}.blob.core.windows.net/"},
        }
    if kind == "BlobContainer":
        return (
            f"{group}/providers/Microsoft.Storage/storageAccounts/x/blobServices/default/"
            f"containers/{inputs['containerName']}",
            {"name": inputs["containerName"]},
        )
    if kind == "Registry":
        registry = f"{name}5d6e7f"
        return f"{group}/providers/Microsoft.ContainerRegistry/registries/{registry}", {
            "name": registry,
            "loginServer": f"{registry}.azurecr.io",
        }
    if kind == "Workspace":
        return f"{group}/providers/Microsoft.OperationalInsights/workspaces/{name}", {
            "name": name,
            "customerId": "99999999-8888-7777-6666-555555555555",
        }
    if kind == "UserAssignedIdentity":
        return f"{group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}", {
            "name": name,
            "principalId": "aaaaaaaa-0000-0000-0000-000000000001",
            "clientId": "cccccccc-0000-0000-0000-000000000002",
        }
    if kind == "RoleDefinition":
        return (
            f"{sub}/providers/Microsoft.Authorization/roleDefinitions/{inputs['roleDefinitionId']}",
            {},
        )
    return f"{group}/providers/{kind}/{name}", {"name": name}


_INVOKES: dict[str, dict[str, Any]] = {
    "aws:ec2/getVpc:getVpc": {"id": "vpc-0default", "default": True},
    "aws:ec2/getSubnets:getSubnets": {"id": REGION, "ids": ["subnet-a1", "subnet-b2"]},
    "azure-native:authorization:getClientConfig": {
        "subscriptionId": SUBSCRIPTION,
        "tenantId": "tttttttt-0000-0000-0000-000000000000",
        "clientId": "c",
        "objectId": "o",
    },
    "azure-native:operationalinsights:getSharedKeys": {
        "primarySharedKey": "primary-key",
        "secondarySharedKey": "secondary-key",
    },
}


def _make_mocks(cloud: Any = None) -> Any:
    import pulumi

    class RecordingMocks(pulumi.runtime.Mocks):
        def __init__(self) -> None:
            self.resources: list[Created] = []
            self.invokes: list[str] = []

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            inputs = dict(args.inputs)
            self.resources.append(Created(args.typ, args.name, inputs))
            if cloud is not None:
                rid, computed = cloud.resource(args.typ, args.name, inputs)
            elif args.typ.startswith("aws:"):
                rid, computed = _aws(args.typ, args.name, inputs)
            elif args.typ.startswith("gcp:"):
                rid, computed = _gcp(args.typ, args.name, inputs)
            elif args.typ.startswith("azure-native:"):
                rid, computed = _azure(args.typ, args.name, inputs)
            else:
                rid, computed = f"{args.name}-id", {}
            return rid, {**inputs, **computed}

        def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
            self.invokes.append(args.token)
            if cloud is not None:
                result: dict[str, Any] = cloud.invoke(args.token, dict(args.args))
                return result
            return _INVOKES.get(args.token, {})

    return RecordingMocks()


def run_mocked(program: Callable[[], None], cloud: Any = None) -> Recorded:
    """Run a Pulumi program on mocks; return every resource it registered and every output
    it exported (resolved). `cloud` answers for the cloud instead of the canned values
    here: an object with `resource(type, name, inputs) -> (id, attributes)` and
    `invoke(token, args) -> result`."""
    import pulumi

    _have_an_event_loop()
    mocks = _make_mocks(cloud)
    pulumi.runtime.set_mocks(mocks, project="kitaru", stack="test", preview=False)
    exported: dict[str, Any] = {}
    real_export = pulumi.export

    def recording_export(name: str, value: Any) -> None:
        exported[name] = value
        real_export(name, value)

    outputs: dict[str, Any] = {}
    protected: set[tuple[str, str]] = set()

    def note_protected(args: pulumi.ResourceTransformationArgs) -> None:
        # Resource options never reach the mocks; a transformation sees them.
        if args.opts.protect:
            protected.add((args.type_, args.name))

    @pulumi.runtime.test
    def run() -> Any:
        pulumi.runtime.register_stack_transformation(note_protected)
        pulumi.export = recording_export
        try:
            program()
        finally:
            pulumi.export = real_export
        return pulumi.Output.all(**exported).apply(outputs.update)

    run()
    return Recorded(mocks.resources, outputs, mocks.invokes, protected)


def _have_an_event_loop() -> None:
    """Pulumi's runtime makes its futures on the current event loop; a test before this
    one that ran `asyncio.run` or `anyio.run` left the main thread with none."""
    import asyncio
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            usable = not asyncio.get_event_loop().is_closed()
        except RuntimeError:
            usable = False
    if not usable:
        asyncio.set_event_loop(asyncio.new_event_loop())


def run_program(flavor: str, settings: Mapping[str, Any] | None = None) -> Recorded:
    """Run the flavor's real inline program (the one `provision` runs) on mocks."""
    from kitaru_infra import config_for, program_for

    return run_mocked(program_for(flavor, config_for(flavor, settings or {})))
