"""The notification automation for blocked and failed runs, kept by `backorders serve`.

One automation, found by its name: `serve` creates it when it is missing and updates
it in place when it differs (a new notification block, say), so running `serve` again
never duplicates it. Its trigger is the cycle's own events `backorders.run.blocked` and
`backorders.run.failed`; its action notifies the block named by the setting
`notification_block` ("<block-type-slug>/<name>"), or, with none set, does nothing but
is recorded: the automation and each of its firings are listed in the UI (Automations,
Event feed: `prefect.automation.triggered`).
"""

from __future__ import annotations

from typing import Any

from backorders import events
from backorders.settings import Settings

NAME = "backorders: notify when a run is blocked or fails"
SUBJECT = "backorders run {{ event.resource.name }}: {{ event.event.split('.')[-1] }}"
BODY = (
    "The backorder cycle run {{ event.resource.name }} ended "
    "{{ event.event.split('.')[-1] }}: {{ event.payload.message }}\n"
    "As of {{ event.payload.as_of }}; see the run's summary artifact in the Prefect UI."
)


def _action(settings: Settings) -> Any:
    from prefect.blocks.core import Block
    from prefect.events.actions import DoNothing, SendNotification

    if not settings.notification_block:
        return DoNothing()
    block = Block.load(settings.notification_block)
    return SendNotification(block_document_id=block._block_document_id, subject=SUBJECT, body=BODY)


def notification_automation(settings: Settings) -> Any:
    """The automation as it should be (not yet created)."""
    from prefect.automations import Automation
    from prefect.events.schemas.automations import EventTrigger, Posture

    return Automation(
        name=NAME,
        # the UI draws this trigger as "A custom trigger" and a DoNothing action as an
        # empty box: the description says both
        description=(
            "When: an event backorders.run.blocked (a validation gate closed) or "
            "backorders.run.failed, at once for each. Then: "
            + (
                f"a notification to the block {settings.notification_block}."
                if settings.notification_block
                else "nothing is sent (no notification_block set: "
                "BACKORDERS_NOTIFICATION_BLOCK=<block-type>/<name>); each firing is in "
                "the Event Feed."
            )
            + " docs/operations.md, 'Notification on a blocked or failed run'."
        ),
        trigger=EventTrigger(
            expect={"backorders.run.blocked", "backorders.run.failed"},
            match={"prefect.resource.id": events.RUN_PREFIX + "*"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[_action(settings)],
    )


def ensure_notification_automation(settings: Settings) -> Any:
    """Create the automation, or update the existing one; never a second one."""
    from prefect.automations import Automation

    wanted = notification_automation(settings)
    try:
        found = Automation.read(name=NAME)
    except ValueError:  # "Automation with name ... not found"
        return wanted.create()
    same = ("trigger", "actions", "description", "enabled")
    if found.model_dump(include=set(same)) != wanted.model_dump(include=set(same)):
        for field in same:
            setattr(found, field, getattr(wanted, field))
        found.update()
    return found
