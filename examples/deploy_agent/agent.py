"""A support agent shipped as deployments: each `deploy` freezes the project into an
image and records the next version; invocations run the version a tag points at, in its
image, whatever the code here says now. It is its own uv project (pyproject.toml beside
it): that is what the builder locks and copies into the image.

    kitaru stack use my-docker-stack
    python examples/deploy_agent/agent.py deploy             # version 1, tag default
    # edit REPLY_STYLE, then deploy again                    # version 2, tag default
    kitaru deployments tag support 1 default                 # roll back: a tag move
    python examples/deploy_agent/agent.py invoke "my order is late"   # runs version 1

The same from the command line: `kitaru deploy examples/deploy_agent/agent.py:support`
and `kitaru deployments invoke support --args '{"ticket": "my order is late"}' --wait`.

Deployed flows as tools for an MCP client (`refund` waits for a person: the client asks
its user): `kitaru deploy examples/deploy_agent/agent.py:refund`, then
`kitaru mcp serve --deployments --stdio` (docs/mcp.md).
"""

import json
import os
import sys

import kitaru
from kitaru import checkpoint, flow

# What a new version changes; the reply says which style (so which code) produced it.
REPLY_STYLE = "brief"


@checkpoint
def classify(ticket: str) -> str:
    words = ticket.lower()
    return "shipping" if "order" in words or "late" in words else "general"


@checkpoint
def draft_reply(ticket: str, category: str, customer: str) -> str:
    return f"[{REPLY_STYLE}] Hi {customer}, about your {category} question: {ticket!r}."


@flow
def support(ticket: str, customer: str = "there") -> dict[str, str]:
    """Draft a reply to a customer's support ticket."""
    category = classify(ticket)
    return {
        "reply": draft_reply(ticket, category, customer),
        "style": REPLY_STYLE,
        "host": os.environ.get("KITARU_HOST", ""),
    }


@flow
def refund(ticket: str, amount: float) -> dict[str, object]:
    """Refund a customer once a person approves it."""
    category = classify(ticket)
    approved = kitaru.wait(
        "approve", schema=bool, question=f"Refund {amount:.2f} for a {category} ticket?"
    )
    return {
        "refunded": amount if approved else 0.0,
        "style": REPLY_STYLE,
        "host": os.environ.get("KITARU_HOST", ""),
    }


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "deploy"
    if command == "deploy":
        deployment = support.deploy(tag="default")
        reused = "reused its image" if deployment.reused else "built its image"
        print(f"deployed support version {deployment.version} ({reused}): {deployment.image}")
    elif command == "invoke":
        # The same invocation id always lands on the same version of a canary tag.
        invocation = sys.argv[3] if len(sys.argv) > 3 else None
        handle = support.invoke(ticket=sys.argv[2], customer="Ada", invocation_id=invocation)
        print(json.dumps({"exec_id": handle.exec_id, "result": handle.result(timeout=300)}))
    else:
        sys.exit(f"usage: {sys.argv[0]} deploy | invoke TICKET [INVOCATION_ID]")
