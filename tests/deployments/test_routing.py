"""How a tag picks a version (over many invocation ids, without running anything), and how
an invocation's arguments are checked against the signature recorded at deploy time."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import BaseModel

from kitaru._errors import InvalidInputError
from kitaru.deployments import bind, bucket, choose_version, signature_of
from kitaru.journal import DeploymentRecord, TagRecord

IDS = [f"req-{n}" for n in range(20_000)]


def canary(version: int, weight: int, rest: int) -> TagRecord:
    return TagRecord("agent", "default", version, weight, rest, "me", 0.0)


@pytest.mark.parametrize("weight", [1, 10, 50, 90, 99])
def test_a_canary_takes_its_weight_of_invocations_within_a_point(weight: int) -> None:
    tag = canary(5, weight, 4)
    on_canary = sum(choose_version(tag, i) == 5 for i in IDS)
    # 20,000 ids: one standard deviation is at most 0.36 points.
    assert abs(on_canary / len(IDS) * 100 - weight) < 1.5, on_canary


def test_the_same_invocation_id_always_lands_on_the_same_version() -> None:
    tag = canary(5, 30, 4)
    first = [choose_version(tag, i) for i in IDS[:2000]]
    assert first == [choose_version(tag, i) for i in IDS[:2000]]
    assert set(first) == {4, 5}


def test_widening_a_canary_keeps_the_invocations_it_already_had() -> None:
    narrow = {i for i in IDS if choose_version(canary(5, 10, 4), i) == 5}
    wide = {i for i in IDS if choose_version(canary(5, 40, 4), i) == 5}
    assert narrow < wide


def test_each_new_canary_draws_its_own_share() -> None:
    five = {i for i in IDS if choose_version(canary(5, 10, 4), i) == 5}
    six = {i for i in IDS if choose_version(canary(6, 10, 4), i) == 6}
    assert 0.05 < len(five & six) / len(five) < 0.2  # about 10% overlap, by chance


def test_a_full_tag_sends_everything_to_its_version() -> None:
    tag = TagRecord("agent", "default", 3, 100, None, "me", 0.0)
    assert {choose_version(tag, i) for i in IDS[:500]} == {3}
    assert (
        0 <= min(bucket("a", "t", 1, i) for i in IDS)
        and max(bucket("a", "t", 1, i) for i in IDS) == 99
    )


class Order(BaseModel):
    item: str
    quantity: int = 1


def flow_fn(ticket: str, order: Order, urgent: bool = False, *notes: str, **extra: Any) -> None: ...


def deployment(fn: Any) -> DeploymentRecord:
    return DeploymentRecord(
        "agent", 3, "img", "d", "c", "l", "s", "1", signature_of(fn), "m:f", "f.py", ".",
        "/p", "box", "docker", "docker", False, "me", 0.0,
    )  # fmt: skip


def test_arguments_bind_by_the_deployed_signature() -> None:
    d = deployment(flow_fn)
    assert [(p["name"], p["required"], p["json_type"]) for p in d.signature] == [
        ("ticket", True, "string"),
        ("order", True, None),
        ("urgent", False, "boolean"),
        ("notes", False, None),
        ("extra", False, None),
    ]
    assert d.signature[1]["annotation"].endswith("test_routing.Order")
    assert bind(d, ["late", {"item": "kite"}], {"urgent": True}) == {
        "ticket": "late",
        "order": {"item": "kite"},
        "urgent": True,
    }
    assert bind(d, ["a", {}, False, "n1", "n2"], {"trace": 1}) == {
        "ticket": "a",
        "order": {},
        "urgent": False,
        "notes": ("n1", "n2"),
        "extra": {"trace": 1},
    }


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ([], {"order": {}}, "missing a required argument: 'ticket'"),
        (["a"], {"ticket": "b", "order": {}}, "multiple values for argument 'ticket'"),
        ([5, {}], {}, "argument 'ticket' must be a string (str), not 5"),
        (["a", {}], {"urgent": "yes"}, "argument 'urgent' must be a boolean (bool), not \"yes\""),
    ],
)
def test_arguments_that_do_not_fit_are_refused_with_the_reason(
    args: list[Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match="cannot invoke flow 'agent' \\(version 3\\)") as e:
        bind(deployment(flow_fn), args, kwargs)
    assert message in str(e.value)


def test_a_flow_without_var_keywords_refuses_unknown_ones() -> None:
    def plain(topic: str, n: int = 1) -> None: ...

    d = dataclasses.replace(deployment(plain))
    with pytest.raises(
        InvalidInputError, match=r"unexpected keyword argument 'x'.*it takes: topic, n"
    ):
        bind(d, [], {"topic": "t", "x": 1})
    with pytest.raises(InvalidInputError, match="argument 'n' must be an integer"):
        bind(d, [], {"topic": "t", "n": True})


def test_arguments_reach_the_flow_as_its_annotated_types(tmp_path: Any) -> None:
    """The image reads inputs back with the flow's own annotations, as a resume does."""
    from kitaru._artifact_io import load_value
    from kitaru.deployments._invoke import input_artifacts

    d = deployment(flow_fn)
    inputs = bind(d, ["late", {"item": "kite", "quantity": 2}, True, "n1"], {"trace": 1})
    store = (tmp_path / "store").as_uri()
    records = {a.name: a for a in input_artifacts("kx_test", store, d, inputs)}
    hints = {"ticket": str, "order": Order, "urgent": bool}
    loaded = {name: load_value(a, store, hint=hints.get(name)) for name, a in records.items()}
    assert loaded == {
        "ticket": "late",
        "order": Order(item="kite", quantity=2),
        "urgent": True,
        "notes": ("n1",),
        "extra": {"trace": 1},
    }
