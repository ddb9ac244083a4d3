{#- The instant every mart is computed as of, as a timestamp literal (UTC). -#}
{% macro as_of() -%}
    {%- set value = var('segments__as_of', '') | string | trim -%}
    {%- if value == '' -%}
        {%- set value = run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') -%}
    {%- endif -%}
    cast('{{ value | replace("'", "") }}' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- True when `column` lies in the last `amount` `unit`s before as_of:
    as_of - W < column <= as_of. -#}
{% macro in_window(column, amount, unit) -%}
    ({{ column }} > {{ dbt.dateadd(unit, -1 * amount, as_of()) }} and {{ column }} <= {{ as_of() }})
{%- endmacro %}

{#- Whole days from `start` to `finish`, floored (exact to the microsecond). -#}
{% macro whole_days_between(start, finish) -%}
    floor({{ dbt.datediff(start, finish, 'microsecond') }} / 86400000000.0)
{%- endmacro %}
