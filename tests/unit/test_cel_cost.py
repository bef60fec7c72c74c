"""One event's CEL evaluation stays cheap: a comprehension nested in another is refused at
save time, and an expression with a comprehension handed a list or map over the bound fails
at once (a `filter_error` naming the field), whatever the engine."""

from __future__ import annotations

import resource
from typing import Any

import pytest
from pydantic import ValidationError

from kinds import KINDS
from kinds.config import CEL_DECLARATIONS
from kinds.routing import FilterFailed
from runtime.cel import ENGINES, CelEvaluationError, CelType, EngineName, compile
from runtime.cel.cost import comprehension_depth
from tests.unit.support.routing import ORDER, raw, run, trigger

pytestmark = pytest.mark.unit

ITEMS: dict[str, Any] = {**ORDER, "items": [{"sku": f"s{i}", "qty": 1} for i in range(8000)]}


@pytest.mark.parametrize(
    ("expression", "depth"),
    [
        ("event.a == 1", 0),
        ("size(event.items.map(x, x)) > 0", 1),
        ("event.items.map(x, x.qty).filter(q, q > 1) == []", 1),
        ('event.items.all(x, ").map(" != x.sku)', 1),
        ("event.items.exists(x, event.items.exists(y, y.sku == x.sku))", 2),
        ("size(event.a.filter(x, x.b.map(y, y).exists(z, z))) > 0", 2),
    ],
)
def test_comprehension_depth_counts_nesting_not_chaining(expression: str, depth: int) -> None:
    assert comprehension_depth(expression) == depth


def test_nested_comprehensions_are_refused_at_save_time() -> None:
    nested = "event.items.exists(x, event.items.exists(y, y.sku == x.sku))"
    with pytest.raises(ValidationError) as raised:
        KINDS["webhook"].validate_config({"filter": nested})
    [error] = raised.value.errors()
    assert error["type"] == "cel_too_costly"
    assert "inside another is not allowed" in error["msg"]
    chained = "event.items.map(x, x.qty).exists(q, q > 1)"
    assert KINDS["webhook"].validate_config({"filter": chained}) == {"filter": chained}


@pytest.mark.parametrize("engine", ENGINES)
def test_a_comprehension_over_too_many_items_is_a_filter_error_at_once(engine: EngineName) -> None:
    rules = trigger("webhook", engine, filter="size(event.items.map(x, x)) > 0")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    decision = run(raw(ITEMS, definition="webhook", headers={"webhook-id": "m1"}), rules)
    # Unbounded, cel-expr-python's map over 8,000 items peaks near a gigabyte.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024
    assert isinstance(decision, FilterFailed)
    assert decision.error == (
        "filter failed: event.items has 8000 entries; an expression with map, filter, all or "
        "exists sees at most 1000 (TRIGGERLINE_CEL_MAX_COLLECTION_ITEMS)"
    )


@pytest.mark.parametrize("engine", ENGINES)
def test_the_bound_applies_only_to_expressions_with_comprehensions(engine: EngineName) -> None:
    plain = compile("size(event.items) > 7999", CEL_DECLARATIONS, CelType.BOOL, engine, 1000)
    assert plain.evaluate({"event": ITEMS}) is True
    within = compile(
        "event.items.exists(x, x.sku == 's9')", CEL_DECLARATIONS, CelType.BOOL, engine, 1000
    )
    assert within.evaluate({"event": {"items": ITEMS["items"][:1000]}}) is True
    nested_map = {"items": [], "meta": {"tags": list(range(1001))}}
    with pytest.raises(CelEvaluationError, match=r"^event\.meta\.tags has 1001 entries"):
        compile(
            "event.items.exists(x, x == event.meta)", CEL_DECLARATIONS, CelType.BOOL, engine, 1000
        ).evaluate({"event": nested_map})
