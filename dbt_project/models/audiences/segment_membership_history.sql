{{
    config(
        materialized=incremental_materialization(),
        incremental_strategy=incremental_strategy('delete+insert'),
        unique_key=['segment', 'user_id', 'valid_from'],
        on_schema_change='append_new_columns',
        full_refresh=stateful_full_refresh(),
    )
}}

{#- One row per stay of a user in a segment. Each run compares the members as of as_of
    with the open stays: new members open a stay (valid_from = as_of), departed members
    close theirs (valid_to = as_of). A user who leaves and comes back gets a new row.
    History only moves forward: a run as of an instant before the last one recorded (a
    backfill) records nothing here; segment_memberships still answers as of that instant.
    Events cannot give these rows back, so `--full-refresh` keeps them (see
    stateful_full_refresh). -#}

{%- set history_is_ahead = false -%}
{%- if execute and is_incremental() -%}
    {%- set latest = run_query("select cast(max(valid_from) as " ~ dbt.type_string() ~ ") from " ~ this).columns[0].values()[0] -%}
    {%- set requested = as_of_text() -%}
    {%- if latest and requested and requested < latest -%}
        {%- set history_is_ahead = true -%}
        {{ log("segment_membership_history is recorded up to " ~ latest ~ "; as_of " ~ requested ~ " is earlier, so it is left as it is", info=true) }}
    {%- endif -%}
{%- endif %}

with

current_members as (

    select distinct
        segment,
        user_id,
        is_holdout
    from {{ ref('int_segment_members') }}

),

{% if is_incremental() %}

open_stays as (

    select segment, user_id, valid_from, is_holdout from {{ this }} where valid_to is null

),

exited as (

    select
        open_stays.segment,
        open_stays.user_id,
        open_stays.valid_from,
        {{ as_of() }} as valid_to,
        open_stays.is_holdout
    from open_stays
    left join current_members
        on open_stays.segment = current_members.segment
        and open_stays.user_id = current_members.user_id
    where current_members.user_id is null

),

entered as (

    select
        current_members.segment,
        current_members.user_id,
        {{ as_of() }} as valid_from,
        cast(null as {{ dbt.type_timestamp() }}) as valid_to,
        current_members.is_holdout
    from current_members
    left join open_stays
        on current_members.segment = open_stays.segment
        and current_members.user_id = open_stays.user_id
    where open_stays.user_id is null

),

final as (

    select * from exited
    union all
    select * from entered

)

{% else %}

final as (

    select
        segment,
        user_id,
        {{ as_of() }} as valid_from,
        cast(null as {{ dbt.type_timestamp() }}) as valid_to,
        is_holdout
    from current_members

)

{% endif %}

select * from final
{% if history_is_ahead %}where 1 = 0{% endif %}
