"""A renderer for the subset of Helm's Go templates our chart uses, since `helm` itself
cannot be installed here. It fails loudly on anything outside that subset, so a chart
change that needs more shows up as a test failure rather than a silent difference.

Supported: text/action trimming (`{{-`, `-}}`), comments, `define`/`include`, `if`/
`else`/`end`, `with`/`end`, `range`/`else`/`end` over a list or map (no `$i, $x :=`), field
paths on `.` and `$` (a field of a missing value fails as Helm's "nil pointer" does), `$`
alone, string and number literals, parentheses, pipelines, and the functions in FUNCTIONS.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

_ACTION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.DOTALL)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|\||\$?\.[\w.]*|\$|-?\d+(?:\.\d+)?|[A-Za-z_]\w*)')


class TemplateError(Exception):
    pass


def _lex(source: str) -> list[tuple[str, str]]:
    """[("text", s) | ("action", s)], with Helm's whitespace trimming applied."""
    parts: list[tuple[str, str]] = []
    pos = 0
    trim_next = False
    for m in _ACTION.finditer(source):
        text = source[pos : m.start()]
        if trim_next:
            text = text.lstrip()
        if m.group(1):
            text = text.rstrip()
        parts.append(("text", text))
        body = m.group(2).strip()
        if not (body.startswith("/*") and body.endswith("*/")):
            parts.append(("action", body))
        trim_next = bool(m.group(3))
        pos = m.end()
    tail = source[pos:]
    parts.append(("text", tail.lstrip() if trim_next else tail))
    return parts


def _parse(
    parts: list[tuple[str, str]], i: int, defines: dict[str, list[Any]]
) -> tuple[list[Any], int, str]:
    """Nodes until an `else` or `end`; returns (nodes, next index, the keyword that stopped)."""
    nodes: list[Any] = []
    while i < len(parts):
        kind, body = parts[i]
        i += 1
        if kind == "text":
            if body:
                nodes.append(("text", body))
            continue
        word = body.split(None, 1)[0] if body else ""
        rest = body[len(word) :].strip()
        if word in ("end", "else"):
            if rest:
                raise TemplateError(f"`{body}` is not supported by this renderer")
            return nodes, i, word
        if word in ("if", "with", "range"):
            then, i, stop = _parse(parts, i, defines)
            other: list[Any] = []
            if stop == "else":
                other, i, stop = _parse(parts, i, defines)
            if stop != "end":
                raise TemplateError(f"{word} {rest!r} has no end")
            nodes.append((word, rest, then, other))
        elif word == "define":
            name = json.loads(rest)
            body_nodes, i, stop = _parse(parts, i, defines)
            if stop != "end":
                raise TemplateError(f"define {name} has no end")
            defines[name] = body_nodes
        elif word in ("template", "block"):
            raise TemplateError(f"`{word}` is not supported by this renderer")
        else:
            nodes.append(("action", body))
    return nodes, i, ""


class Renderer:
    def __init__(self, chart: Path, values: dict[str, Any], release: str = "kitaru") -> None:
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        self.root = {
            "Values": values,
            "Release": {"Name": release, "Namespace": "default", "Service": "Helm"},
            "Chart": {
                "Name": meta["name"],
                "Version": meta["version"],
                "AppVersion": meta.get("appVersion"),
            },
        }
        self.defines: dict[str, list[Any]] = {}
        self.templates: dict[str, list[Any]] = {}
        self.notes: list[Any] = []
        for path in sorted((chart / "templates").iterdir()):
            nodes, _i, stop = _parse(_lex(path.read_text()), 0, self.defines)
            if stop:
                raise TemplateError(f"{path.name}: unexpected {stop}")
            if path.suffix in (".yaml", ".yml"):
                self.templates[path.name] = nodes
            elif path.name == "NOTES.txt":
                self.notes = nodes

    def render(self) -> dict[str, str]:
        return {name: self._run(nodes, self.root) for name, nodes in self.templates.items()}

    def render_notes(self) -> str:
        return self._run(self.notes, self.root)

    def manifests(self) -> list[dict[str, Any]]:
        docs = []
        for name, text in self.render().items():
            for doc in yaml.safe_load_all(text):
                if doc is not None:
                    doc.setdefault("__file__", name)
                    docs.append(doc)
        return docs

    def _run(self, nodes: list[Any], dot: Any) -> str:
        out = []
        for node in nodes:
            if node[0] == "text":
                out.append(node[1])
            elif node[0] == "action":
                out.append(_show(self._pipeline(node[1], dot)))
            elif node[0] == "if":
                value = self._pipeline(node[1], dot)
                out.append(self._run(node[2] if _truthy(value) else node[3], dot))
            elif node[0] == "with":
                value = self._pipeline(node[1], dot)
                out.append(self._run(node[2], value) if _truthy(value) else self._run(node[3], dot))
            elif node[0] == "range":
                if ":=" in node[1]:
                    raise TemplateError(f"range variables are not supported: {node[1]!r}")
                value = self._pipeline(node[1], dot)
                if isinstance(value, dict):  # Go ranges over a map's values in key order
                    items = [value[k] for k in sorted(value)]
                elif isinstance(value, list) or value is None:
                    items = value or []
                else:
                    raise TemplateError(f"range can't iterate over {value!r}")
                if items:
                    out.extend(self._run(node[2], item) for item in items)
                else:
                    out.append(self._run(node[3], dot))
        return "".join(out)

    def _pipeline(self, source: str, dot: Any) -> Any:
        tokens = [t for t in _TOKEN.findall(source)]
        if "".join(tokens).replace(" ", "") != source.replace(" ", "").replace("\n", ""):
            raise TemplateError(f"cannot parse {source!r}")
        value, pos = self._pipe(tokens, 0, dot)
        if pos != len(tokens):
            raise TemplateError(f"unexpected {tokens[pos]!r} in {source!r}")
        return value

    def _pipe(self, tokens: list[str], pos: int, dot: Any) -> tuple[Any, int]:
        value: Any = _NOTHING
        while True:
            command: list[Any] = []
            while pos < len(tokens) and tokens[pos] not in ("|", ")"):
                if tokens[pos] == "(":
                    inner, pos = self._pipe(tokens, pos + 1, dot)
                    if pos >= len(tokens) or tokens[pos] != ")":
                        raise TemplateError("unbalanced parentheses")
                    command.append(("value", inner))
                else:
                    command.append(("token", tokens[pos]))
                pos += 1
            value = self._command(command, dot, value)
            if pos < len(tokens) and tokens[pos] == "|":
                pos += 1
                continue
            return value, pos

    def _command(self, command: list[Any], dot: Any, piped: Any) -> Any:
        if not command:
            raise TemplateError("empty command")
        first_kind, first = command[0]
        if (
            first_kind == "token"
            and re.fullmatch(r"[A-Za-z_]\w*", first)
            and first not in ("true", "false", "nil")
        ):
            fn = FUNCTIONS.get(first)
            if fn is None:
                raise TemplateError(f"function {first!r} is not supported by this renderer")
            args = [self._operand(c, dot) for c in command[1:]]
            if piped is not _NOTHING:
                args.append(piped)
            return fn(self, *args)
        if len(command) != 1 or piped is not _NOTHING:
            raise TemplateError(f"cannot apply {first!r}")
        return self._operand(command[0], dot)

    def _operand(self, item: tuple[str, Any], dot: Any) -> Any:
        kind, token = item
        if kind == "value":
            return token
        if token.startswith('"'):
            return json.loads(token)
        if token in ("true", "false"):
            return token == "true"
        if token == "nil":
            return None
        if re.fullmatch(r"-?\d+", token):
            return int(token)
        if re.fullmatch(r"-?\d+\.\d+", token):
            return float(token)
        if token.startswith("$"):
            dot, token = self.root, token[1:]
            if not token:
                return dot
        if token.startswith("."):
            value = dot
            for name in [p for p in token.split(".") if p]:
                if value is None:
                    raise TemplateError(
                        f"nil pointer evaluating interface {{}}.{name} in {token!r}"
                    )
                if not isinstance(value, dict):
                    raise TemplateError(f"can't evaluate field {name} in {value!r}")
                value = value.get(name)
            return value
        raise TemplateError(f"unexpected {token!r}")


_NOTHING = object()


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value != [] and value != {}


def _show(value: Any) -> str:
    if value is None:
        raise TemplateError("a template printed a value that is not set (<no value> in Helm)")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        raise TemplateError("printing a map or list needs toYaml")
    return str(value)


def _to_yaml(_r: Renderer, value: Any) -> str:
    if value in ({}, []):
        return "{}" if value == {} else "[]"
    return yaml.safe_dump(value, default_flow_style=False, sort_keys=False).rstrip("\n")


def _indent(_r: Renderer, width: int, text: Any) -> str:
    return "\n".join((" " * width + line) if line else line for line in str(text).split("\n"))


def _required(_r: Renderer, message: str, value: Any) -> Any:
    if value is None or value == "":
        raise TemplateError(f"execution error: {message}")
    return value


def _printf(_r: Renderer, fmt: str, *args: Any) -> str:
    return fmt.replace("%v", "%s") % tuple(str(a) for a in args)


def _fail(_r: Renderer, message: str) -> Any:
    raise TemplateError(f"execution error: {message}")


def _to_int64(value: Any) -> int:
    """Sprig's toInt64 (spf13/cast): what it cannot convert is 0, as in Helm."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = re.sub(r"\.0*$", "", value.strip())
        try:
            return int(text, 0)
        except ValueError:
            return 0
    return 0


def _dict(_r: Renderer, *pairs: Any) -> dict[str, Any]:
    if len(pairs) % 2:
        pairs = (*pairs, "")
    return {str(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)}


FUNCTIONS: dict[str, Any] = {
    "include": lambda r, name, dot: r._run(r.defines[name], dot),
    "default": lambda _r, fallback, value=None: value if _truthy(value) else fallback,
    "quote": lambda _r, value: json.dumps("" if value is None else str(value)),
    "trunc": lambda _r, n, text: str(text)[:n],
    "trimSuffix": lambda _r, suffix, text: str(text).removesuffix(suffix),
    "printf": _printf,
    "toYaml": _to_yaml,
    "indent": _indent,
    "nindent": lambda r, width, text: "\n" + _indent(r, width, text),
    "required": _required,
    "not": lambda _r, value: not _truthy(value),
    "fail": _fail,
    "hasKey": lambda _r, mapping, key: isinstance(mapping, dict) and key in mapping,
    "add": lambda _r, *values: sum(_to_int64(v) for v in values),
    "dict": _dict,
}


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out
