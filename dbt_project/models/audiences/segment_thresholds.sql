{#- What each segment threshold resolved to as of as_of: one row per threshold var a
    segment lists under meta.segment.thresholds, and per cluster or journey stage for the
    per-user forms (macro threshold()). The export manifest and Dagster record them. -#}
{%- set rows = [] -%}
{%- for segment in segment_catalog() -%}
    {%- for name in segment.thresholds -%}
        {%- set value = var(name) -%}
        {%- set base = {'segment': segment.name, 'var': name} -%}
        {%- if value is number and value is not boolean -%}
            {%- do rows.append(dict(base, kind='number', applies_to=none, value=value)) -%}
        {%- elif value is mapping and 'percentile' in value -%}
            {%- do rows.append(dict(base, kind='percentile', applies_to=value['percentile'] ~ ' of ' ~ value['of'],
                value="(select " ~ percentile_of(value['of'], value['percentile']) ~ " from " ~ _threshold_population(name, value) ~ ")")) -%}
        {%- elif value is mapping and ('by_cluster' in value or 'by_journey_stage' in value) -%}
            {%- set kind = 'by_cluster' if 'by_cluster' in value else 'by_journey_stage' -%}
            {%- for key, number in value[kind].items() -%}
                {%- do rows.append(dict(base, kind=kind, applies_to=key, value=number)) -%}
            {%- endfor -%}
            {%- do rows.append(dict(base, kind=kind, applies_to='default', value=value['default'])) -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error(name ~ " (a threshold of " ~ segment.name ~ ") is not a threshold: see macros/thresholds.sql") }}
        {%- endif -%}
    {%- endfor -%}
{%- endfor %}
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
