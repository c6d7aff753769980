"""The synthetic CRM generator: the CSV contract, determinism, and the business behaviours the
analytics rely on (communities, heavy tails, seasons, churn, word of mouth, duplicates)."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from crm_graph.loaders.synthetic import (
    CONTRACT_HEADERS,
    GROUND_TRUTH_HEADER,
    GenerateReport,
    generate,
)

CUSTOMERS = 4_000
SEED = 20_240_305
ORDER_CHANNELS = {"web", "store", "app", "phone"}
INTERACTION_TYPES = {"call", "email", "chat", "meeting", "ticket", "social", "web"}
TIE_TYPES = {"KNOWS", "REFERRED", "FAMILY", "COLLEAGUE"}


@dataclass(frozen=True)
class Dataset:
    """One generated folder, read back as text tables, plus helpers keyed by person."""

    folder: Path
    report: GenerateReport
    customers: pd.DataFrame
    products: pd.DataFrame
    transactions: pd.DataFrame
    interactions: pd.DataFrame
    ties: pd.DataFrame
    truth: pd.DataFrame

    @property
    def person_of(self) -> dict[str, str]:
        """customer_id -> id of the person's original record (itself unless a duplicate)."""
        truth = self.truth
        original = truth.duplicate_of.where(truth.duplicate_of != "", truth.customer_id)
        return dict(zip(self.truth.customer_id, original, strict=True))

    @property
    def people(self) -> pd.DataFrame:
        """Ground-truth rows of original records only."""
        return self.truth[self.truth.duplicate_of == ""].reset_index(drop=True)


def _read(folder: Path, report: GenerateReport) -> Dataset:
    def table(name: str) -> pd.DataFrame:
        return pd.read_csv(folder / name, dtype=str, keep_default_na=False)

    transactions = table("transactions.csv")
    for column in ("quantity", "unit_price", "amount"):
        transactions[column] = pd.to_numeric(transactions[column])
    transactions["at"] = pd.to_datetime(transactions.timestamp, utc=True, format="ISO8601")
    interactions = table("interactions.csv")
    interactions["sentiment"] = pd.to_numeric(interactions.sentiment)
    interactions["at"] = pd.to_datetime(interactions.timestamp, utc=True, format="ISO8601")
    return Dataset(
        folder=folder, report=report, customers=table("customers.csv"),
        products=table("products.csv"), transactions=transactions, interactions=interactions,
        ties=table("social_ties.csv"), truth=table("ground_truth.csv"),
    )  # fmt: skip


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    folder = tmp_path_factory.mktemp("synthetic")
    return _read(folder, generate(folder, CUSTOMERS, SEED))


@pytest.fixture(scope="module")
def no_influence(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    """The same population and seed with word of mouth switched off: the control group."""
    folder = tmp_path_factory.mktemp("synthetic-control")
    return _read(folder, generate(folder, CUSTOMERS, SEED, influence_strength=0.0))


# --- Contract shape -------------------------------------------------------------------------------


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    # given three runs, two with the same seed
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        generate(tmp_path / name, 700, seed)

    # when the files are compared byte for byte
    a, b, c = (_digests(tmp_path / name) for name in "abc")

    # then the same seed reproduces every file and another seed changes every data file
    assert a == b
    assert len(a) == 6
    assert all(a[name] != c[name] for name in a if name != "products.csv")


def test_every_file_has_exactly_the_contract_header(data: Dataset) -> None:
    # given the generated folder
    expected = {**CONTRACT_HEADERS, "ground_truth.csv": GROUND_TRUTH_HEADER}

    # when each file's first record is read
    headers = {}
    for name in expected:
        with open(data.folder / name, encoding="utf-8", newline="") as fh:
            headers[name] = tuple(next(csv.reader(fh)))

    # then it is the contract header, and the customers carry the extra profile columns
    assert headers == expected
    assert headers["customers.csv"][:8] == (
        "customer_id", "name", "email", "phone", "city", "country", "signup_date",
        "source_system",
    )  # fmt: skip
    assert {"age", "loyalty_tier"} <= set(headers["customers.csv"])


def test_the_report_counts_the_rows_written(data: Dataset) -> None:
    # given the report of the generation
    report = data.report

    # then its counts are the rows in the files
    assert report.rows == {
        "customers.csv": len(data.customers), "products.csv": len(data.products),
        "transactions.csv": len(data.transactions), "interactions.csv": len(data.interactions),
        "social_ties.csv": len(data.ties), "ground_truth.csv": len(data.truth),
    }  # fmt: skip
    assert report.customers == CUSTOMERS
    assert report.out_dir == data.folder
    assert report.seconds > 0


def test_progress_is_reported_for_products_and_each_chunk_of_customers(tmp_path: Path) -> None:
    # given a progress callback
    calls: list[tuple[str, int]] = []

    # when a small data set is generated
    report = generate(tmp_path, 300, 1, progress=lambda stage, n: calls.append((stage, n)))

    # then products are announced once and customers after the (single) chunk
    assert calls == [("products", report.products), ("customers", 300)]


def test_nonsense_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customers"):
        generate(tmp_path, 0, 1)
    with pytest.raises(ValueError, match="four weeks"):
        generate(tmp_path, 10, 1, start=date(2024, 1, 1), end=date(2024, 1, 10))


def test_ids_are_unique_and_every_reference_exists(data: Dataset) -> None:
    # given the id columns
    customer_ids = set(data.customers.customer_id)
    product_ids = set(data.products.product_id)

    # then ids are unique and every reference points at an existing row
    assert len(customer_ids) == len(data.customers)
    assert len(product_ids) == len(data.products)
    assert data.interactions.interaction_id.is_unique
    assert set(data.transactions.customer_id) <= customer_ids
    assert set(data.transactions.product_id) <= product_ids
    assert set(data.interactions.customer_id) <= customer_ids
    assert set(data.ties.source_customer_id) | set(data.ties.target_customer_id) <= customer_ids
    assert list(data.truth.customer_id) == list(data.customers.customer_id)


def test_a_transaction_id_is_one_order_of_one_customer_at_one_time(data: Dataset) -> None:
    # given the line items grouped by transaction id
    orders = data.transactions.groupby("transaction_id")

    # then all lines of an order share customer, timestamp and channel
    assert (orders.customer_id.nunique() == 1).all()
    assert (orders.timestamp.nunique() == 1).all()
    assert (orders.channel.nunique() == 1).all()


def test_amount_is_quantity_times_unit_price_in_cents(data: Dataset) -> None:
    # given the line items
    tx = data.transactions

    # when amounts are recomputed in cents
    cents = np.rint(tx.quantity * np.rint(tx.unit_price * 100)).astype(np.int64)

    # then they match, quantities are whole and positive, and channels are the contract's
    assert (cents == np.rint(tx.amount * 100).astype(np.int64)).all()
    assert (tx.quantity >= 1).all() and (tx.quantity == tx.quantity.round()).all()
    assert (tx.unit_price > 0).all()
    assert set(tx.channel) == ORDER_CHANNELS
    assert tx.timestamp.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00").all()
    assert tx.amount.astype(str).str.fullmatch(r"\d+\.\d{1,2}").all()


def test_interactions_follow_the_contract(data: Dataset) -> None:
    # given the interactions
    it = data.interactions

    # then types, sentiment and satisfaction stay in their ranges and some are unanswered
    assert set(it.type) == INTERACTION_TYPES
    assert it.sentiment.between(-1, 1).all()
    assert (it.sentiment.round(2) == it.sentiment).all()
    answered = it.satisfaction[it.satisfaction != ""].astype(int)
    assert answered.between(1, 5).all()
    assert 0 < len(answered) < len(it)
    assert it.subject.str.len().gt(0).all()


# --- Products ----------------------------------------------------------------------------------


def test_the_catalogue_has_categories_with_their_own_price_levels(data: Dataset) -> None:
    # given the products
    products = data.products.assign(price=pd.to_numeric(data.products.price))

    # when prices are summarised per category
    median = products.groupby("category").price.median()

    # then there are 10-20 categories, hundreds of products and category-dependent prices
    assert 10 <= len(median) <= 20
    assert len(products) >= 300
    assert median["Computers"] > 20 * median["Groceries"]
    assert products.name.str.contains(",").any()


def test_complementary_categories_end_up_in_the_same_basket(data: Dataset) -> None:
    # given which categories each order contains
    category = dict(zip(data.products.product_id, data.products.category, strict=True))
    baskets = data.transactions.assign(category=data.transactions.product_id.map(category))
    has = pd.crosstab(baskets.transaction_id, baskets.category) > 0

    # when shoes are compared between fashion orders and all orders
    with_fashion = has.loc[has["Fashion"], "Shoes"].mean()

    # then fashion orders carry shoes far more often than orders do in general
    assert with_fashion > 2 * has["Shoes"].mean()


# --- Social graph ------------------------------------------------------------------------------


def test_ties_are_typed_weighted_without_self_ties_or_duplicates(data: Dataset) -> None:
    # given the ties
    ties = data.ties
    weight = pd.to_numeric(ties.weight)

    # then no customer is tied to themself, no tie repeats, and types and weights are valid
    assert (ties.source_customer_id != ties.target_customer_id).all()
    assert not ties.duplicated(["source_customer_id", "target_customer_id", "type"]).any()
    pair = np.sort(ties[["source_customer_id", "target_customer_id"]].to_numpy(), axis=1)
    assert not pd.DataFrame(pair).duplicated().any()
    assert set(ties.type) == TIE_TYPES
    assert weight.between(0, 1).all()
    assert pd.to_datetime(ties.since, format="%Y-%m-%d").notna().all()


def test_referrers_signed_up_before_the_people_they_referred(data: Dataset) -> None:
    # given the referrals and signup dates
    signup = dict(zip(data.customers.customer_id, data.customers.signup_date, strict=True))
    referred = data.ties[data.ties.type == "REFERRED"]

    # then the referrer's signup comes first and the tie dates from the referred's signup
    assert len(referred) > 0
    referrer_signup = referred.source_customer_id.map(signup)
    assert (referrer_signup <= referred.target_customer_id.map(signup)).all()
    assert (referred.since == referred.target_customer_id.map(signup)).all()


def test_most_ties_stay_inside_a_community(data: Dataset) -> None:
    # given each customer's community
    community = dict(zip(data.truth.customer_id, data.truth.community, strict=True))
    sizes = data.people.community.value_counts()

    # when the share of ties inside a community is compared to random pairing
    inside = (
        data.ties.source_customer_id.map(community) == data.ties.target_customer_id.map(community)
    ).mean()
    random_pairs = float(((sizes / sizes.sum()) ** 2).sum())

    # then homophily is strong: most ties are internal, far above chance
    assert inside > 0.65
    assert inside > 8 * random_pairs


def test_degrees_and_community_sizes_are_heavy_tailed(data: Dataset) -> None:
    # given the degree of every person and the community sizes
    degree = pd.concat([data.ties.source_customer_id, data.ties.target_customer_id]).value_counts()
    degree = degree.reindex(data.people.customer_id, fill_value=0)
    sizes = data.people.community.value_counts()

    # then the average degree is about five, with hubs far above it
    assert 4.0 <= degree.mean() <= 6.0
    assert degree.max() >= 6 * degree.mean()
    assert degree.quantile(0.99) >= 3 * degree.median()
    # and a few communities are much larger than the typical one
    assert sizes.max() >= 10 * sizes.median()


def test_a_community_shares_country_city_and_taste(no_influence: Dataset) -> None:
    # given communities of at least ten people, without word of mouth blurring tastes
    data = no_influence
    customers = data.customers.set_index("customer_id")
    people = data.people.join(customers[["city", "country"]], on="customer_id")
    big = people.groupby("community").filter(lambda g: len(g) >= 10)

    # when their home and purchases are compared
    top_city = big.groupby("community").city.agg(lambda c: c.value_counts(normalize=True).iloc[0])
    countries = big.groupby("community").country.nunique()
    similarity_friends, similarity_strangers = _taste_similarity(data)

    # then a community lives in one country, mostly one city, and friends buy alike
    assert (countries == 1).all()
    assert top_city.mean() > 0.75
    assert similarity_friends > 1.5 * similarity_strangers


def _taste_similarity(data: Dataset) -> tuple[float, float]:
    """Mean cosine similarity of category spend between friends and between random pairs."""
    category = dict(zip(data.products.product_id, data.products.category, strict=True))
    tx = data.transactions.assign(
        person=data.transactions.customer_id.map(data.person_of),
        category=data.transactions.product_id.map(category),
    )
    spend = pd.crosstab(tx.person, tx.category, values=tx.amount, aggfunc="sum").fillna(0)
    unit = spend.to_numpy() / np.linalg.norm(spend.to_numpy(), axis=1, keepdims=True)
    index = {p: i for i, p in enumerate(spend.index)}
    a = data.ties.source_customer_id.map(index)
    b = data.ties.target_customer_id.map(index)
    known = a.notna() & b.notna()
    a, b = a[known].astype(int).to_numpy(), b[known].astype(int).to_numpy()
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, len(unit), 20_000), rng.integers(0, len(unit), 20_000)
    friends = float(np.mean(np.sum(unit[a] * unit[b], axis=1)))
    strangers = float(np.mean(np.sum(unit[x] * unit[y], axis=1)))
    return friends, strangers


# --- Spend and seasons ---------------------------------------------------------------------------


def test_a_tenth_of_the_customers_carry_a_large_share_of_revenue(data: Dataset) -> None:
    # given revenue per person
    tx = data.transactions
    spend = tx.groupby(tx.customer_id.map(data.person_of)).amount.sum()
    spend = spend.reindex(data.people.customer_id, fill_value=0).sort_values(ascending=False)

    # when the top decile's share is taken
    top = spend.iloc[: len(spend) // 10].sum() / spend.sum()

    # then it is far above a tenth
    assert top > 0.4


def test_orders_peak_in_november_and_december_and_at_weekends(data: Dataset) -> None:
    # given one row per order
    orders = data.transactions.drop_duplicates("transaction_id")

    # when orders are counted per calendar month and per weekday
    monthly = orders.groupby(orders["at"].dt.strftime("%Y-%m")).size()
    q4 = monthly[monthly.index.str[5:].isin(["10", "11", "12"])]
    weekday = orders["at"].dt.day_of_week.value_counts()

    # then the fourth quarter is above the mean, November and December most of all
    assert len(monthly) == 24
    assert q4.mean() > monthly.mean()
    assert (monthly[monthly.index.str[5:].isin(["11", "12"])] > 1.2 * monthly.mean()).all()
    assert weekday[5] > weekday[0]  # Saturday busier than Monday


def test_lines_per_customer_is_roughly_honoured(data: Dataset) -> None:
    assert 8.0 <= len(data.transactions) / CUSTOMERS <= 12.0


# --- Customer life cycle ------------------------------------------------------------------------


def test_customers_sign_up_before_they_buy_or_get_in_touch(data: Dataset) -> None:
    # given each record's signup date
    signup = dict(zip(data.customers.customer_id, data.customers.signup_date, strict=True))

    # then every purchase and interaction comes after the signup of the record it is filed under
    for table in (data.transactions, data.interactions):
        assert (table.timestamp.str[:10] > table.customer_id.map(signup)).all()


def _churn_dates(data: Dataset) -> pd.Series:
    churned = data.people[data.people.churned_at != ""]
    return pd.Series(pd.to_datetime(churned.churned_at.to_numpy(), utc=True),
                     index=churned.customer_id.to_numpy())  # fmt: skip


def test_churned_customers_buy_nothing_from_their_churn_date(data: Dataset) -> None:
    # given the churn date of each churned person
    churn = _churn_dates(data)
    tx = data.transactions.assign(person=data.transactions.customer_id.map(data.person_of))

    # when their purchases (under any of their records) are compared with it
    after = tx["at"] >= tx.person.map(churn)

    # then a realistic share churned and none of them bought from that day on
    assert 0.1 < len(churn) / len(data.people) < 0.4
    assert not after.any()


def test_purchases_fade_in_the_weeks_before_churn(data: Dataset) -> None:
    # given customers who churned in the second year, with their churn dates
    churn = _churn_dates(data)
    churn = churn[churn >= pd.Timestamp("2024-01-01", tz="UTC")]
    tx = data.transactions.assign(person=data.transactions.customer_id.map(data.person_of))
    tx = tx[tx.person.isin(churn.index)].drop_duplicates("transaction_id")
    weeks_before = (tx.person.map(churn) - tx["at"]).dt.days // 7

    # when order counts are compared between the last 6 weeks and weeks 16-40 before churn
    late = (weeks_before < 6).sum() / 6
    earlier = weeks_before.between(16, 39).sum() / 24

    # then their buying has clearly faded
    assert late < 0.6 * earlier


def test_customers_heading_to_churn_complain_more_and_feel_worse(data: Dataset) -> None:
    # given interactions split by whether the person churns within 90 days
    churn = _churn_dates(data)
    it = data.interactions.assign(person=data.interactions.customer_id.map(data.person_of))
    days_left = (it.person.map(churn) - it["at"]).dt.days
    before = days_left.between(0, 90)
    loyal = it.person.map(churn).isna()

    def satisfaction(rows: pd.DataFrame) -> float:
        return float(rows.satisfaction[rows.satisfaction != ""].astype(int).mean())

    # then tickets are more common and sentiment and satisfaction lower before churning
    assert (it[before].type == "ticket").mean() > 1.5 * (it[loyal].type == "ticket").mean()
    assert it[before].sentiment.mean() < it[loyal].sentiment.mean() - 0.3
    assert satisfaction(it[before]) < satisfaction(it[loyal]) - 0.5


# --- Word of mouth ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Panel:
    """Person x category x month purchase indicators, flattened for month t -> t + 1."""

    exposed: np.ndarray  # a friend bought the category in month t
    bought_next: np.ndarray  # the person buys it in month t + 1
    bought_now: np.ndarray  # the person bought it in month t
    strata: np.ndarray  # category x own history (ever bought before) x month
    influence: np.ndarray  # the person's ground-truth susceptibility


def _panel(data: Dataset) -> Panel:
    """Monthly purchase panel of the original records, duplicates folded into their person."""
    people = data.people
    index = {p: i for i, p in enumerate(people.customer_id)}
    categories = {c: i for i, c in enumerate(sorted(set(data.products.category)))}
    category = data.products.category.map(categories)
    product_category = dict(zip(data.products.product_id, category, strict=True))
    tx = data.transactions
    who = tx.customer_id.map(data.person_of).map(index).to_numpy()
    what = tx.product_id.map(product_category).to_numpy()
    month = ((tx["at"].dt.year - 2023) * 12 + tx["at"].dt.month - 1).to_numpy()
    n, c, m = len(people), len(categories), int(month.max()) + 1
    bought = np.zeros((m, n, c), dtype=bool)
    bought[month, who, what] = True
    a = data.ties.source_customer_id.map(index).to_numpy()
    b = data.ties.target_customer_id.map(index).to_numpy()
    friends = sp.csr_matrix((np.ones(2 * len(a)), (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    history = np.logical_or.accumulate(bought, axis=0)
    stratum = np.arange(c)[None, :] * 2 + history
    return Panel(
        exposed=np.concatenate([((friends @ bought[t]) > 0).ravel() for t in range(m - 1)]),
        bought_next=bought[1:].reshape(-1),
        bought_now=bought[:-1].reshape(-1),
        strata=np.concatenate([(stratum[t] * m + t).ravel() for t in range(m - 1)]),
        influence=np.tile(np.repeat(people.influence.astype(float).to_numpy(), c), m - 1),
    )  # fmt: skip


def _risk_ratio(exposed: np.ndarray, outcome: np.ndarray, strata: np.ndarray) -> float:
    """Mantel-Haenszel risk ratio of the outcome for exposed vs unexposed, within strata."""
    k = int(strata.max()) + 1
    n1 = np.bincount(strata, exposed, k)
    n0 = np.bincount(strata, ~exposed, k)
    a = np.bincount(strata, exposed & outcome, k)
    b = np.bincount(strata, ~exposed & outcome, k)
    total = np.maximum(n1 + n0, 1)
    return float((a * n0 / total).sum() / (b * n1 / total).sum())


def test_friends_buying_a_category_makes_a_customer_buy_it_next_month(
    data: Dataset, no_influence: Dataset
) -> None:
    # given monthly panels with and without word of mouth
    panel, control = _panel(data), _panel(no_influence)

    # when the chance to buy category X in month t+1 is compared between customers with and
    # without a friend who bought X in month t, within category, own-history and month strata
    lift = _risk_ratio(panel.exposed, panel.bought_next, panel.strata)
    control_lift = _risk_ratio(control.exposed, control.bought_next, control.strata)

    # then friends' purchases clearly raise it, well beyond what shared taste alone explains
    assert lift > 2.0
    assert lift > control_lift + 0.6
    assert control_lift > 1.0  # homophily alone still links friends' purchases


def test_susceptible_customers_follow_their_friends_more(data: Dataset) -> None:
    # given the panel split by the customers' ground-truth influence
    panel = _panel(data)
    low = panel.influence < np.quantile(panel.influence, 1 / 3)
    high = panel.influence > np.quantile(panel.influence, 2 / 3)

    # when the friend effect is measured in each third
    def lift(mask: np.ndarray) -> float:
        return _risk_ratio(panel.exposed[mask], panel.bought_next[mask], panel.strata[mask])

    # then it is stronger for the susceptible
    assert lift(high) > 1.1 * lift(low)


def test_a_customers_own_history_still_predicts_their_purchases(data: Dataset) -> None:
    # given the panel
    panel = _panel(data)

    # when buying X in month t+1 is compared by whether the customer bought X in month t,
    # within strata of whether a friend did
    lift = _risk_ratio(panel.bought_now, panel.bought_next, panel.exposed.astype(np.int64))

    # then own history is a strong signal too
    assert lift > 3.0


# --- Identity ------------------------------------------------------------------------------------


def _email_key(email: str) -> str:
    return email.strip().lower()


def _phone_key(phone: str) -> str:
    return "+" + re.sub(r"\D", "", phone)


def test_about_two_percent_are_duplicates_matching_by_email_or_phone(data: Dataset) -> None:
    # given the duplicate records named by the ground truth
    customers = data.customers.set_index("customer_id")
    duplicates = data.truth[data.truth.duplicate_of != ""]
    copy = customers.loc[duplicates.customer_id]
    original = customers.loc[duplicates.duplicate_of]

    # when each is compared with its original record
    same_email = copy.email.map(_email_key).to_numpy() == original.email.map(_email_key).to_numpy()
    same_phone = copy.phone.map(_phone_key).to_numpy() == original.phone.map(_phone_key).to_numpy()
    raw_email_differs = copy.email.to_numpy() != original.email.to_numpy()
    raw_phone_differs = copy.phone.to_numpy() != original.phone.to_numpy()

    # then about 2% are duplicates, from another source system, matching only after
    # normalising their email or phone, and some orders were filed under the duplicate
    assert 0.01 <= len(duplicates) / len(data.customers) <= 0.03
    assert (copy.source_system.to_numpy() != original.source_system.to_numpy()).all()
    assert (same_email | same_phone).all()
    assert same_email.any() and same_phone.any() and (same_email & ~same_phone).any()
    assert (raw_email_differs[same_email]).all()
    assert (raw_phone_differs[same_phone]).all()
    assert data.transactions.customer_id.isin(duplicates.customer_id).any()
    assert data.interactions.customer_id.isin(duplicates.customer_id).any()
    assert set(data.customers.source_system) == {"webshop", "crm", "pos"}


def test_emails_and_phones_are_unique_except_for_duplicate_records(data: Dataset) -> None:
    # given normalised emails and phones of the original records
    originals = data.customers[data.customers.customer_id.isin(data.people.customer_id)]
    customers = data.customers.assign(
        email_key=data.customers.email.map(_email_key),
        phone_key=data.customers.phone.map(_phone_key),
    )

    # then originals never share them, and no source system holds one twice
    assert originals.email.map(_email_key).is_unique
    assert originals.phone.map(_phone_key).is_unique
    assert not customers.duplicated(["source_system", "email_key"]).any()
    assert not customers.duplicated(["source_system", "phone_key"]).any()
    # and phones are international numbers with a country code
    assert customers.phone.str.startswith("+").all()
    assert customers.phone_key.str.len().between(11, 16).all()


def test_names_use_several_scripts_and_some_need_csv_quoting(data: Dataset) -> None:
    # given the customers' names and the raw file
    names = data.customers.name
    raw = (data.folder / "customers.csv").read_text(encoding="utf-8")

    # then Chinese and other scripts appear, and "Family, Given" names are quoted in the file
    assert names.str.contains(r"[\u4e00-\u9fff]").any()
    assert (names == "王芳").any() or names.str.fullmatch(r"[\u4e00-\u9fff]{2,4}").sum() > 20
    assert names.str.contains(r"[\u0400-\u04ff]").any()  # Cyrillic
    assert names.str.contains(r"[àâäçéèêëíîïñóôöúûüß]").any()
    comma = names[names.str.contains(",")]
    assert len(comma) > 0
    assert f'"{comma.iloc[0]}"' in raw


def test_customer_profiles_carry_extra_columns(data: Dataset) -> None:
    # given the extra profile columns
    age = data.customers.age.astype(int)

    # then ages are adult and tiers are a small set of categories
    assert age.between(18, 90).all()
    assert set(data.customers.loyalty_tier) == {"bronze", "silver", "gold", "platinum"}
    assert data.customers.country.str.fullmatch(r"[A-Z]{2}").all()
    assert pd.to_datetime(data.customers.signup_date, format="%Y-%m-%d").notna().all()
