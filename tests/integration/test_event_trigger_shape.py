"""The supplier-delay deployment's trigger and the run-end event names, as registered."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backorders import events
from flows.deployments import supplier_delay_trigger

pytestmark = pytest.mark.integration


def test_supplier_delay_trigger_starts_one_rerun_per_supplier_per_window() -> None:
    trigger = supplier_delay_trigger({"db": "x.duckdb"}, 120)

    assert trigger.expect == {"backorders.supplier.delayed"}
    assert trigger.posture == "Reactive" and trigger.threshold == 1
    assert trigger.for_each == {"prefect.resource.id"}  # one bucket per supplier
    assert trigger.within == timedelta(seconds=120)
    assert trigger.parameters == {
        "db": "x.duckdb",
        "supplier_id": "{{ event.resource.id }}",
        "event_id": "{{ event.id | string }}",
        "note": "started by event {{ event.id }}",
    }
    # the UI shows this trigger as "A custom trigger": the description says what it does
    assert "backorders.supplier.delayed" in trigger.description
    assert "within 120 s" in trigger.description


def test_the_notification_automation_says_its_trigger_and_action() -> None:
    from backorders.settings import load_settings
    from flows.automations import notification_automation

    described = notification_automation(load_settings()).description

    assert "backorders.run.blocked" in described and "backorders.run.failed" in described
    assert "nothing is sent" in described  # no notification block set: a DoNothing action


def test_a_supplier_id_is_read_from_its_resource_id_or_given_bare() -> None:
    assert events.supplier_id_of("backorders.supplier.SUP-04") == "SUP-04"
    assert events.supplier_id_of("SUP-04") == "SUP-04"


def test_a_negated_label_match_would_drop_outside_events_so_the_trigger_takes_ours_too() -> None:
    """Why our own delay events start reruns (docs/operations.md, "Our own delay events").

    Prefect 3.8.8 matches a trigger's labels on the server (ResourceSpecification.matches):
    a label the event does not carry never matches, negated ("!cycle") or not. A label on
    the cycle's events and a negated match would also drop every outside event sent
    without that label (`prefect event emit --resource-id backorders.supplier.SUP-03`).
    Should a later Prefect let a missing label pass a negated match, this test fails: then
    label the cycle's events and exclude them in the trigger.
    """
    from uuid import uuid4

    from prefect.server.events.schemas.automations import EventTrigger
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.types._datetime import now

    def delayed(**labels: str) -> ReceivedEvent:
        resource = {"prefect.resource.id": events.SUPPLIER_PREFIX + "SUP-03", **labels}
        return ReceivedEvent(
            event=events.SUPPLIER_DELAYED, resource=resource, occurred=now("UTC"), id=uuid4()
        )

    ours = supplier_delay_trigger({"db": "x.duckdb"}, 120)
    outside, own = delayed(), delayed(**{"backorders.origin": "cycle"})
    shape = {"expect": ours.expect, "posture": "Reactive", "threshold": 1}
    negated = EventTrigger(**shape, match={**ours.match.root, "backorders.origin": "!cycle"})

    assert not negated.covers(own)
    assert negated.covers(delayed(**{"backorders.origin": "outside"}))  # negation works...
    assert not negated.covers(outside)  # ...but an event without the label is lost too
    plain = EventTrigger(**shape, match=ours.match.root)
    assert plain.covers(outside) and plain.covers(own)
