"""marts.user_scores: each user's churn and 7-day purchase probability as of as_of, from
models trained on the warehouse's own history (orchestration/predict/propensity.py)."""

from orchestration.predict.propensity import fit_scores


def model(dbt, session):
    examples = dbt.ref("int_score_examples").df()
    return fit_scores(examples).scores
