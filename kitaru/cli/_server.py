"""`kitaru server ...`: run the server, manage its API tokens, make webhook URLs."""

from __future__ import annotations

import sys
from typing import Any

import typer

from kitaru.cli._output import emit_json, short_time, table

# Escaped: Rich would read "[server]" as markup and print `pip install "kitaru"`.
app = typer.Typer(
    rich_markup_mode="markdown",
    help="Run the Kitaru server (REST API + web UI), manage its API tokens, and build its "
    'container image. Needs pip install "kitaru\\[server]".\n\n'
    "Example: `kitaru server start --port 8080`",
    no_args_is_help=True,
)
token_app = typer.Typer(
    rich_markup_mode="markdown",
    help="API tokens: create (shown once), list, revoke. They are kept hashed in the "
    "server's journal; these commands open that journal directly (--journal).\n\n"
    "Example: `kitaru server token create --scope read --name dashboard`",
    no_args_is_help=True,
)
app.add_typer(token_app, name="token")

JSON_OPT = typer.Option(False, "--json", help="Print JSON for scripts instead of text.")
JOURNAL_OPT = typer.Option(
    None,
    "--journal",
    help="The server's journal (postgresql://... or sqlite:///...); default KITARU_JOURNAL_URL "
    "or the embedded journal under KITARU_HOME.",
)


def _journal_url(journal: str | None) -> str:
    import os

    from kitaru import _config
    from kitaru._errors import KitaruUsageError

    if journal:
        url = journal
    elif os.environ.get("KITARU_JOURNAL_URL"):
        url = os.environ["KITARU_JOURNAL_URL"]
    else:
        url = "sqlite:///" + str(_config.home() / "journal.db")
    if url.startswith(("http://", "https://")):
        raise KitaruUsageError(
            f"{url} is a server, not a journal; pass the server's own journal with --journal"
        )
    return url


def _size_bytes(mb: float) -> int:
    return int(mb * 1024 * 1024)


@app.command()
def start(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: all)."),
    port: int = typer.Option(8080, "--port", help="Port to listen on; 0 picks a free one."),
    journal: str | None = JOURNAL_OPT,
    artifact_store: list[str] = typer.Option(
        [],
        "--artifact-store",
        help="Store the server serves (repeatable). The first is where clients without "
        "a store of their own keep artifacts; default KITARU_ARTIFACT_STORE or "
        "$KITARU_HOME/artifacts.",
    ),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        help="The URL people and containers reach the server at: webhook URLs, and where "
        "containers the server starts report. Default: http://HOST:PORT when --host is one "
        "address; required for containers when it is 0.0.0.0.",
    ),
    max_upload_mb: float = typer.Option(
        256, "--max-upload-mb", help="Largest artifact upload accepted (streamed)."
    ),
    max_json_mb: float = typer.Option(
        4, "--max-json-mb", help="Largest JSON request body accepted (every other route)."
    ),
    sweep_interval: float = typer.Option(
        10,
        "--sweep-interval",
        help="Seconds between sweeps: timed-out waits, lost runs, spans of crashed runs (0: never).",
    ),
    schedule_interval: float = typer.Option(
        1, "--schedule-interval", help="Seconds between looks for due schedules (0: never)."
    ),
    metrics_interval: float = typer.Option(
        30,
        "--metrics-interval",
        help="Seconds between reads of the journal for /metrics; scrapes in between get the "
        "last reading at once (0: read at every scrape).",
    ),
    retention: str | None = typer.Option(
        None,
        "--retention",
        help="Delete executions (and their bytes) that ended longer ago than this: 30d, "
        "12h, 2w. Default: keep everything.",
    ),
    retention_interval: float = typer.Option(
        3600, "--retention-interval", help="Seconds between retention passes."
    ),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning, error."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request."),
) -> None:
    """Serve the REST API (/api/v1), the web UI (/ui), /metrics and /health over one journal.
    PostgreSQL for teams, SQLite for one machine. Clients use it with KITARU_SERVER_URL
    and KITARU_API_TOKEN.

    Examples:

    - `kitaru server start`
    - `kitaru server start --host 0.0.0.0 --port 8080 --journal postgresql://kitaru@db.internal/kitaru`
    - `kitaru server start --retention 30d`
    """
    from kitaru import _config, server

    server.require_extra()
    from kitaru.server._serve import serve
    from kitaru.server._state import ServerConfig

    stores = tuple(artifact_store) or (_config.artifact_store_uri(),)
    from kitaru._errors import KitaruUsageError

    if max_upload_mb <= 0:
        raise KitaruUsageError(f"--max-upload-mb must be positive, not {max_upload_mb}")
    if max_json_mb <= 0:
        raise KitaruUsageError(f"--max-json-mb must be positive, not {max_json_mb}")
    if metrics_interval < 0:
        raise KitaruUsageError(f"--metrics-interval must be 0 or more, not {metrics_interval}")
    if public_url is not None and not public_url.startswith(("http://", "https://")):
        raise KitaruUsageError(f"--public-url {public_url!r} is not an http(s):// URL")
    if retention_interval <= 0:
        raise KitaruUsageError(f"--retention-interval must be positive, not {retention_interval}")
    from kitaru import _retention

    keep_for = _retention.parse_age(retention) if retention is not None else None
    config = ServerConfig(
        journal_url=_journal_url(journal),
        artifact_stores=stores,
        max_upload_bytes=_size_bytes(max_upload_mb),
        max_json_bytes=_size_bytes(max_json_mb),
        sweep_interval=sweep_interval,
        schedule_interval=schedule_interval,
        metrics_interval=metrics_interval,
        public_url=public_url.rstrip("/") if public_url else None,
        retention=keep_for,
        retention_interval=retention_interval,
    )
    serve(config, host=host, port=port, log_level=log_level, access_log=access_log)


def _token_view(t: Any) -> dict[str, Any]:
    from kitaru._views import iso

    return {
        "token_id": t.token_id,
        "name": t.name,
        "scope": t.scope,
        "created_at": iso(t.created_at),
        "last_used_at": iso(t.last_used_at),
        "revoked_at": iso(t.revoked_at),
        "revoked": t.revoked_at is not None,
    }


def _open(journal: str | None) -> Any:
    from kitaru.journal import open_journal

    return open_journal(_journal_url(journal))


@token_app.command("create")
def token_create(
    scope: str = typer.Option(
        ...,
        "--scope",
        help="read (GET requests only), write (also run, answer, resume, replay, cancel, "
        "deploy, invoke) or admin (also stacks, settings, deployment tags and deletion).",
    ),
    name: str | None = typer.Option(None, "--name", help="What the token is for."),
    journal: str | None = JOURNAL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Create an API token and print it. It is shown only now: the journal keeps a hash.

    Example: `kitaru server token create --scope write --name ci`
    """
    from kitaru.server import _tokens

    token, record = _tokens.create(_open(journal), scope=scope, name=name)
    if as_json:
        emit_json({**_token_view(record), "token": token})
        return
    print(token)
    print(
        f"created {record.scope} token {record.token_id} ({record.name}); it is not shown "
        "again. Use it as: export KITARU_API_TOKEN=<token>",
        file=sys.stderr,
    )


@token_app.command("list")
def token_list(journal: str | None = JOURNAL_OPT, as_json: bool = JSON_OPT) -> None:
    """List API tokens (never their secrets): id, name, scope, last use, revoked.

    Example: `kitaru server token list --journal postgresql://kitaru@db.internal/kitaru`
    """
    from kitaru.server._tokens import token_store

    tokens = [_token_view(t) for t in token_store(_open(journal)).list_tokens()]
    if as_json:
        emit_json(tokens)
        return
    if not tokens:
        print("no API tokens; create one with: kitaru server token create --scope write")
        return
    table(
        ["token", "name", "scope", "created", "last used", "revoked"],
        [
            [
                t["token_id"],
                t["name"],
                t["scope"],
                short_time(t["created_at"]),
                short_time(t["last_used_at"]),
                short_time(t["revoked_at"]) if t["revoked"] else "",
            ]
            for t in tokens
        ],
    )


@token_app.command("revoke")
def token_revoke(
    token_id: str = typer.Argument(..., help="The token's id (from `token list`) or the token."),
    journal: str | None = JOURNAL_OPT,
    as_json: bool = JSON_OPT,
) -> None:
    """Revoke an API token: every request with it is refused from now on.

    Example: `kitaru server token revoke kt_01a21c6d05b9f4c3e1a0d8f26c55`
    """
    from kitaru.server import _tokens

    record = _tokens.revoke(_open(journal), token_id)
    if as_json:
        emit_json(_token_view(record))
        return
    print(f"revoked token {record.token_id} ({record.name})")


@app.command()
def webhook(
    exec_id: str = typer.Argument(..., help="Execution id (kx_...)."),
    wait: str = typer.Argument(..., help="Wait name or key (approve, approve#2)."),
    expires_in: float = typer.Option(
        24 * 3600, "--expires-in", help="Seconds the URL stays valid (at most 30 days)."
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Print a signed URL that answers this wait with a POSTed JSON body, without an API
    token, until it expires. Asks the server in KITARU_SERVER_URL (write token).

    Example: `kitaru server webhook kx_01a21c6d03e6c01d6771b05dc136 approve --expires-in 86400`
    """
    from kitaru.remote import connect

    response = connect().request(
        "POST",
        f"/executions/{exec_id}/waits/{wait}/webhook",
        json={"expires_in": expires_in},
    )
    view = response.json()
    if as_json:
        emit_json(view)
        return
    print(view["url"])
    print(f"valid until {short_time(view['expires_at'])} for wait {view['wait']}", file=sys.stderr)


@app.command("build-image")
def build_image(
    stack: str | None = typer.Option(
        None, "--stack", help="Stack whose builder and registry to use (default: the active)."
    ),
    extras: str | None = typer.Option(
        None,
        "--extras",
        help="Comma-separated kitaru extras in the image: server (always), postgres, aws, "
        "gcp, azure. Default: server, postgres and the client of the stack's artifact store.",
    ),
    repository: str = typer.Option(
        "kitaru-server", "--repository", help="Image repository under the stack's registry."
    ),
    tag: list[str] = typer.Option(
        [],
        "--tag",
        help="Another tag for the image, such as a release number (repeatable); it is "
        "always tagged with a hash of what went into it.",
    ),
    as_json: bool = JSON_OPT,
) -> None:
    """Build the server's container image through the stack's builder, push it to the
    stack's registry, and print it by digest with the Helm values that run it. The same
    kitaru, extras, base image and recipe reuse the image already pushed.

    Example: `kitaru server build-image --stack prod --extras server,postgres,aws --tag 1.0.0`
    """
    from kitaru.journal import current_journal
    from kitaru.stacks._server_image import build_server_image

    image = build_server_image(
        current_journal(),
        stack=stack,
        extras=None if extras is None else extras.split(","),
        repository=repository,
        tags=tag,
        progress=lambda message: print(message, file=sys.stderr),
    )
    if as_json:
        emit_json(
            {
                "image": image.ref,
                "repository": image.repository,
                "digest": image.digest,
                "content_tag": image.tag,
                "tags": list(image.tags),
                "extras": list(image.extras),
                "stack": image.stack,
                "reused": image.reused,
                "helm_values": image.helm_values(),
                "helm_set": image.helm_set(),
            }
        )
        return
    how = (
        "reused: kitaru, the extras, the base image and the recipe are unchanged"
        if image.reused
        else "built and pushed"
    )
    print(f"image   {image.ref}")
    print(f"        {how}")
    print(f"tags    {', '.join([image.tag, *image.tags])}")
    print(f"extras  {', '.join(image.extras)}")
    print(f"helm    {image.helm_set()}")


@app.command()
def openapi(
    out: str | None = typer.Option(None, "--out", help="Write the document to this file."),
) -> None:
    """Print the REST API's OpenAPI document (no server needed).

    Example: `kitaru server openapi --out openapi.json`
    """
    import json

    from kitaru import server

    server.require_extra()
    from kitaru.server._app import openapi_document

    text = json.dumps(openapi_document(), indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote the OpenAPI document to {out}", file=sys.stderr)
