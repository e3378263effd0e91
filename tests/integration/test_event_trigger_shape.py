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
