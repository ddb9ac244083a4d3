"""marts.score_evaluation: one row per score, the version of its model and how it did on
the time split it was validated on (AUC, Brier score, base rate)."""

from orchestration.predict.propensity import evaluation_frame, fit_scores


def model(dbt, session):
    examples = dbt.ref("int_score_examples").df()
    return evaluation_frame(fit_scores(examples), examples)
