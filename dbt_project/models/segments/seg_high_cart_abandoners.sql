select
    user_id,
    cart_abandonments_7d
from {{ ref('user_metrics') }} as user_metrics
where
    cart_abandonments_7d
    >= {{ threshold('segments__high_abandoner_min_abandonments', 'user_metrics.user_id') }}
