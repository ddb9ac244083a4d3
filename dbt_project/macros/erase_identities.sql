{#- Operation `dbt run-operation erase_identities`, for a target other than the DuckDB file
    (orchestration/core/targets.py): deletes from every model the target keeps between runs
    (the incremental ones; the others are rebuilt from raw tables that no longer hold the
    person) the rows whose identity's sha256 is in audit.erased_identities. Logs the
    relations it checked, never an identity. `identity_columns` comes from the pipeline
    (IDENTITY_COLUMNS in orchestration/ingest/erasure.py), which erases the DuckDB file. -#}
{% macro erase_identities(identity_columns) %}
    {%- set tombstones = source('audit', 'erased_identities') -%}
    {%- for node in graph.nodes.values()
        if node.resource_type == 'model' and node.config.materialized == 'incremental' -%}
        {%- set relation = adapter.get_relation(
            database=node.database, schema=node.schema, identifier=node.alias) -%}
        {%- if relation is not none -%}
            {%- set held = adapter.get_columns_in_relation(relation)
                | map(attribute='name') | map('lower') | list -%}
            {%- set erasable = identity_columns | select('in', held) | list -%}
            {%- if erasable -%}
                {%- set conditions = [] -%}
                {%- for column in erasable -%}
                    {%- do conditions.append(sha256_hex(column) ~ " in (select identity_sha256 from " ~ tombstones ~ ")") -%}
                {%- endfor -%}
                {%- do run_query("delete from " ~ relation ~ " where " ~ conditions | join(" or ")) -%}
                {{ log("erase_identities: " ~ relation ~ " checked", info=true) }}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do adapter.commit() -%}
{% endmacro %}
