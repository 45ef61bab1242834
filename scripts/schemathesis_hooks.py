"""schemathesis hooks for scripts/schemathesis.sh.

One check, `positive_data_acceptance_beyond_schema`, replaces schemathesis's
`positive_data_acceptance` (turned off in schemathesis.toml). It is the same check (a request
the document calls valid must not be refused as invalid) except for one kind of refusal no
JSON Schema can rule out: a 422 whose every field error depends on the shop's data or on
several fields at once. Those errors, and only those, are listed in BEYOND_SCHEMA, each with
the reason it cannot be in the document. A 422 with any other error still fails the run.
"""

import re

import schemathesis

# Field errors a schema-valid request can still get, and why the document cannot prevent them.
BEYOND_SCHEMA = [
    # A reference to another resource that does not exist (or not in a usable state): which
    # ids exist is data, not schema.
    r"no such (product|ingredient|customer)",
    r".+ is not on sale",
    r"this customer was anonymised",
    # Names are unique among products and among ingredients: data again.
    r"an? (product|ingredient) with this name exists already",
    # A restock may not take on-hand past the largest stock the shop holds: depends on what
    # is on hand.
    r"would take on-hand past the largest stock this shop can hold",
    # Uniqueness of one property across array items (a product on one line, an ingredient
    # once per recipe): JSON Schema's uniqueItems compares whole items only.
    r"this product is already on another line: put its whole quantity on one line",
    r"appears more than once",
    # A report's range: `to` not before `from`, at most 366 days. JSON Schema cannot compare
    # two parameters.
    r"must not be before from",
    r"a report covers at most \d+ days",
]

# Problems (by `code`) a schema-valid request can still get, and why.
CODES_BEYOND_SCHEMA = {
    # An Idempotency-Key is bound to the first request it came with; whether this key came
    # with another one before is state, not schema.
    "idempotency_key_reused",
}

# What positive_data_acceptance expects of a valid request, as schemathesis has it.
ACCEPTED = {401, 403, 404, 409, 429}


@schemathesis.check
def positive_data_acceptance_beyond_schema(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    status = response.status_code
    if 200 <= status < 400 or status >= 500 or status in ACCEPTED:
        return None
    if status == 422:
        try:
            problem = response.json()
        except ValueError:  # a 422 that is not a problem document is a failure
            problem = {}
        if problem.get("code") in CODES_BEYOND_SCHEMA:
            return None
        errors = problem.get("errors") or []
        unexplained = [
            e for e in errors if not any(re.fullmatch(p, str(e.get("message", ""))) for p in BEYOND_SCHEMA)
        ]
        if errors and not unexplained:
            return None
        raise AssertionError(
            "Valid data should have been accepted; these errors are not ones a schema cannot "
            f"rule out: {unexplained or response.text}"
        )
    raise AssertionError(f"Valid data should have been accepted, got {status}: {response.text}")
