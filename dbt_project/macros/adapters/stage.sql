{#- The stage through which `segments run --target spark` exchanges tables with Spark
    (orchestration/core/targets.py): a folder named by SEGMENTS_SPARK_STAGE, which the
    pipeline sets. Without it (dbt run by hand over tables loaded otherwise), and on every
    other warehouse, these hooks do nothing. -#}
{% macro _spark_stage() -%}
    {{ return(env_var('SEGMENTS_SPARK_STAGE', '') | trim) }}
{%- endmacro %}

{#- on-run-start: every dbt source as an external table over its folder of the stage
    (<stage>/<schema>/<table>), registered again each run so a rewritten folder is read
    whole. -#}
{% macro load_stage() -%}
    {{ return(adapter.dispatch('load_stage', 'behavioral_segments')()) }}
{%- endmacro %}

{% macro default__load_stage() -%}
{%- endmacro %}

{% macro spark__load_stage() -%}
    {%- set stage = _spark_stage() -%}
    {%- if stage and execute -%}
        {%- for source in graph.sources.values() -%}
            {%- set location = stage ~ '/' ~ source.schema ~ '/' ~ source.identifier -%}
            {%- do run_query('create database if not exists ' ~ source.schema) -%}
            {%- do run_query('drop table if exists ' ~ source.schema ~ '.' ~ source.identifier) -%}
            {%- do run_query('create table ' ~ source.schema ~ '.' ~ source.identifier
                ~ " using parquet location '" ~ location | replace("'", "\\'") ~ "'") -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- post-hook of the marts: the mart just built into <stage>/marts/<name>, where the
    pipeline reads it back. -#}
{% macro unload_mart() -%}
    {{ return(adapter.dispatch('unload_mart', 'behavioral_segments')()) }}
{%- endmacro %}

{% macro default__unload_mart() -%}
{%- endmacro %}

{% macro spark__unload_mart() -%}
    {%- set stage = _spark_stage() -%}
    {%- if stage and this.schema == 'marts' -%}
        insert overwrite directory '{{ (stage ~ "/marts/" ~ this.identifier) | replace("'", "\\'") }}'
        using parquet
        select * from {{ this }}
    {%- endif -%}
{%- endmacro %}
