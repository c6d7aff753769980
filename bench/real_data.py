"""`python -m bench.real_data DATASET OUT`: one of the real public datasets as a contract folder,
for `crm-graph load OUT` and `crm-graph train` (the figures of the README's Analytics section).

- `mlc-churn`: the telecom accounts, customers.csv alone (20 attributes and the `churn` flag);
- `cdnow`: the CDNOW purchases (the paper's 2,357-customer sample, `--full` for the 23,570
  customers), ids and orders without products;
- `online-retail`: the Online Retail sample, order lines naming products without categories;
- `epinions`: Epinions ratings as one-product orders with the trust network, a seeded sample of
  `--users` users (the data have no dates: one rating a day per user, see
  `tests.datasets.epinions_to_contract`).

Reads `/work/shared/datasets` (or `CRM_GRAPH_DATASETS`); CDNOW comes with the `lifetimes` wheel.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from tests.analytics.cdnow import cdnow_orders
    from tests.conftest import DATASETS
    from tests.datasets import (
        cdnow_to_contract,
        epinions_to_contract,
        mlc_churn_to_contract,
        online_retail_to_contract,
        read_online_retail,
    )

    parser = argparse.ArgumentParser(prog="python -m bench.real_data", description=__doc__)
    parser.add_argument("dataset", choices=["mlc-churn", "cdnow", "online-retail", "epinions"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--full", action="store_true", help="cdnow: the whole cohort")
    parser.add_argument("--users", type=int, default=7000, help="epinions: users drawn")
    arguments = parser.parse_args(argv)
    out: Path = arguments.out
    if arguments.dataset == "mlc-churn":
        mlc_churn_to_contract(DATASETS, out)
    elif arguments.dataset == "cdnow":
        cdnow_to_contract(cdnow_orders("master" if arguments.full else "sample"), out)
    elif arguments.dataset == "online-retail":
        online_retail_to_contract(read_online_retail(DATASETS), out)
    else:
        epinions_to_contract(DATASETS, out, users=arguments.users)
    print(f"{arguments.dataset}: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
