{#- A 64-bit fingerprint of a row's `columns` (a list of column expressions), for sums per
    group that tell whether a group's rows changed. Each warehouse compares only its own
    fingerprints, so each may use its own hash; the sum of a group must not overflow. -#}
{% macro fingerprint(columns) -%}
    {{ return(adapter.dispatch('fingerprint', 'behavioral_segments')(columns)) }}
{%- endmacro %}

{% macro default__fingerprint(columns) -%}
    {{ no_form_for('fingerprint', 'hashing.sql') }}
{%- endmacro %}

{#- The columns as one text, nulls spelled out, for the warehouses that hash a text. -#}
{% macro _fingerprint_text(columns, separator) -%}
    {%- set texts = [] -%}
    {%- for column in columns -%}
        {%- do texts.append("coalesce(cast(" ~ column ~ " as " ~ dbt.type_string() ~ "), '<null>')") -%}
    {%- endfor -%}
    {{ texts | join(separator) }}
{%- endmacro %}

{% macro duckdb__fingerprint(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{#- 60 bits of md5: a sum of bigints is a numeric on PostgreSQL. -#}
{% macro postgres__fingerprint(columns) -%}
    ('x' || substr(md5({{ _fingerprint_text(columns, " || '|' || ") }}), 1, 15))::bit(60)::bigint
{%- endmacro %}

{% macro spark__fingerprint(columns) -%}
    xxhash64({{ columns | join(', ') }})
{%- endmacro %}

{#- BigQuery's SUM of INT64 fails on overflow: 32 bits per row leave room for 2^31 rows. -#}
{% macro bigquery__fingerprint(columns) -%}
    mod(farm_fingerprint(concat({{ _fingerprint_text(columns, ", '|', ") }})), 4294967296)
{%- endmacro %}

{% macro snowflake__fingerprint(columns) -%}
    hash({{ columns | join(', ') }})
{%- endmacro %}

{#- A stable bucket 0..9999 for a (segment, user) pair: the first 32 bits of md5 of
    "segment|user_id", modulo 10000. The same on every warehouse and in Python
    (int(md5(f"{segment}|{user_id}").hexdigest()[:8], 16) % 10000). -#}
{% macro holdout_bucket(segment_expr, user_expr) -%}
    {{ return(adapter.dispatch('holdout_bucket', 'behavioral_segments')(segment_expr, user_expr)) }}
{%- endmacro %}

{% macro default__holdout_bucket(segment_expr, user_expr) -%}
    {{ no_form_for('holdout_bucket', 'hashing.sql') }}
{%- endmacro %}

{% macro duckdb__holdout_bucket(segment_expr, user_expr) -%}
    (cast(('0x' || left(md5({{ segment_expr }} || '|' || {{ user_expr }}), 8)) as bigint) % 10000)
{%- endmacro %}

{% macro postgres__holdout_bucket(segment_expr, user_expr) -%}
    mod(cast(('x' || substr(md5({{ segment_expr }} || '|' || {{ user_expr }}), 1, 8)) as bit(32))::bigint, 10000)
{%- endmacro %}

{% macro spark__holdout_bucket(segment_expr, user_expr) -%}
    pmod(cast(conv(substr(md5(concat({{ segment_expr }}, '|', {{ user_expr }})), 1, 8), 16, 10) as bigint), 10000)
{%- endmacro %}

{% macro bigquery__holdout_bucket(segment_expr, user_expr) -%}
    mod(cast(concat('0x', substr(to_hex(md5(concat({{ segment_expr }}, '|', {{ user_expr }}))), 1, 8)) as int64), 10000)
{%- endmacro %}

{% macro snowflake__holdout_bucket(segment_expr, user_expr) -%}
    mod(to_number(substr(md5({{ segment_expr }} || '|' || {{ user_expr }}), 1, 8), 'XXXXXXXX'), 10000)
{%- endmacro %}

{#- Lowercase hex SHA-256 of a text expression. -#}
{% macro sha256_hex(expr) -%}
    {{ return(adapter.dispatch('sha256_hex', 'behavioral_segments')(expr)) }}
{%- endmacro %}

{% macro default__sha256_hex(expr) -%}
    {{ no_form_for('sha256_hex', 'hashing.sql') }}
{%- endmacro %}

{% macro duckdb__sha256_hex(expr) -%}
    sha256({{ expr }})
{%- endmacro %}

{% macro postgres__sha256_hex(expr) -%}
    encode(sha256(convert_to({{ expr }}, 'UTF8')), 'hex')
{%- endmacro %}

{% macro spark__sha256_hex(expr) -%}
    sha2({{ expr }}, 256)
{%- endmacro %}

{% macro bigquery__sha256_hex(expr) -%}
    to_hex(sha256({{ expr }}))
{%- endmacro %}

{% macro snowflake__sha256_hex(expr) -%}
    sha2({{ expr }}, 256)
{%- endmacro %}
