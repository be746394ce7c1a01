"""Finding stacks without loading any flavor: the built-in `local` one, the ones in the
journal, and the active one. Kept free of pydantic and plugins because every `flow.run()`
goes through `resolve`."""

from __future__ import annotations

import os

from kitaru import _config
from kitaru._errors import ConfigurationError, NotFoundError
from kitaru.journal import Journal, StackRecord

LOCAL = "local"
ACTIVE_SETTING = "active_stack"


def local_stack() -> StackRecord:
    return StackRecord(
        name=LOCAL,
        orchestrator="local",
        artifact_store=_config.artifact_store_uri(),
        settings={},
    )


def names(journal: Journal) -> list[str]:
    return [LOCAL, *(s.name for s in journal.list_stacks())]


def get_stack(journal: Journal, name: str) -> StackRecord:
    if name == LOCAL:
        return local_stack()
    stack = journal.get_stack(name)
    if stack is None:
        raise NotFoundError(
            f"stack {name!r} does not exist; registered stacks: {', '.join(names(journal))}"
        )
    return stack


def list_stacks(journal: Journal) -> list[StackRecord]:
    return [local_stack(), *journal.list_stacks()]


def active_name(journal: Journal) -> tuple[str, str]:
    """(name, where it was chosen): env KITARU_STACK, `stack use`, or the default."""
    env = os.environ.get("KITARU_STACK")
    if env:
        return env, "KITARU_STACK"
    chosen = chosen_name(journal)
    return chosen, "default" if chosen == LOCAL else "kitaru stack use"


def chosen_name(journal: Journal) -> str:
    """The stack `kitaru stack use` made active for everyone who shares the journal (a
    process's KITARU_STACK aside): what the server reports as active."""
    return journal.get_setting(ACTIVE_SETTING) or LOCAL


def resolve(journal: Journal, explicit: str | None = None) -> StackRecord:
    """The stack a new execution runs on."""
    if explicit:
        return get_stack(journal, explicit)
    name, source = active_name(journal)
    try:
        return get_stack(journal, name)
    except NotFoundError:
        if source == "KITARU_STACK":
            raise NotFoundError(
                f"KITARU_STACK={name} names a stack that does not exist; registered stacks: "
                f"{', '.join(names(journal))}"
            ) from None
        raise


def runs_in_process(stack: StackRecord) -> bool:
    """Whether executions on the stack run in the process that starts them."""
    return stack.orchestrator == "local" and (
        stack.settings.get("mode", "in_process") == "in_process"
    )


def journal_url_for(stack: StackRecord) -> str:
    """The journal URL executions on this stack use, as this machine can open it."""
    if stack.journal is None:
        return _config.journal_url()
    from kitaru.stacks import _secrets

    if _secrets.is_reference(stack.journal):
        ref = _secrets.SecretRef.parse(stack.journal, what="--journal")
        if ref.kind != "env":
            # The platform hands the secret to the containers; this machine reaches the
            # same journal through its own KITARU_JOURNAL_URL.
            here = os.environ.get("KITARU_JOURNAL_URL")
            if here:
                return here
            raise ConfigurationError(
                f"stack {stack.name!r} keeps its journal URL in the platform secret "
                f"{ref.name}, which this machine cannot read; set KITARU_JOURNAL_URL to the "
                "same journal here"
            )
        return ref.resolve_env(what=f"the journal of stack {stack.name!r}")
    return stack.journal
