select
    user_id,
    cart_abandonments_7d
from {{ ref('user_metrics') }}
where cart_abandonments_7d >= {{ var('segments__high_abandoner_min_abandonments') }}
