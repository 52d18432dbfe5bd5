"""Loaded into ``st run`` (``SCHEMATHESIS_HOOKS``) by ``test_schemathesis.py``.

Every check of schemathesis runs, as ``--checks all`` says, with one refinement:
``positive_data_acceptance`` fails a schema-valid request the service refuses, but some refusals
no schema can state: a rule across fields (a day's end after its start) or over stored data (a
title in one of the company's locales, days that do not overlap). The run lets
``positive_data_acceptance`` take 422, and :func:`refused_only_by_rules_a_schema_cannot_state`
fails a 422 to a schema-valid request unless each error it names is one of :data:`RULES`. A
refusal of anything else (a length, a pattern, a range, a type, a value a field takes) means the
schema does not say what the service accepts: state it there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import schemathesis
from schemathesis import Case, CheckContext, Response
from schemathesis.core import NOT_SET
from schemathesis.core.jsonschema import make_validator


@dataclass(frozen=True)
class Rule:
    """A refusal no schema can state: matched by the error's ``code`` and/or a part of its
    ``message`` (catalog names some rules by message only)."""

    why: str
    code: str | None = None
    message: str | None = None

    def names(self, error: dict[str, Any]) -> bool:
        if self.code is not None and error.get("code") != self.code:
            return False
        return self.message is None or self.message in str(error.get("message", ""))


#: Every rule a schema-valid request may be refused by with 422, and why the schema cannot say it.
RULES = (
    # over stored data
    Rule("the company's locales (its settings)", message="is not one of the company's locales"),
    Rule("Zoom enabled in the company's settings", code="zoom_disabled"),
    Rule("the event is undated (stored)", code="zoom_undated"),
    Rule("an account the bridge announced (stored)", code="zoom_account_unknown"),
    Rule("an account still connected (stored)", code="zoom_account_disconnected"),
    Rule("the account's role and the training module", code="auto_recording_unavailable"),
    Rule("the other days of the session (R-DAY-5)", code="days_overlap"),
    Rule("the session's first day (R-SES-7)", code="registration_end_after_first_day"),
    Rule("an undated event (stored) has no registration end", code="registration_end_undated"),
    Rule(
        "a dated event (stored) needs one", message="A dated event's session needs a registration"
    ),
    Rule("the seats already taken (R-SES-9)", code="limit_below_seats_taken"),
    # across fields, or across the request and the stored resource (a PATCH)
    Rule("the end after the start (R-DAY-6)", code="end_before_start"),
    Rule("an offline day's address", message="An offline day needs an address."),
    Rule("an online day's link", code="invalid_url", message="An online day needs an absolute"),
    Rule("a zoom day's settings", message="A Zoom day needs its Zoom settings."),
    Rule("a limit when the limit is on", message="A participant limit (a positive number)"),
    Rule("each locale once, trimmed and in any case", message="is listed twice"),
    Rule("a recovery's span: until after since", message="until must come after since"),
    # over earlier requests: the same Idempotency-Key with another request (te_shared.idempotency)
    Rule("an Idempotency-Key already used with another request", code="idempotency_key_reused"),
    # over data elsewhere
    Rule("Zoom's answer to the credentials", message="Zoom refused these credentials"),
    Rule("a cursor the service issued (opaque: pass `next_cursor` back)", code="invalid_cursor"),
    # where the Zoom OAuth flow returns: a URL's origin must be one the settings allow
    Rule("an admin-panel origin of ZOOM_RETURN_ORIGINS", code="return_origin_not_allowed"),
    # a webhook endpoint's target (integrations): the scheme the deployment's settings allow,
    # and where its host resolves (DNS, and which networks the settings allow)
    Rule("https, or plain http where the settings allow it", code="https_required"),
    Rule("a target host that resolves", code="target_unresolvable"),
    Rule("a target on public addresses, or networks the settings allow", code="target_refused"),
    # what an address may say (R-DAY-2): decoded text, stated in the field's description
    Rule("no script, data or file links in an address", code="unsafe_link"),
    Rule("no HTML markup in an address", code="markup"),
)


def unnamed_refusals(body: Any) -> list[dict[str, Any]]:
    """The errors of a 422 problem that name no rule of :data:`RULES` (all of them when the
    problem names no errors)."""
    if not isinstance(body, dict):
        return [{"message": repr(body)}]
    errors = body.get("errors") or [{"code": body.get("code"), "message": body.get("detail")}]
    return [e for e in errors if not any(rule.names(e) for rule in RULES)]


def body_is_schema_valid(case: Case[Any]) -> bool:
    """The body sent validates against the operation's schema for it (True when there is none,
    or it cannot be told)."""
    if case.body is NOT_SET:
        return True
    try:
        alternative = case.operation.get_body_for_media_type(case.media_type)
        if alternative is None:
            return True
        validator_cls = case.operation.schema.adapter.jsonschema_validator_cls
        return bool(make_validator(alternative.optimized_schema, validator_cls).is_valid(case.body))
    except Exception:  # schemathesis internals moved: check the request as it was sent
        return True


@schemathesis.check
def refused_only_by_rules_a_schema_cannot_state(
    ctx: CheckContext,
    response: Response,
    case: Case[Any],
) -> bool | None:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    if not body_is_schema_valid(case):
        return None  # the stateful phase sometimes adds a property ("body") to a positive case
    try:
        body = response.json()
    except ValueError:
        body = response.text
    unnamed = unnamed_refusals(body)
    if unnamed:
        raise AssertionError(
            "A schema-valid request was refused (422) by a constraint the schema does not state: "
            + "; ".join(f"{e.get('field', '?')}: {e.get('message')}" for e in unnamed)
        )
    return None
