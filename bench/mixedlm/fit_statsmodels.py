#!/usr/bin/env python3
"""statsmodels' side of `shammie-bench mixed`.

Usage: fit_statsmodels.py CSV [--ml]

CSV columns: decision_question_id, age, age_z, gender, race, logit. Fits the
discrim-eval model (Tamkin et al. 2023) with statsmodels MixedLM, REML by
default and with statsmodels' default optimiser settings:

    logit ~ age_z + C(gender, Treatment('male')) + C(race, Treatment('white'))
    random effects ~ the same terms (intercept and every slope, unstructured
    covariance), grouped by decision_question_id

and prints one JSON object: the statsmodels version, the wall seconds of
building the model from the data frame and of `fit`, `converged`, `llf`,
`scale`, the largest absolute profile score at the result, and the fixed
effects and their standard errors keyed by column name (`Intercept`, `age_z`,
`gender[T.female]`, `race[T.Black]`, ...).
"""

import json
import sys
import time
import warnings

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.formula.api as smf

TERMS = "age_z + C(gender, Treatment('male')) + C(race, Treatment('white'))"


def short(name):
    return (name.replace("C(gender, Treatment('male'))", "gender")
            .replace("C(race, Treatment('white'))", "race"))


def main():
    path = sys.argv[1]
    reml = "--ml" not in sys.argv[2:]
    df = pd.read_csv(path)
    t0 = time.perf_counter()
    model = smf.mixedlm(f"logit ~ {TERMS}", df, groups=df["decision_question_id"],
                        re_formula=f"~ {TERMS}")
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(reml=reml)
    t2 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        packed = result.params_object.get_packed(use_sqrt=True, has_fe=False)
        score = float(np.max(np.abs(model.score(packed.copy()))))
    names = [short(n) for n in model.exog_names]
    print(json.dumps({
        "statsmodels": statsmodels.__version__,
        "method": "REML" if reml else "ML",
        "build_seconds": t1 - t0,
        "fit_seconds": t2 - t1,
        "converged": bool(result.converged),
        "llf": float(result.llf),
        "scale": float(result.scale),
        "max_abs_profile_score": score,
        "coef": dict(zip(names, map(float, result.fe_params))),
        "se": dict(zip(names, map(float, result.bse_fe))),
    }))


if __name__ == "__main__":
    main()
