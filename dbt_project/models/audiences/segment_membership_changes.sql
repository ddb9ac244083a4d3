{#- One row per segment and day with a change: users who entered and who exited that day. -#}

with

history as (

    select * from {{ ref('segment_membership_history') }}

),

changes as (

    select
        segment,
        cast(valid_from as date) as change_date,
        1 as entered,
        0 as exited
    from history
    union all
    select
        segment,
        cast(valid_to as date) as change_date,
        0 as entered,
        1 as exited
    from history
    where valid_to is not null

),

final as (

    select
        segment,
        change_date,
        -- A sum of integers is a 128-bit integer on DuckDB and a bigint elsewhere.
        cast(sum(entered) as {{ dbt.type_bigint() }}) as entered,
        cast(sum(exited) as {{ dbt.type_bigint() }}) as exited
    from changes
    group by segment, change_date

)

select * from final
