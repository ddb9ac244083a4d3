select
    user_id,
    sessions_24h
from {{ ref('user_metrics') }}
where sessions_24h >= {{ var('segments__daily_engaged_min_sessions') }}
