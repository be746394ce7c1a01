"""`KitaruClient`: executions and artifacts from Python, the same operations as the CLI.

from kitaru import KitaruClient

client = KitaruClient()
for execution in client.executions.list(flow="research"):
    print(execution.exec_id, execution.status)
client.executions.input("kx_...", "approve_draft", True)
"""

from __future__ import annotations

from kitaru.client._client import (
    Artifact,
    Artifacts,
    Execution,
    Executions,
    KitaruClient,
)

__all__ = ["Artifact", "Artifacts", "Execution", "Executions", "KitaruClient"]
