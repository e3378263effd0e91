"""The PaymentIntents of the local Stripe server: their state machine and idempotency.

As strict as Stripe's API reference and multicapture guide (docs/payments.md, "How the
local server follows Stripe"): amounts are integers in the smallest currency unit; capture
only in ``requires_capture``, ``amount_to_capture`` at most ``amount_capturable``
(``amount_too_large``), ``final_capture=false`` only where multicapture is available; a
non-final capture keeps the intent in ``requires_capture`` (even with nothing left), a
final one releases the rest (``succeeded``); the rest of a partially captured intent is
released by a final capture of 0, not by cancel; cancel from ``requires_capture`` with
nothing captured (``canceled``); past its ``capture_before`` an authorization lapses:
``canceled`` (``expired``) if nothing was captured, else ``succeeded``. The same
Idempotency-Key with the same parameters gets the stored answer of the first request
(``Idempotent-Replayed: true``); with other parameters, a 400 ``idempotency_error``; a
request refused by parameter validation stores nothing under its key.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

Answer = tuple[int, dict[str, Any]]
_INT = frozenset("0123456789")
# refused before the endpoint runs: Stripe saves no idempotent result for these
_VALIDATION = frozenset(
    {
        "parameter_unknown",
        "parameter_invalid_integer",
        "parameter_invalid_boolean",
        "parameter_invalid_empty",
        "parameter_missing",
    }
)


def stripe_error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> Answer:
    """An error answer in Stripe's shape: ``{"error": {type, code, message, param, doc_url}}``."""
    body: dict[str, Any] = {"type": kind, "message": message}
    if code:
        body["code"] = code
        body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        body["param"] = param
    return status, {"error": body}


@dataclass
class Intent:
    """One PaymentIntent created with capture_method=manual and already authorized."""

    id: str
    amount: int
    currency: str
    capture_before: float  # epoch seconds: the authorization's expiry
    multicapture: bool = False
    status: str = "requires_capture"
    amount_capturable: int = 0
    amount_received: int = 0
    cancellation_reason: str | None = None
    captures: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The object Stripe returns (the fields this project reads, and a few more)."""
        d = asdict(self)
        d.pop("captures")
        d.pop("multicapture")
        d["object"] = "payment_intent"
        d["capture_method"] = "manual"
        d["livemode"] = False
        d["payment_method_options"] = {
            "card": {"request_multicapture": "if_available" if self.multicapture else "never"}
        }
        return d


class Ledger:
    """Every intent and every idempotent answer, under one lock (requests are short)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.intents: dict[str, Intent] = {}
        self._answers: dict[str, tuple[tuple[str, str, tuple[tuple[str, str], ...]], Answer]] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.executed: list[dict[str, Any]] = []  # every capture or cancel carried out
        self.replayed = 0  # answers given from the idempotency store

    def add_intent(
        self,
        intent_id: str | None,
        amount: int,
        currency: str,
        *,
        capture_before: float | None = None,
        multicapture: bool = False,
    ) -> Intent:
        """Create an authorized intent (the demo's and the tests' fixtures)."""
        with self._lock:
            return self._new_intent(intent_id, amount, currency, capture_before, multicapture)

    def _new_intent(
        self,
        intent_id: str | None,
        amount: int,
        currency: str,
        capture_before: float | None,
        multicapture: bool,
    ) -> Intent:
        iid = intent_id or f"pi_local{next(self._ids):08d}"
        before = capture_before if capture_before is not None else self.clock() + 7 * 86400
        intent = Intent(
            iid, amount, currency.lower(), before, multicapture, amount_capturable=amount
        )
        self.intents[iid] = intent
        return intent

    def handle(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        idempotency_key: str | None,
        *,
        crash: Answer | None = None,
    ) -> tuple[Answer, bool]:
        """Answer one authenticated API request: (status and body, replayed).

        ``crash``: the endpoint began and failed with this answer before taking effect;
        Stripe saves it under the key like any other answer (a 500 is replayed too).
        """
        fingerprint = (method, path, tuple(sorted(params.items())))
        with self._lock:
            if idempotency_key and idempotency_key in self._answers:
                first, answer = self._answers[idempotency_key]
                if first != fingerprint:
                    return stripe_error(
                        400,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{idempotency_key}' if you meant to execute a different request.",
                        kind="idempotency_error",
                    ), False
                self.replayed += 1
                return answer, True
            answer = crash or self._route(method, path, params, idempotency_key)
            if idempotency_key and method == "POST" and _saved(answer):
                self._answers[idempotency_key] = (fingerprint, answer)
            return answer, False

    def _route(self, method: str, path: str, params: Mapping[str, str], key: str | None) -> Answer:
        parts = path.strip("/").split("/")
        if parts[:2] != ["v1", "payment_intents"]:
            return stripe_error(404, f"Unrecognized request URL ({method}: {path}).")
        if len(parts) == 2 and method == "POST":
            return self._create(params)
        intent = self.intents.get(parts[2]) if len(parts) >= 3 else None
        if intent is None:
            return stripe_error(
                404,
                f"No such payment_intent: '{parts[2] if len(parts) > 2 else ''}'",
                code="resource_missing",
                param="intent",
            )
        self._expire(intent)
        if len(parts) == 3 and method == "GET":
            return 200, intent.as_json()
        if len(parts) == 4 and method == "POST" and parts[3] == "capture":
            return self._capture(intent, params, key)
        if len(parts) == 4 and method == "POST" and parts[3] == "cancel":
            return self._cancel(intent, params, key)
        return stripe_error(404, f"Unrecognized request URL ({method}: {path}).")

    def _expire(self, intent: Intent) -> None:
        """An uncaptured authorization past its expiry is canceled by Stripe itself."""
        if intent.status == "requires_capture" and self.clock() >= intent.capture_before:
            # uncaptured: canceled ("expired" since API 2025-03-31.basil, "automatic" before);
            # partially captured (multicapture): succeeded, the rest released
            if intent.amount_received:
                intent.status = "succeeded"
            else:
                intent.status = "canceled"
                intent.cancellation_reason = "expired"
            intent.amount_capturable = 0

    def _create(self, params: Mapping[str, str]) -> Answer:
        amount = params.get("amount", "")
        if not amount or set(amount) - _INT or int(amount) <= 0:
            return stripe_error(
                400, "Invalid positive integer", code="parameter_invalid_integer", param="amount"
            )
        currency = params.get("currency", "")
        if len(currency) != 3 or not currency.isalpha():
            return stripe_error(
                400, "Invalid currency", code="parameter_invalid_empty", param="currency"
            )
        multi = params.get("payment_method_options[card][request_multicapture]") == "if_available"
        before = params.get("capture_before")  # this server's own fixture parameter
        intent = self._new_intent(
            None, int(amount), currency, float(before) if before else None, multi
        )
        return 200, intent.as_json()

    def _unexpected(self, intent: Intent, action: str) -> Answer:
        return stripe_error(
            400,
            f"This PaymentIntent could not be {action} because it has a status of "
            f"{intent.status}. Only a PaymentIntent with one of the following statuses may be "
            f"{action}: requires_capture.",
            code="payment_intent_unexpected_state",
        )

    def _capture(self, intent: Intent, params: Mapping[str, str], key: str | None) -> Answer:
        unknown = set(params) - {"amount_to_capture", "final_capture"}
        if unknown:
            return stripe_error(
                400,
                f"Received unknown parameter: {sorted(unknown)[0]}",
                code="parameter_unknown",
                param=sorted(unknown)[0],
            )
        raw = params.get("amount_to_capture", str(intent.amount_capturable))
        if not raw or set(raw) - _INT:
            return stripe_error(
                400,
                "Invalid integer: " + raw[:40],
                code="parameter_invalid_integer",
                param="amount_to_capture",
            )
        final_raw = params.get("final_capture", "true")
        if final_raw not in ("true", "false"):
            return stripe_error(
                400,
                "Invalid boolean: " + final_raw[:40],
                code="parameter_invalid_boolean",
                param="final_capture",
            )
        final = final_raw == "true"
        if not final and not intent.multicapture:
            return stripe_error(
                400,
                "final_capture can only be false when multicapture is "
                "available for this PaymentIntent",
                param="final_capture",
            )
        if intent.status != "requires_capture":
            return self._unexpected(intent, "captured")
        amount = int(raw)
        if amount > intent.amount_capturable:
            return stripe_error(
                400,
                f"The amount to capture ({amount}) must be at most the amount capturable "
                f"({intent.amount_capturable}).",
                code="amount_too_large",
                param="amount_to_capture",
            )
        # 0 only to release the rest of a partially captured intent (final, multicapture)
        release_rest = amount == 0 and final and intent.multicapture and intent.amount_received > 0
        if amount <= 0 and not release_rest:
            return stripe_error(
                400,
                "The amount to capture must be positive; 0 (with final_capture=true) only "
                "releases the rest of a partially captured multicapture PaymentIntent.",
                code="amount_too_small",
                param="amount_to_capture",
            )
        if amount:
            intent.captures.append(amount)
        intent.amount_received += amount
        intent.amount_capturable -= amount
        if final:  # a non-final capture stays in requires_capture, even with nothing left
            intent.status = "succeeded"
            intent.amount_capturable = 0  # the rest is released
        action = "capture" if amount else "release"
        self.executed.append(
            {"intent": intent.id, "action": action, "amount": amount, "final": final, "key": key}
        )
        return 200, intent.as_json()

    def _cancel(self, intent: Intent, params: Mapping[str, str], key: str | None) -> Answer:
        reason = params.get("cancellation_reason")
        if reason not in (None, "duplicate", "fraudulent", "requested_by_customer", "abandoned"):
            return stripe_error(
                400, f"Invalid cancellation_reason: {reason}", param="cancellation_reason"
            )
        if intent.status != "requires_capture":
            return self._unexpected(intent, "canceled")
        if intent.amount_received:
            # Stripe's multicapture guide releases the rest of a partially captured intent
            # with a final capture of 0; it documents no cancel there: refused (the strict
            # reading), so a client passes here only by the documented way
            return stripe_error(
                400,
                f"This PaymentIntent has been partially captured ({intent.amount_received}); "
                "to release the rest, capture with amount_to_capture=0 and final_capture=true.",
                code="payment_intent_unexpected_state",
            )
        intent.status = "canceled"
        intent.cancellation_reason = reason
        intent.amount_capturable = 0
        self.executed.append(
            {"intent": intent.id, "action": "cancel", "amount": None, "final": True, "key": key}
        )
        return 200, intent.as_json()


def _saved(answer: Answer) -> bool:
    """Whether Stripe stores this answer under its key: not 429s nor validation refusals."""
    status, body = answer
    return status != 429 and body.get("error", {}).get("code") not in _VALIDATION
