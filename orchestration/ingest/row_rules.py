"""The rules a landed row must keep: one classifying query per entity gives each row its
typed quarantine reason, or none; accepted rows are typed by ACCEPTED_COLUMNS."""

from __future__ import annotations

from orchestration.ingest.file_readers import Source

# The largest amount (price, revenue, price x quantity) a row may carry: money is
# numeric(28, 4) in the models, and this leaves ten digits for sums. A larger one is an
# invalid_number.
MAX_AMOUNT = 10**14


# Each entity's rows are classified by one query over a source (`landed`): the first
# failing rule names the reason; rows with no reason are accepted unless duplicates.
# A timestamp is parsed as an instant (no offset means UTC) and stored as naive UTC.
# timezone('UTC', t) does that through ICU, row by row; for a finite instant its epoch
# microseconds read as a timestamp are the same value, several times faster.
def _utc(instant: str) -> str:
    """Naive UTC, or null for 'infinity' and '-infinity', which DuckDB reads as
    timestamps but name no instant."""
    return f"case when isfinite({instant}) then make_timestamp(epoch_us({instant})) end"


# ISO 8601 forms that DuckDB's cast does not read, tried only where the cast fails: the
# basic format (20260105T100000Z, 20260105T1000+0100), a comma before the fraction,
# lowercase t and z, hour-only times, ordinal dates (2026-005). strptime reads fields of
# any width ("2026-05" would become 5 January), so a value must first have one of these
# shapes exactly. Week dates (2026-W02-1) stay unparseable.
_OFFSET = r"([+-]\d{2}(:?\d{2})?)?"
_ISO_SHAPES = "|".join(
    (
        rf"\d{{8}}(T\d{{2}}(\d{{2}}(\d{{2}}(\.\d+)?)?)?{_OFFSET})?",
        rf"\d{{4}}-\d{{2}}-\d{{2}}T\d{{2}}{_OFFSET}",
        rf"\d{{4}}-\d{{3}}(T\d{{2}}:\d{{2}}(:\d{{2}}(\.\d+)?)?{_OFFSET})?",
    )
)
_ISO_FORMATS = (
    "%Y%m%dT%H%M%S.%f%z", "%Y%m%dT%H%M%S%z", "%Y%m%dT%H%M%z", "%Y%m%dT%H%z",
    "%Y%m%dT%H%M%S.%f", "%Y%m%dT%H%M%S", "%Y%m%dT%H%M", "%Y%m%dT%H", "%Y%m%d",
    "%Y-%m-%dT%H%z", "%Y-%m-%dT%H",
    "%Y-%jT%H:%M:%S.%f%z", "%Y-%jT%H:%M:%S%z", "%Y-%jT%H:%M%z", "%Y-%jT%H:%M:%S.%f",
    "%Y-%jT%H:%M:%S", "%Y-%jT%H:%M", "%Y-%j",
)  # fmt: skip


def _instant(text: str) -> str:
    """The timestamptz a landed value stands for, or null. CASE, not COALESCE: DuckDB
    evaluates a CASE branch only for the rows that reach it, so well-formed values pay
    for one cast."""
    direct = f"try_cast({text} as timestamptz)"
    normal = f"regexp_replace(replace(upper(cast({text} as varchar)), ',', '.'), 'Z$', '+00:00')"
    formats = "[" + ", ".join(f"'{form}'" for form in _ISO_FORMATS) + "]"
    return (
        f"case when {direct} is not null then {direct} "
        f"when regexp_full_match({normal}, '{_ISO_SHAPES}') "
        f"then try_strptime({normal}, {formats}) "
        f"else try_cast({normal} as timestamptz) end"
    )


_CLASSIFY_SQL = {
    "events": f"""
        parsed as (
            select *,
                {_instant("occurred_at")} as occurred_at_instant,
                try_cast(price as double) as price_value,
                try_cast(revenue as double) as revenue_value,
                try_cast(quantity as double) as quantity_value,
                try_cast(duration_seconds as double) as duration_value
            from landed
        ),
        timed as (select *, {_utc("occurred_at_instant")} as occurred_at_utc from parsed)
        select *,
            case
                when not is_readable then 'malformed_row'
                when event_id is null then 'missing_event_id'
                when event_type is null then 'missing_event_type'
                when occurred_at_utc is null then 'unparseable_timestamp'
                when user_id is null and anonymous_id is null then 'missing_identity'
                when (price is not null and not coalesce(
                        isfinite(price_value) and price_value < {MAX_AMOUNT}, false))
                  or (revenue is not null and not coalesce(
                        isfinite(revenue_value) and revenue_value < {MAX_AMOUNT}, false))
                  or coalesce(price_value * quantity_value >= {MAX_AMOUNT}, false)
                  or (quantity is not null and not coalesce(
                        isfinite(quantity_value) and quantity_value = floor(quantity_value)
                        and try_cast(quantity_value as bigint) is not null, false))
                  or (duration_seconds is not null
                        and not coalesce(isfinite(duration_value), false))
                    then 'invalid_number'
                when price_value < 0 or revenue_value < 0 or quantity_value < 0
                    then 'negative_amount'
                when properties is not null and not (
                    coalesce(json_valid(properties), false)
                    and json_type(case when json_valid(properties) then properties end)
                        = 'OBJECT')
                    then 'malformed_properties'
                when occurred_at_utc > $ingested_at + interval 1 day then 'future_timestamp'
            end as reason
        from timed
    """,
    "customers": f"""
        parsed as (
            select *, {_instant("signed_up_at")} as signed_up_at_instant
            from landed
        ),
        timed as (select *, {_utc("signed_up_at_instant")} as signed_up_at_utc from parsed)
        select *,
            case
                when not is_readable then 'malformed_row'
                when customer_id is null then 'missing_customer_id'
                when signed_up_at is not null and signed_up_at_utc is null
                    then 'unparseable_timestamp'
            end as reason
        from timed
    """,
    "erasure_requests": f"""
        parsed as (
            select *, {_instant("requested_at")} as requested_at_instant
            from landed
        ),
        timed as (select *, {_utc("requested_at_instant")} as requested_at_utc from parsed)
        select *,
            case
                when not is_readable then 'malformed_row'
                when user_id is null then 'missing_user_id'
                when requested_at is not null and requested_at_utc is null
                    then 'unparseable_timestamp'
            end as reason
        from timed
    """,
}


def classified(source: Source) -> str:
    return f"with landed as ({source.relation}), {_CLASSIFY_SQL[source.entity]}"


# Pass 1 keeps, per landed row, what the later steps need: its reason, the event_id of an
# event that may be accepted (for de-duplication), and the raw row of a bad JSON line.
# The raw row of a bad CSV or Parquet row is built later, for those rows only.
DECIDED_KEY = {"events": "event_id"}

_CONSENT = "coalesce(lower({0}) in ('true', 't', '1', 'yes', 'y'), false)"

# Pass 2: the typed values of accepted rows, in the column order of their raw table.
ACCEPTED_COLUMNS = {
    "events": """
        event_id, event_type, occurred_at_utc, user_id, anonymous_id, session_id,
        product_id, category, price_value, revenue_value, cast(quantity_value as bigint),
        order_id, duration_value,
        case when properties is not null then cast(json(properties) as varchar) end
    """,
    "customers": f"""
        customer_id, email, phone, signed_up_at_utc, country,
        {_CONSENT.format("consent_email")}, {_CONSENT.format("consent_sms")},
        {_CONSENT.format("consent_push")}
    """,
    "erasure_requests": "user_id, coalesce(requested_at_utc, $ingested_at)",
}
