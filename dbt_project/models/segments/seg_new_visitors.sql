select
    user_id,
    first_seen_at
from {{ ref('user_metrics') }}
where {{ in_window('first_seen_at', var('segments__new_visitor_days'), 'day') }}
