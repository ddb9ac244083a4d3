{{ users_who_stopped(none, var('segments__reengagement_inactive_days'), var('segments__reengagement_active_within_days')) }}
