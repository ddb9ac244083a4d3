{#- The as_of text of this run: the var segments__as_of, else the environment variable
    SEGMENTS_AS_OF, else empty. `segments run` sets the environment variable: a var that
    changes every run would make dbt reparse the whole project every run, while an
    environment variable read only at execution leaves the saved parse valid. -#}
{% macro as_of_text() -%}
    {%- set value = var('segments__as_of', '') | string | trim -%}
    {%- if value == '' and execute -%}
        {%- set value = env_var('SEGMENTS_AS_OF', '') | trim -%}
    {%- endif -%}
    {{ return(value) }}
{%- endmacro %}

{#- The instant every mart is computed as of, as a timestamp literal (UTC). -#}
{% macro as_of() -%}
    {%- set value = as_of_text() -%}
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
