"""`kitaru deployments ...`: list, show, tag, untag, delete and history of deployed
versions; deploying and invoking are in `_deploy`."""

from __future__ import annotations

import time
from typing import Any

import typer

from kitaru.cli._deploy import JSON_OPT, _journal, invoke
from kitaru.cli._output import emit_json, short_time, table

app = typer.Typer(
    rich_markup_mode="markdown",
    help="Deployed versions of flows and the tags that route invocations to them: list, "
    "show, tag (with --weight for a canary), untag, delete, history and invoke. Rolling "
    "back is tagging the earlier version again.\n\n"
    "Example: `kitaru deployments tag support 1 default`",
    no_args_is_help=True,
)


def _tags_text(view: dict[str, Any]) -> str:
    return ", ".join(
        t["tag"] + ("" if t["weight"] >= 100 else f" {t['weight']}%") for t in view["tags"]
    )


@app.command("list")
def list_(
    flow: str | None = typer.Argument(None, help="Flow name (default: every deployed flow)."),
    as_json: bool = JSON_OPT,
) -> None:
    """List deployed versions, newest first, with the tags that serve each.

    Example: `kitaru deployments list support`
    """
    from kitaru import deployments

    j = _journal()
    records = j.list_deployments(flow)
    tags = {f: j.list_tags(f) for f in {d.flow for d in records}}
    views = [deployments.deployment_view(d, tags[d.flow]) for d in records]
    if as_json:
        emit_json(views)
        return
    if not views:
        print(
            "no deployments"
            + (f" of flow {flow!r}" if flow else "")
            + "; deploy with: kitaru deploy path/to/module.py:flow"
        )
        return
    table(
        ["flow", "version", "image", "stack", "tags", "created", "by"],
        [
            [
                v["flow"],
                v["version"],
                v["image"].rsplit("@", 1)[-1][:19] if "@" in v["image"] else v["image"],
                v["stack"],
                _tags_text(v),
                short_time(v["created_at"]),
                v["created_by"],
            ]
            for v in views
        ],
    )


@app.command()
def show(
    flow: str = typer.Argument(..., help="Flow name."),
    version: int = typer.Argument(..., help="Version number."),
    as_json: bool = JSON_OPT,
) -> None:
    """Show a version: its image, hashes, stack, signature, tags, and whether the project
    on this machine still matches the snapshot.

    Example: `kitaru deployments show support 2`
    """
    from kitaru import deployments

    j = _journal()
    record = deployments.live_deployment(j, flow, version)
    view = deployments.deployment_view(record, j.list_tags(flow), detail=True)
    view["local"] = deployments.local_changes(record, j)
    if as_json:
        emit_json(view)
        return
    print(f"deployment  {flow} version {version}")
    for key in ("image", "stack", "created_by"):
        print(f"{key.replace('_', ' '):<11} {view[key]}")
    print(f"created     {short_time(view['created_at'])}")
    print(f"tags        {_tags_text(view) or '-'}")
    print(f"built       {'reused an existing image' if view['reused'] else 'built and pushed'}")
    print(f"lock hash   {view['lock_hash'][:16]}")
    print(f"source hash {view['source_hash'][:16]} ({view['files']} files)")
    print(f"kitaru      {view['kitaru_version']}")
    params = ", ".join(
        p["name"] + (f": {p['annotation']}" if p.get("annotation") else "") + ("" if p["required"] else " = ...")
        for p in view["signature"]
    )  # fmt: skip
    print(f"signature   {flow}({params})")
    local = view["local"]
    if local["differs"] is None:
        print(f"local code  cannot compare: {local.get('reason')}")
    elif not local["differs"]:
        print(f"local code  same as the snapshot ({local['project_root']})")
    else:
        print(f"local code  differs from the snapshot ({local['project_root']}):")
        for what in ("changed", "added", "removed"):
            for path in local[what]:
                print(f"              {what:<8} {path}")


@app.command()
def tag(
    flow: str = typer.Argument(..., help="Flow name."),
    version: int = typer.Argument(..., help="Version the tag points at."),
    tag_name: str = typer.Argument(..., metavar="TAG", help="Tag name, e.g. default or canary."),
    weight: int | None = typer.Option(
        None,
        "--weight",
        help="Canary: percent of the tag's invocations (1-99) this version takes; the rest "
        "stay on the version the tag served. Leave out to send it everything.",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Point a tag at a version, atomically (rolling back is tagging an earlier version).
    With --weight the version becomes a canary of the tag.

    Examples:

    - `kitaru deployments tag support 2 default --weight 10`
    - `kitaru deployments tag support 1 default`
    """
    from kitaru import deployments
    from kitaru._errors import InvalidInputError

    if weight is not None and not 1 <= weight <= 99:
        raise InvalidInputError(
            f"--weight {weight} is outside 1-99: a canary takes part of the invocations "
            "(leave --weight out to send them all to the version)"
        )
    deployments.check_tag(tag_name)
    j = _journal()
    before = j.get_tag(flow, tag_name)
    moved = j.set_tag(flow, tag_name, version, weight=weight, by=deployments.who(), now=time.time())
    if as_json:
        emit_json(deployments.tag_view(moved))
        return
    was = (
        f" (was {deployments.pointing(before.version, before.weight, before.previous_version)})"
        if before
        else ""
    )
    now = deployments.pointing(moved.version, moved.weight, moved.previous_version)
    print(f"tag {tag_name} of {flow} -> {now}{was}")


@app.command()
def untag(
    flow: str = typer.Argument(..., help="Flow name."),
    tag_name: str = typer.Argument(..., metavar="TAG", help="Tag to remove."),
    as_json: bool = JSON_OPT,
) -> None:
    """Remove a tag (recorded in the history); invocations by it then fail.

    Example: `kitaru deployments untag support staging`
    """
    from kitaru import deployments
    from kitaru._errors import NotFoundError

    j = _journal()
    before = j.get_tag(flow, tag_name)
    if before is None or not j.remove_tag(flow, tag_name, by=deployments.who(), now=time.time()):
        tags = [t.tag for t in j.list_tags(flow)]
        raise NotFoundError(
            f"flow {flow!r} has no tag {tag_name!r}; tags: {', '.join(tags) or 'none'}"
        )
    if as_json:
        emit_json({"flow": flow, "removed": deployments.tag_view(before)})
        return
    was = deployments.pointing(before.version, before.weight, before.previous_version)
    print(f"removed tag {tag_name} of {flow} (was {was})")


@app.command()
def delete(
    flow: str = typer.Argument(..., help="Flow name."),
    version: int = typer.Argument(..., help="Version to delete."),
    as_json: bool = JSON_OPT,
) -> None:
    """Delete a version (refused while a tag points at it). Its number is never reused;
    its image stays in the registry.

    Example: `kitaru deployments delete support 3`
    """
    from kitaru import deployments
    from kitaru._errors import KitaruUsageError

    j = _journal()
    deployments.live_deployment(j, flow, version)
    if not j.delete_deployment(flow, version, now=time.time()):
        serving = deployments.deployment_view(
            deployments.live_deployment(j, flow, version), j.list_tags(flow)
        )["tags"]
        names = ", ".join(t["tag"] for t in serving)
        raise KitaruUsageError(
            f"version {version} of {flow} is served by tag {names}; point the tag at another "
            f"version or remove it first (kitaru deployments untag {flow} TAG)"
        )
    if as_json:
        emit_json({"flow": flow, "deleted": version})
    else:
        print(f"deleted {flow} version {version}")


@app.command()
def history(
    flow: str = typer.Argument(..., help="Flow name."),
    as_json: bool = JSON_OPT,
) -> None:
    """Every tag change of the flow, oldest first: deploys, moves, canaries, rollbacks,
    removals, who made them and when.

    Example: `kitaru deployments history support`
    """
    from kitaru import deployments

    events = _journal().tag_history(flow)
    if as_json:
        emit_json([deployments.event_view(e) for e in events])
        return
    if not events:
        print(f"no tag changes for flow {flow!r}")
        return
    table(
        ["#", "when", "tag", "now", "before", "by"],
        [
            [
                e.seq,
                short_time(deployments.event_view(e)["at"]),
                e.tag,
                "removed"
                if e.action == "untag"
                else deployments.pointing(e.version, e.weight, e.previous_version),
                deployments.pointing(e.from_version, e.from_weight, e.from_previous),
                e.by,
            ]
            for e in events
        ],
    )


app.command()(invoke)
