{#- The segments of the project: every model with `meta.segment`, its settings checked and
    defaulted. Known at execution time only (dbt's graph is empty while parsing), which is
    why the audience models run in a second dbt invocation (orchestration/assets/dbt.py). -#}
{% macro segment_catalog() -%}
    {%- set segments = [] -%}
    {%- if not execute -%}{{ return(segments) }}{%- endif -%}
    {%- set seen = {} -%}
    {%- for node in graph.nodes.values()
            if node.resource_type == 'model' and node.config.meta.get('segment') -%}
        {%- set settings = node.config.meta['segment'] -%}
        {%- set name = settings.get('name', node.name) | string -%}
        {%- set where = "segment of model " ~ node.name ~ ": " -%}
        {%- if not modules.re.match('^[a-z][a-z0-9_]{0,62}$', name) -%}
            {{ exceptions.raise_compiler_error(where ~ "name " ~ name ~ " must be lowercase letters, digits and underscores") }}
        {%- endif -%}
        {%- if name in seen -%}
            {{ exceptions.raise_compiler_error(where ~ "name " ~ name ~ " is already used by model " ~ seen[name]) }}
        {%- endif -%}
        {%- do seen.update({name: node.name}) -%}
        {%- set channel = settings.get('channel', 'email') | string -%}
        {%- if channel not in segment_channels() -%}
            {{ exceptions.raise_compiler_error(where ~ "channel must be email, sms or push, not " ~ channel) }}
        {%- endif -%}
        {%- set numbers = {
            'priority': settings.get('priority', 100),
            'holdout_share': settings.get('holdout_share', var('segments__default_holdout_share')),
            'cooldown_days': settings.get('cooldown_days', var('segments__default_cooldown_days')),
        } -%}
        {%- for key, value in numbers.items() -%}
            {%- if value is not number or value is boolean -%}
                {{ exceptions.raise_compiler_error(where ~ key ~ " must be a number, not " ~ value) }}
            {%- endif -%}
        {%- endfor -%}
        {%- if numbers.holdout_share < 0 or numbers.holdout_share > 1 -%}
            {{ exceptions.raise_compiler_error(where ~ "holdout_share must be between 0 and 1") }}
        {%- endif -%}
        {%- if numbers.cooldown_days < 0 -%}
            {{ exceptions.raise_compiler_error(where ~ "cooldown_days must not be negative") }}
        {%- endif -%}
        {%- set thresholds = settings.get('thresholds', []) -%}
        {%- if thresholds is string or thresholds is mapping or thresholds is not iterable -%}
            {{ exceptions.raise_compiler_error(where ~ "thresholds must be a list of var names") }}
        {%- endif -%}
        {%- for threshold_var in thresholds -%}
            {%- if threshold_var is not string or not modules.re.match('^segments__[a-z0-9_]+$', threshold_var) -%}
                {{ exceptions.raise_compiler_error(where ~ "threshold " ~ threshold_var ~ " must be a segments__ var name") }}
            {%- endif -%}
        {%- endfor -%}
        {%- do segments.append({
            'name': name,
            'thresholds': thresholds | list,
            'model': node.name,
            'relation': api.Relation.create(database=node.database, schema=node.schema, identifier=node.alias),
            'channel': channel,
            'priority': numbers.priority | int,
            'holdout_share': numbers.holdout_share | float,
            'cooldown_days': numbers.cooldown_days | int,
            'suppress_converted': settings.get('suppress_converted', false) is sameas true,
            'recovery_campaign': settings.get('recovery_campaign', false) is sameas true,
        }) -%}
    {%- endfor -%}
    {{ return(segments | sort(attribute='name')) }}
{%- endmacro %}

{#- The channels a segment may send through: the consent flag of stg_raw__customers each
    needs, and the column holding its clear address (none for push, whose address is the
    user_id). audience_members and segment_settings read them from here. -#}
{% macro segment_channels() -%}
    {{ return({
        'email': {'consent': 'has_email_consent', 'address': 'email'},
        'sms': {'consent': 'has_sms_consent', 'address': 'phone'},
        'push': {'consent': 'has_push_consent', 'address': none},
    }) }}
{%- endmacro %}
