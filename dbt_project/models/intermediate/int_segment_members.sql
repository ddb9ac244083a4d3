{#- One row per (segment, user) that a segment model selects as of as_of, with the
    segment's settings and the user's holdout draw. -#}
{%- set segments = segment_catalog() -%}

with

members as (

    {% for segment in segments %}
    select distinct
        cast('{{ segment.name }}' as {{ dbt.type_string() }}) as segment,
        cast(user_id as {{ dbt.type_string() }}) as user_id,
        cast('{{ segment.channel }}' as {{ dbt.type_string() }}) as channel,
        {{ segment.priority }} as priority,
        {{ segment.holdout_share }} as holdout_share,
        {{ segment.cooldown_days }} as cooldown_days,
        {{ segment.suppress_converted }} as suppress_converted
    from {{ segment.relation }}
    where user_id is not null
    {% if not loop.last %}union all{% endif %}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_string() }}) as user_id,
        cast(null as {{ dbt.type_string() }}) as channel,
        0 as priority,
        0.0 as holdout_share,
        0 as cooldown_days,
        false as suppress_converted
    where 1 = 0
    {% endfor %}

),

final as (

    select
        *,
        {{ holdout_bucket('segment', 'user_id') }} < holdout_share * 10000 as is_holdout
    from members

)

select * from final
