select
    user_metrics.user_id,
    user_metrics.cart_abandonments_7d
from {{ ref('user_metrics') }} as user_metrics
where
    user_metrics.cart_abandonments_7d
    >= {{ threshold('segments__high_abandoner_min_abandonments', 'user_metrics.user_id') }}
