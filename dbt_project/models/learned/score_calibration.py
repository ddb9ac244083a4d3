"""marts.score_calibration: per score and bin of predicted probability, the mean predicted
and the observed rate on the validation split."""

from orchestration.predict.propensity import calibration_frame, fit_scores


def model(dbt, session):
    examples = dbt.ref("int_score_examples").df()
    return calibration_frame(fit_scores(examples))
