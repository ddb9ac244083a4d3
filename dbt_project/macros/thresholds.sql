{#- A segment threshold as SQL, from its var. The var is one of:
      3                                        a number;
      {percentile: 0.9, of: product_views_7d}  that percentile (interpolated) of a column of
                                               marts.user_metrics as of as_of (`from:
                                               user_traits` for one of marts.user_traits);
      {by_cluster: {high value: 5}, default: 3}
                                               a number per cluster_label of the user in
                                               marts.user_clusters (DuckDB only), `default`
                                               for any other cluster or a user in none;
      {by_journey_stage: {loyalty: 5}, default: 3}
                                               a number per journey stage of the user.
    `user_id` is the SQL of the row's user, for the per-user forms. Everything else stops
    the compile with the var's name. A segment lists the threshold vars it uses under
    meta.segment.thresholds; marts.segment_thresholds records what each resolved to. -#}
{% macro threshold(name, user_id) -%}
    {%- set value = var(name) -%}
    {%- if value is number and value is not boolean -%}
        {{ value }}
    {%- elif value is mapping and 'percentile' in value -%}
        {%- set fraction = value['percentile'] -%}
        (select {{ percentile_of(value['of'], fraction) }} from {{ _threshold_population(name, value) }})
    {%- elif value is mapping and ('by_cluster' in value or 'by_journey_stage' in value) -%}
        {%- set per_cluster = 'by_cluster' in value -%}
        {%- set values = value['by_cluster'] if per_cluster else value['by_journey_stage'] -%}
        {%- set default = value.get('default') -%}
        {%- for key, number in values.items() -%}
            {%- if number is not number or number is boolean or key is not string or "'" in key -%}
                {{ exceptions.raise_compiler_error(name ~ ": each value must be a number under a plain name, not " ~ key ~ ": " ~ number) }}
            {%- endif -%}
        {%- endfor -%}
        {%- if default is not number or default is boolean -%}
            {{ exceptions.raise_compiler_error(name ~ ": a per-" ~ ("cluster" if per_cluster else "stage") ~ " threshold needs a numeric default") }}
        {%- endif -%}
        {%- set relation = ref('user_clusters') if per_cluster else ref('int_user_journey_stages') -%}
        {%- set key_column = 'cluster_label' if per_cluster else 'journey_stage' -%}
        coalesce((
            select case threshold_keys.{{ key_column }}
                {%- for key, number in values.items() %}
                when '{{ key }}' then {{ number }}
                {%- endfor %}
            end
            from {{ relation }} as threshold_keys
            where threshold_keys.user_id = {{ user_id }}
        ), {{ default }})
    {%- else -%}
        {{ exceptions.raise_compiler_error(name ~ " must be a number, {percentile: p}, {by_cluster: {...}, default: n} or {by_journey_stage: {...}, default: n}, not " ~ value) }}
    {%- endif -%}
{%- endmacro %}

{#- The relation a percentile threshold is taken over, its var checked. -#}
{% macro _threshold_population(name, value) -%}
    {%- set fraction = value['percentile'] -%}
    {%- set source_model = value.get('from', 'user_metrics') -%}
    {%- if fraction is not number or fraction is boolean or fraction < 0 or fraction > 1 -%}
        {{ exceptions.raise_compiler_error(name ~ ": percentile must be a number from 0 to 1, not " ~ fraction) }}
    {%- endif -%}
    {%- if source_model not in ('user_metrics', 'user_traits') -%}
        {{ exceptions.raise_compiler_error(name ~ ": a percentile is taken over user_metrics or user_traits, not " ~ source_model) }}
    {%- endif -%}
    {%- if value.get('of') is not string or not modules.re.match('^[a-z_][a-z0-9_]*$', value.get('of')) -%}
        {{ exceptions.raise_compiler_error(name ~ ": a percentile needs `of`, the column it is taken of") }}
    {%- endif -%}
    {{ return(ref(source_model)) }}
{%- endmacro %}

{#- What every segment's listed thresholds (meta.segment.thresholds) resolve to, as rows of
    segment, var, kind, applies_to and value (SQL): marts.segment_thresholds. -#}
{% macro resolved_thresholds() -%}
    {%- set rows = [] -%}
    {%- for segment in segment_catalog() -%}
        {%- for name in segment.thresholds -%}
            {%- set value = var(name) -%}
            {%- set base = {'segment': segment.name, 'var': name} -%}
            {%- if value is number and value is not boolean -%}
                {%- do rows.append(dict(base, kind='number', applies_to=none, value=value)) -%}
            {%- elif value is mapping and 'percentile' in value -%}
                {%- set population = _threshold_population(name, value) -%}
                {%- do rows.append(dict(base, kind='percentile',
                    applies_to=value['percentile'] ~ ' of ' ~ value['of'],
                    value='(select ' ~ percentile_of(value['of'], value['percentile']) ~ ' from ' ~ population ~ ')')) -%}
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
    {%- endfor -%}
    {{ return(rows) }}
{%- endmacro %}
