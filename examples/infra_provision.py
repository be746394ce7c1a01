"""Preview, then provision, the infrastructure of a Kubernetes stack; print its settings.

    python examples/infra_provision.py [STACK_NAME]

Needs `pip install "kitaru[kubernetes]"`, the Pulumi CLI, and a cluster in your
kubeconfig. The state goes to $KITARU_HOME/pulumi. Undo with
`python -m kitaru_infra destroy kubernetes --name STACK_NAME --set namespace=kitaru-demo`.
"""

import sys

from kitaru_infra import preview, provision, stack_settings

from kitaru import KitaruError

SETTINGS = {"namespace": "kitaru-demo", "labels": {"team": "research"}}


def main(stack_name: str) -> None:
    plan = preview("kubernetes", stack_name, SETTINGS)
    for step in plan.steps:
        print(f"{step.op:8} {step.type}  {step.name}")
    outputs = provision("kubernetes", stack_name, SETTINGS)
    settings = stack_settings("kubernetes", outputs)
    print(f"stack {stack_name}: orchestrator {settings.orchestrator}")
    for key, value in settings.as_dict().items():
        print(f"  {key} = {value}")


if __name__ == "__main__":
    try:
        main(sys.argv[1] if len(sys.argv) > 1 else "demo")
    except KitaruError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
