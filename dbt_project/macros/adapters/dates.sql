{#- Whole days from `start` to `finish`, floored (exact to the microsecond). -#}
{% macro whole_days_between(start, finish) -%}
    {{ return(adapter.dispatch('whole_days_between', 'behavioral_segments')(start, finish)) }}
{%- endmacro %}

{% macro default__whole_days_between(start, finish) -%}
    floor({{ dbt.datediff(start, finish, 'microsecond') }} / 86400000000.0)
{%- endmacro %}

{#- dbt-spark's datediff has no microseconds. -#}
{% macro spark__whole_days_between(start, finish) -%}
    floor(cast(unix_micros({{ finish }}) - unix_micros({{ start }}) as double) / 86400000000)
{%- endmacro %}
