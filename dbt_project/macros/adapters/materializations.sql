{#- How the stateful models (the event-level models and the membership history) are kept:
    incrementally, with row-level deletes. Spark's Parquet tables have no row-level
    delete, so there they are rebuilt on every run. -#}
{% macro incremental_materialization() -%}
    {{ return(adapter.dispatch('incremental_materialization', 'behavioral_segments')()) }}
{%- endmacro %}

{% macro default__incremental_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{% macro spark__incremental_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{#- The incremental strategy for a model that `preferred` (delete+insert or append) keeps.
    BigQuery offers neither: merge on the same unique_key replaces rows as delete+insert
    does, and merge with no unique_key appends. -#}
{% macro incremental_strategy(preferred) -%}
    {{ return(adapter.dispatch('incremental_strategy', 'behavioral_segments')(preferred)) }}
{%- endmacro %}

{% macro default__incremental_strategy(preferred) -%}
    {{ return(preferred) }}
{%- endmacro %}

{% macro bigquery__incremental_strategy(preferred) -%}
    {{ return('merge') }}
{%- endmacro %}

{#- The full_refresh config of a stateful model, one whose rows events cannot give back
    (the membership history: who was told what, and when). `--full-refresh` rebuilds
    every model that events determine and keeps these: false here overrides the flag.
    Only `segments run --rebuild-history` sets segments__rebuild_history, and then the
    flag decides. -#}
{% macro stateful_full_refresh() -%}
    {{ return(none if var('segments__rebuild_history', false) else false) }}
{%- endmacro %}
