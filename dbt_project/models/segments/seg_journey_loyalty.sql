select user_id
from {{ ref('int_user_journey_stages') }}
where journey_stage = 'loyalty'
