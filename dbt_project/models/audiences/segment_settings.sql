{#- One row per segment of the project, with its settings as the segment_catalog macro
    checked and defaulted them: what the export, its checks and the report read, so a
    segment is declared once, in its model's YAML. Numbers are cast: a literal's type
    differs from one warehouse to the next. -#}
{%- set segments = segment_catalog() -%}
{%- set channels = segment_channels() -%}

with

catalog as (

    {% for segment in segments %}
    {%- set address = channels[segment.channel].address %}
    select
        cast('{{ segment.name }}' as {{ dbt.type_string() }}) as segment,
        cast('{{ segment.model }}' as {{ dbt.type_string() }}) as model_name,
        cast('{{ segment.channel }}' as {{ dbt.type_string() }}) as channel,
        cast({{ "'" ~ address ~ "'" if address else 'null' }} as {{ dbt.type_string() }})
            as address_column,
        cast({{ segment.priority }} as {{ dbt.type_int() }}) as priority,
        cast({{ segment.holdout_share }} as {{ type_double() }}) as holdout_share,
        cast({{ segment.cooldown_days }} as {{ dbt.type_int() }}) as cooldown_days,
        {{ segment.suppress_converted }} as suppress_converted,
        {{ segment.recovery_campaign }} as recovery_campaign
    {% if not loop.last %}union all{% endif %}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_string() }}) as model_name,
        cast(null as {{ dbt.type_string() }}) as channel,
        cast(null as {{ dbt.type_string() }}) as address_column,
        cast(0 as {{ dbt.type_int() }}) as priority,
        cast(0 as {{ type_double() }}) as holdout_share,
        cast(0 as {{ dbt.type_int() }}) as cooldown_days,
        false as suppress_converted,
        false as recovery_campaign
    where 1 = 0
    {% endfor %}

),

final as (

    select * from catalog

)

select * from final
