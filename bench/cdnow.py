"""`python -m bench.cdnow`: the CDNOW CLV back-test (fitted up to 1997-09-30, the next 273 days
forecast) with our BG/NBD beside the other "buy till you die" models of the `lifetimes` package
(a dev dependency, imported here only): its BG/NBD, the modified BG/NBD and Pareto/NBD, each
fitted on the same calibration summary (in weeks) and asked for each customer's expected
purchases in the 39 holdout weeks. Prints the totals against the purchases that followed, for
the paper's 2,357-customer sample and the full 23,570-customer cohort. Needs the `lifetimes`
wheel, which ships the data.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from analytics.clv import backtest


def main() -> int:
    from tests.analytics.cdnow import CALIBRATION_END, HOLDOUT_DAYS, cdnow_orders

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes warns on import under pandas 3
        from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

    others = {"lifetimes BG/NBD": BetaGeoFitter, "lifetimes MBG/NBD": ModifiedBetaGeoFitter,
              "lifetimes Pareto/NBD": ParetoNBDFitter}  # fmt: skip
    print(f"{'data':<8}{'model':<24}{'predicted':>11}{'actual':>9}{'error':>9}")
    for which in ("sample", "master"):
        result = backtest(cdnow_orders(which), CALIBRATION_END, HOLDOUT_DAYS)
        customers = result["customers"]
        actual = int(customers["actual_purchases"].sum())
        weeks = HOLDOUT_DAYS / 7
        x = customers["frequency"].to_numpy(float)
        t_x = customers["recency"].to_numpy(float) / 7
        age = customers["T"].to_numpy(float) / 7
        predicted = {"crm-graph BG/NBD": float(result["predicted_purchases"])}
        for name, fitter in others.items():
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                model = fitter().fit(x, t_x, age)
                expected = model.conditional_expected_number_of_purchases_up_to_time(
                    weeks, x, t_x, age
                )
            predicted[name] = float(np.sum(expected))
        for name, total in predicted.items():
            error = (total - actual) / actual
            print(f"{which:<8}{name:<24}{total:>11,.1f}{actual:>9,}{error:>+9.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
