"""Kitaru's AWS Batch infrastructure as a part of your own Pulumi program.

Use it as a Pulumi project's `__main__.py` and run `pulumi preview` / `pulumi up` (needs
`pip install "kitaru[aws]"` and the Pulumi CLI). The exported `kitaru` output holds what
the aws_batch stack needs: the artifact store, the registry, the job queue, the roles.
`kitaru_infra.stack_settings("aws_batch", outputs)` turns it into stack settings.
"""

import pulumi
from kitaru_infra import AwsBatchConfig, AwsBatchInfra

config = AwsBatchConfig(
    name_prefix="agents",
    region="eu-west-1",
    max_vcpus=32,
    labels={"team": "research"},
)
infra = AwsBatchInfra("agents", config)

pulumi.export("kitaru", infra.outputs)
