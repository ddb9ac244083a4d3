{#- What each segment threshold resolved to as of as_of: one row per threshold var a
    segment lists under meta.segment.thresholds, and per cluster or journey stage for the
    per-user forms (macro threshold()). The export manifest and Dagster record them. -#}
{%- set rows = resolved_thresholds() %}
-- depends_on: {{ ref('user_metrics') }}, {{ ref('user_traits') }}

with

resolved as (

    {% for row in rows %}
    select
        cast('{{ row.segment }}' as {{ dbt.type_string() }}) as segment,
        cast('{{ row.var }}' as {{ dbt.type_string() }}) as threshold_var,
        cast('{{ row.kind }}' as {{ dbt.type_string() }}) as kind,
        cast({{ "'" ~ (row.applies_to | replace("'", "''")) ~ "'" if row.applies_to is not none else 'null' }} as {{ dbt.type_string() }})
            as applies_to,
        cast({{ row.value }} as {{ type_double() }}) as threshold_value
    {% if not loop.last %}union all{% endif %}
    {% else %}
    select
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_string() }}) as threshold_var,
        cast(null as {{ dbt.type_string() }}) as kind,
        cast(null as {{ dbt.type_string() }}) as applies_to,
        cast(null as {{ type_double() }}) as threshold_value
    where 1 = 0
    {% endfor %}

),

final as (

    select
        *,
        {{ as_of() }} as as_of
    from resolved

)

select * from final
