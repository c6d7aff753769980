"""Synthetic CRM data for a retailer that sells through a web shop, an app, stores and a phone line.

`generate` writes the loader's CSV contract (customers, products, transactions, interactions,
social ties) plus a `ground_truth.csv` the loader ignores. The data come from one generative
model, simulated chunk by chunk (about 50k customers each, so memory stays bounded) and
vectorised with numpy; a seed fixes every byte.

1. **Communities.** Every customer belongs to a circle of friends and colleagues. Circle sizes are
   heavy-tailed (Pareto). A circle lives in one country, mostly in one city, and has its own taste
   over 15 product categories (a Dirichlet draw around global popularity); each member's taste is
   a Dirichlet draw around the circle's.
2. **Social ties.** Each customer has a Pareto "sociability"; both ends of a tie are drawn in
   proportion to it (Chung-Lu), the second end inside the first one's circle 80% of the time. That
   gives a heavy-tailed degree distribution (mean about 5) and homophily. Ties are typed KNOWS,
   COLLEAGUE, FAMILY or REFERRED (the referrer signed up first; the tie dates from the referral).
3. **Spend.** A lognormal purchase propensity per customer makes a few customers carry much of the
   revenue. About 650 products have category-dependent lognormal list prices and Zipf popularity;
   bought categories pull in complements (phones and accessories, fashion and shoes) in the same
   basket.
4. **Weekly simulation.** Each week, customer i buys category c with probability 1 - exp(-λ),
   λ = propensity · season(week) · engagement · (taste_ic + β · influence_i · exposure_ic ·
   (taste_ic + ε)). Demand rises in November and December, spikes on Black Friday and is higher
   at weekends. exposure_ic is the share of i's friends who bought c in recent weeks (each week
   further back weighted by another 0.7, updated from the sparse adjacency) and influence_i is
   i's susceptibility to friends, so friends' purchases really cause purchases while a
   customer's own taste keeps their own history predictive.
5. **Churn.** Active customers start drifting away with a weekly hazard that rises with low
   satisfaction and with the share of friends already drifting or gone. A drifting customer's
   purchase rate fades over a few weeks until they churn; nothing is bought on or after the churn
   date.
6. **Interactions.** Calls, emails, chats, meetings, tickets, social posts and web visits arrive at
   a steady rate with mildly positive sentiment. Drifting customers raise many more tickets and
   calls, with negative sentiment and low satisfaction, often ending with a cancellation.
7. **Identity duplicates.** About 2% of people also exist in a second source system (webshop, crm,
   pos) under another id. The copy shares the email (case or whitespace changed) or the phone
   (formatted differently), and some of that person's orders and interactions were recorded
   against it. Names use several scripts (Latin, Chinese, Japanese, Cyrillic, Greek, Arabic,
   Devanagari), and some are written "Last, First".

`ground_truth.csv` records each row's community, churn date, influence and, for duplicate rows,
the customer_id of the original.
"""

from __future__ import annotations

import csv
import io
import json
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import scipy.sparse as sp

from crm_graph.graph.schema import INTERACTION_TYPES, TIE_TYPES

__all__ = ["CONTRACT_HEADERS", "GROUND_TRUTH_HEADER", "GenerateReport", "generate"]

CUSTOMER_EXTRA_COLUMNS = ("age", "loyalty_tier")
CONTRACT_HEADERS: dict[str, tuple[str, ...]] = {
    "customers.csv": ("customer_id", "name", "email", "phone", "city", "country", "signup_date",
                      "source_system", *CUSTOMER_EXTRA_COLUMNS),
    "products.csv": ("product_id", "name", "category", "price"),
    "transactions.csv": ("transaction_id", "customer_id", "timestamp", "product_id", "quantity",
                         "unit_price", "amount", "channel"),
    "interactions.csv": ("interaction_id", "customer_id", "timestamp", "type", "channel",
                         "subject", "sentiment", "satisfaction"),
    "social_ties.csv": ("source_customer_id", "target_customer_id", "type", "since", "weight"),
}  # fmt: skip
"""The exact header of every contract file `generate` writes."""
GROUND_TRUTH_HEADER = ("customer_id", "community", "churned_at", "influence", "duplicate_of")

# --- Model parameters --------------------------------------------------------------------------
CHUNK_ROWS = 50_000  # customers simulated together; ties and influence stay inside a chunk
MAX_CUSTOMERS = 10_000_000  # unique phones and emails are guaranteed up to this many rows
DUPLICATE_SHARE = 0.02  # people who also appear under a second source system
DUPLICATE_RECORD_P = 0.4  # share of such a person's orders/interactions filed under the copy
AVG_DEGREE = 5.0
INTRA_COMMUNITY = 0.8
SOCIABILITY_ALPHA = 2.2  # Pareto tail of sociability, hence of the degree distribution
COMMUNITY_MIN, COMMUNITY_ALPHA, COMMUNITY_MAX = 8, 1.4, 3_000
INFLUENCE_BETA = 16.0  # purchase-rate multiplier per unit of exposure x susceptibility ...
REFERENCE_RATE = 0.0042  # ... at this weekly purchase rate per category; scaled to stay relative
EXPOSURE_DECAY = 0.7  # weekly decay of friends' purchases in a customer's memory
DISCOVERY = 0.3  # lets friends introduce a category the customer has little taste for
COMPLEMENT_P = 0.25
EXTRA_LINES = 0.2  # Poisson extra products of the same category in a basket
SECOND_ORDER_P = 0.2  # a category bought in a separate order in the same week
PROPENSITY_SIGMA = 1.1
WARM_UP_WEEKS = 8  # unrecorded weeks before the start so word of mouth is already going
CALIBRATION = 1.069  # realised / expected lines without influence, measured
WORD_OF_MOUTH_SHARE = 0.45  # extra purchases at influence_strength 1, measured
CHURN_HAZARD = 0.0028  # weekly base hazard of starting to drift away
CHURN_CONTAGION = 2.0
DRIFT_WEEKS_MIN, DRIFT_WEEKS_MEAN = 4, 8
STEADY_CONTACTS_PER_WEEK = 0.03
DRIFT_CONTACTS_PER_WEEK = 0.3
CANCELLATION_P = 0.6
SOURCE_SYSTEMS = ("webshop", "crm", "pos")
SOURCE_WEIGHTS = (0.5, 0.3, 0.2)
TIERS = ("bronze", "silver", "gold", "platinum")
TIE_TYPE_P_INTRA = (0.55, 0.12, 0.13, 0.20)
TIE_TYPE_P_CROSS = (0.60, 0.10, 0.02, 0.28)
ORDER_CHANNELS = ("web", "store", "app", "phone")
INTERACTION_CHANNELS = ("phone", "email", "web", "app", "store", "social")

# --- Calendar ------------------------------------------------------------------------------------
MONTH_SEASON = (0.85, 0.80, 0.90, 0.95, 0.95, 0.90, 0.90, 0.95, 0.95, 1.00, 1.35, 1.60)
DOW_WEIGHT = (0.90, 0.90, 0.95, 1.00, 1.05, 1.15, 1.05)  # Monday .. Sunday
BLACK_FRIDAY_BOOST = 3.0
HOUR_ONLINE = (2, 1, 1, 1, 1, 1, 2, 4, 5, 6, 6, 7, 8, 7, 6, 6, 6, 7, 8, 10, 11, 10, 7, 4)
HOUR_OFFICE = (0, 0, 0, 0, 0, 0, 0, 1, 4, 8, 9, 9, 7, 8, 9, 8, 7, 5, 3, 1, 0, 0, 0, 0)
HOUR_STORE = (0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 6, 8, 9, 8, 8, 9, 10, 10, 8, 5, 2, 0, 0, 0)

# --- Reference data: catalogue, countries and names, contact subjects ----------------------------
# Kept as data files beside this module (loaders/reference/*.json, each saying what it holds).


def _reference(name: str) -> dict[str, Any]:
    text = (resources.files(__package__) / "reference" / f"{name}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


_CATALOGUE = _reference("catalogue")
# name, median list price, price sigma, popularity, extra quantity, products, nouns
_CATEGORIES: tuple[tuple[str, float, float, float, float, int, list[str]], ...] = tuple(
    (c["name"], c["median_price"], c["price_sigma"], c["popularity"], c["extra_quantity"],
     c["products"], c["nouns"]) for c in _CATALOGUE["categories"]
)  # fmt: skip
N_CATEGORIES = len(_CATEGORIES)
_COMPLEMENT_PAIRS: tuple[tuple[str, str], ...] = tuple(
    (a, b) for a, b in _CATALOGUE["complement_pairs"]
)
_BRANDS: list[str] = _CATALOGUE["brands"]
_MODELS: list[str] = _CATALOGUE["models"]
_PACK_SIZES: list[str] = _CATALOGUE["pack_sizes"]
_PACKED = frozenset(_CATALOGUE["packed_categories"])

_PEOPLE = _reference("people")
_COUNTRIES: list[dict[str, Any]] = _PEOPLE["countries"]
# culture: name order, first names, family names (each "native" or ["native", "ascii"])
_CULTURES: dict[str, tuple[str, list[str | list[str]], list[str | list[str]]]] = {
    key: (c["order"], c["first_names"], c["family_names"]) for key, c in _PEOPLE["cultures"].items()
}
_EMAIL_DOMAINS: tuple[str, ...] = tuple(_PEOPLE["email_domains"])

_SUBJECTS = _reference("subjects")
_SUBJECTS_CALM: dict[str, list[str]] = _SUBJECTS["calm"]
_SUBJECTS_UNHAPPY: dict[str, list[str]] = _SUBJECTS["unhappy"]
_SUBJECTS_CANCEL: list[str] = _SUBJECTS["cancellation"]
# type probabilities: steady, drifting, cancellation
_TYPE_P = (
    (0.15, 0.25, 0.15, 0.03, 0.12, 0.10, 0.20),
    (0.25, 0.15, 0.15, 0.02, 0.38, 0.03, 0.02),
    (0.45, 0.25, 0.00, 0.00, 0.30, 0.00, 0.00),
)
# interaction channel probabilities per type, over INTERACTION_CHANNELS
_TYPE_CHANNEL_P = (
    (1, 0, 0, 0, 0, 0), (0, 1, 0, 0, 0, 0), (0, 0, 0.5, 0.5, 0, 0), (0, 0, 0, 0, 1, 0),
    (0, 0.3, 0.5, 0.2, 0, 0), (0, 0, 0, 0, 0, 1), (0, 0, 0.6, 0.4, 0, 0),
)  # fmt: skip
_SURVEYED_TYPES = ("call", "chat", "meeting", "ticket")

NEVER = np.int32(1 << 30)
_MIX = 2_654_435_761  # a prime: multiplying by it modulo 2^a 3^b 5^c is a bijection that scatters


@dataclass(frozen=True)
class GenerateReport:
    """What `generate` wrote: rows per file (headers excluded), where, and how long it took."""

    out_dir: Path
    customers: int
    products: int
    transactions: int
    interactions: int
    social_ties: int
    ground_truth: int
    seconds: float

    @property
    def rows(self) -> dict[str, int]:
        """Rows written per file name."""
        return {
            "customers.csv": self.customers, "products.csv": self.products,
            "transactions.csv": self.transactions, "interactions.csv": self.interactions,
            "social_ties.csv": self.social_ties, "ground_truth.csv": self.ground_truth,
        }  # fmt: skip


def generate(
    out_dir: Path,
    customers: int,
    seed: int,
    *,
    start: date = date(2023, 1, 1),
    end: date = date(2024, 12, 31),
    lines_per_customer: float = 10.0,
    progress: Callable[[str, int], None] | None = None,
    influence_strength: float = 1.0,
) -> GenerateReport:
    """Write a synthetic retailer's CRM export for `customers` customer rows into `out_dir`.

    About 2% of the rows are second records of a person in another source system. Transactions
    and interactions fall between `start` and `end` (inclusive); on average each customer row
    gets `lines_per_customer` transaction lines. `progress("products", n)` is called once and
    `progress("customers", done)` after each chunk of customers. `influence_strength` scales how
    much friends' purchases drive a customer's purchases (0 switches peer influence off, for
    control experiments). The same arguments always give the same bytes.
    """
    began = time.perf_counter()
    _check_arguments(customers, start, end, lines_per_customer, influence_strength)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(seed)
    cal = _calendar(start, end)
    catalog = _catalog(_rng(seeds, 0))
    _write_products(out_dir / "products.csv", catalog)
    if progress is not None:
        progress("products", len(catalog.names))
    counts = dict.fromkeys(("customers", "transactions", "interactions", "social_ties"), 0)
    ids = _IdCursor()
    with _open_outputs(out_dir) as files:
        for index, (first_row, rows) in enumerate(_chunks(customers)):
            chunk = _Chunk(
                rng=_rng(seeds, index + 1), rows=rows, first_row=first_row,
                total_rows=customers, calendar=cal, catalog=catalog,
                lines_per_customer=lines_per_customer, influence_strength=influence_strength,
                community_offset=ids.communities,
            )  # fmt: skip
            written = chunk.write(files, ids)
            for key, value in written.items():
                counts[key] += value
            if progress is not None:
                progress("customers", counts["customers"])
    return GenerateReport(
        out_dir=out_dir, customers=counts["customers"], products=len(catalog.names),
        transactions=counts["transactions"], interactions=counts["interactions"],
        social_ties=counts["social_ties"], ground_truth=counts["customers"],
        seconds=time.perf_counter() - began,
    )  # fmt: skip


def _check_arguments(
    customers: int, start: date, end: date, lines_per_customer: float, influence: float
) -> None:
    """Refuse arguments the model cannot honour, with a message saying why."""
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"customers must be between 1 and {MAX_CUSTOMERS:,}, got {customers}")
    if (end - start).days < 27:
        raise ValueError(f"the period {start}..{end} must span at least four weeks")
    if not 0 < lines_per_customer <= 1_000:
        raise ValueError(f"lines_per_customer must be in (0, 1000], got {lines_per_customer}")
    if influence < 0:
        raise ValueError(f"influence_strength must be >= 0, got {influence}")


def _rng(seeds: np.random.SeedSequence, index: int) -> np.random.Generator:
    """The random stream of one part of the data set (0 = catalogue, i = chunk i-1)."""
    child = np.random.SeedSequence(seeds.entropy, spawn_key=(index,))
    return np.random.Generator(np.random.PCG64(child))


def _chunks(customers: int) -> list[tuple[int, int]]:
    """(first row, rows) of each chunk: near-equal slices of at most CHUNK_ROWS customers."""
    n_chunks = -(-customers // CHUNK_ROWS)
    sizes = np.full(n_chunks, customers // n_chunks)
    sizes[: customers % n_chunks] += 1
    firsts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    return [(int(f), int(s)) for f, s in zip(firsts, sizes, strict=True)]


@dataclass
class _IdCursor:
    """Running counters that make ids unique across chunks."""

    communities: int = 0
    transactions: int = 0
    interactions: int = 0


# ================================================================================================
# Calendar
# ================================================================================================


@dataclass(frozen=True)
class _Calendar:
    """The simulated weeks: how busy each week is and how its orders spread over its days."""

    start: np.datetime64
    n_days: int
    n_weeks: int
    season: np.ndarray  # (weeks,) mean demand multiplier of the week
    day_cdf: np.ndarray  # (weeks, 7) cumulative share of the week's orders per day
    promo: np.ndarray  # (weeks,) November and December: discounts are common


def _calendar(start: date, end: date) -> _Calendar:
    """Weekly demand from month seasonality, the weekday rhythm and Black Friday."""
    n_days = (end - start).days + 1
    n_weeks = -(-n_days // 7)
    day = np.datetime64(start, "D") + np.arange(n_weeks * 7)
    month = day.astype("datetime64[M]").astype(np.int64) % 12
    weekday = (day.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    day_of_month = (day - day.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)
    black_friday = (month == 10) & (weekday == 4) & (day_of_month >= 22) & (day_of_month <= 28)
    dow = np.asarray(DOW_WEIGHT) / np.mean(DOW_WEIGHT)
    weight = np.asarray(MONTH_SEASON)[month] * dow[weekday]
    weight = weight * np.where(black_friday, BLACK_FRIDAY_BOOST, 1.0)
    weight = (weight * (np.arange(n_weeks * 7) < n_days)).reshape(n_weeks, 7)
    total = weight.sum(axis=1)
    return _Calendar(
        start=np.datetime64(start, "D"), n_days=n_days, n_weeks=n_weeks, season=total / 7.0,
        day_cdf=np.cumsum(weight, axis=1) / total[:, None],
        promo=np.isin(month.reshape(n_weeks, 7)[:, 3], (10, 11)),
    )  # fmt: skip


# ================================================================================================
# Product catalogue
# ================================================================================================


@dataclass(frozen=True)
class _Catalog:
    """Products with category, list price and popularity inside their category."""

    names: list[str]
    category: np.ndarray  # (products,) category index
    list_cents: np.ndarray  # (products,) list price in cents
    pick: np.ndarray  # (products,) category index + cumulative popularity inside it
    extra_quantity: np.ndarray  # (categories,) mean extra units per line
    complement_cdf: np.ndarray  # (categories, categories) which category a basket pulls in
    popularity: np.ndarray  # (categories,) global category popularity


def _catalog(rng: np.random.Generator) -> _Catalog:
    """A few hundred products per the category table, with lognormal prices and Zipf popularity."""
    names: list[str] = []
    category, cents, pick = [], [], []
    brands, models, packs = _BRANDS, _MODELS, _PACK_SIZES
    for c, (cat, median, sigma, _pop, _qty, count, nouns) in enumerate(_CATEGORIES):
        price = median * rng.lognormal(0.0, sigma, count)
        weight = 1.0 / np.arange(1, count + 1) ** 1.1
        weight = weight[rng.permutation(count)]
        cum = np.cumsum(weight) / weight.sum()
        cum[-1] = 1.0
        for j in range(count):
            brand, noun = brands[rng.integers(len(brands))], nouns[rng.integers(len(nouns))]
            tail = packs[rng.integers(len(packs))] if cat in _PACKED else ""
            model = models[rng.integers(len(models))]
            names.append(" ".join(p for p in (brand, noun, model) if p) + tail)
            category.append(c)
            cents.append(_shelf_price_cents(float(price[j])))
            pick.append(c + cum[j])
    popularity = np.array([row[3] for row in _CATEGORIES])
    return _Catalog(
        names=names, category=np.array(category, dtype=np.int64),
        list_cents=np.array(cents, dtype=np.int64), pick=np.array(pick),
        extra_quantity=np.array([row[4] for row in _CATEGORIES]),
        complement_cdf=_complement_cdf(), popularity=popularity / popularity.sum(),
    )  # fmt: skip


def _shelf_price_cents(price: float) -> int:
    """A shelf price ending in 9: 4.49, 12.99, 649.99."""
    if price < 10:
        return max(49, round(price * 10) * 10 - 1)
    return int(price) * 100 + 99


def _complement_cdf() -> np.ndarray:
    """For each category, the cumulative chance that a basket pulls in each other category."""
    names = [row[0] for row in _CATEGORIES]
    link = np.zeros((N_CATEGORIES, N_CATEGORIES))
    for a, b in _COMPLEMENT_PAIRS:
        link[names.index(a), names.index(b)] = link[names.index(b), names.index(a)] = 1.0
    return _cdf_rows(link)


def _write_products(path: Path, catalog: _Catalog) -> None:
    """products.csv: id, name, category and list price."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CONTRACT_HEADERS["products.csv"])
    for j, name in enumerate(catalog.names):
        writer.writerow((_product_id(j), name, _CATEGORIES[int(catalog.category[j])][0],
                         _money(int(catalog.list_cents[j]))))  # fmt: skip
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def _product_id(index: int) -> str:
    return f"P{index + 1:05d}"


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


# ================================================================================================
# Reference tables in array form
# ================================================================================================


@dataclass(frozen=True)
class _Geo:
    """Countries and cities as arrays: weights, phone plans and which cultures live where."""

    codes: list[str]
    weight: np.ndarray
    city_names: list[str]
    city_country: np.ndarray
    city_cdf: list[np.ndarray]  # per country: cumulative city weights
    city_first: np.ndarray  # per country: index of its first city
    culture_names: list[str]
    culture_cdf: list[np.ndarray]  # per country: cumulative weights over culture_ids
    culture_ids: list[np.ndarray]
    dial: list[str]
    prefixes: list[list[str]]
    suffix_digits: list[int]
    groups: list[list[int]]


def _geo() -> _Geo:
    """Parse the country table once."""
    culture_names = list(_CULTURES)
    city_names: list[str] = []
    city_country: list[int] = []
    city_cdf, city_first, culture_cdf, culture_ids = [], [], [], []
    for k, country in enumerate(_COUNTRIES):
        city_first.append(len(city_names))
        city_names += [name for name, _ in country["cities"]]
        city_country += [k] * len(country["cities"])
        city_cdf.append(_cdf([float(w) for _, w in country["cities"]]))
        cultures = country["cultures"]
        culture_ids.append(np.array([culture_names.index(name) for name, _ in cultures]))
        culture_cdf.append(_cdf([float(w) for _, w in cultures]))
    return _Geo(
        codes=[c["code"] for c in _COUNTRIES], weight=_cdf([c["weight"] for c in _COUNTRIES]),
        city_names=city_names, city_country=np.array(city_country), city_cdf=city_cdf,
        city_first=np.array(city_first), culture_names=culture_names, culture_cdf=culture_cdf,
        culture_ids=culture_ids, dial=[c["dial_code"] for c in _COUNTRIES],
        prefixes=[c["mobile_prefixes"] for c in _COUNTRIES],
        suffix_digits=[c["suffix_digits"] for c in _COUNTRIES],
        groups=[c["digit_groups"] for c in _COUNTRIES],
    )  # fmt: skip


def _cdf(weights: Sequence[float]) -> np.ndarray:
    cum = np.cumsum(np.asarray(weights, dtype=float))
    cum /= cum[-1]
    cum[-1] = 1.0
    return cum


@dataclass(frozen=True)
class _NamePool:
    """One culture's first and family names, written natively and in ASCII for emails."""

    order: str
    first: list[tuple[str, str]]
    family: list[tuple[str, str]]


def _name_pools() -> list[_NamePool]:
    return [
        _NamePool(order, _names(first), _names(family))
        for order, first, family in _CULTURES.values()
    ]


def _names(names: list[str | list[str]]) -> list[tuple[str, str]]:
    """['Lena', ['Jürgen', 'juergen']] -> [('Lena', 'lena'), ('Jürgen', 'juergen')]."""
    out = []
    for name in names:
        native, ascii_form = (name, "") if isinstance(name, str) else name
        out.append((native, ascii_form or _ascii(native)))
    return out


def _ascii(text: str) -> str:
    """Lower-case ASCII letters of a Latin name: 'Núñez' -> 'nunez', "O'Brien" -> 'obrien'."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in plain.lower() if "a" <= ch <= "z")


# ================================================================================================
# One chunk of customers
# ================================================================================================


@dataclass
class _People:
    """The latent and visible attributes of the people in one chunk (one row each)."""

    n: int
    community: np.ndarray  # local community, people are laid out community by community
    n_communities: int
    country: np.ndarray
    city: np.ndarray
    taste: np.ndarray  # (n, categories) float32, mean 1 per category over a customer
    propensity: np.ndarray  # lognormal, mean 1
    influence: np.ndarray  # susceptibility to friends, 0..1
    satisfaction: np.ndarray  # latent, standard normal
    hazard: np.ndarray  # weekly chance of starting to drift away
    drift_weeks: np.ndarray  # weeks from starting to drift to churning
    sociability: np.ndarray
    signup_day: np.ndarray  # days after the start (negative: signed up before)
    active_from: np.ndarray  # first week the customer can buy (strictly after signup)
    age: np.ndarray
    source: np.ndarray
    channel_cdf: np.ndarray  # (n, order channels)


@dataclass
class _Simulation:
    """What happened in the weekly simulation: purchases and who drifted away when."""

    cust: np.ndarray
    week: np.ndarray
    cat: np.ndarray
    slot: np.ndarray
    drift_at: np.ndarray  # week drifting started, NEVER if not
    churn_week: np.ndarray  # week of churn, NEVER if not
    churn_day: np.ndarray  # day of churn relative to start, NEVER if not within the period


@dataclass
class _Identity:
    """Visible identity columns of every row of the chunk (people first, then duplicates)."""

    row_number: np.ndarray  # global 0-based row number; customer_id is C{row_number + 1}
    person: np.ndarray  # index of the person the row belongs to
    is_duplicate: np.ndarray
    duplicate_of: np.ndarray  # per person: row index of their duplicate, -1 if none


class _Chunk:
    """Simulates one chunk of customers end to end and appends it to the output files."""

    def __init__(
        self, *, rng: np.random.Generator, rows: int, first_row: int, total_rows: int,
        calendar: _Calendar, catalog: _Catalog, lines_per_customer: float,
        influence_strength: float, community_offset: int,
    ) -> None:  # fmt: skip
        self.rng = rng
        self.rows = rows
        self.first_row = first_row
        self.total_rows = total_rows
        self.cal = calendar
        self.catalog = catalog
        self.lines_per_customer = lines_per_customer
        self.influence_strength = influence_strength
        self.community_offset = community_offset
        n_dup = round(rows * DUPLICATE_SHARE / (1 + DUPLICATE_SHARE))
        self.n_people = rows - n_dup
        self.n_dup = n_dup

    def write(self, files: _Outputs, ids: _IdCursor) -> dict[str, int]:
        """Simulate the chunk, append its rows to every file and return rows written per file."""
        people = _people(self.rng, self.n_people, self.cal)
        ties = _social_ties(self.rng, people, self.cal)
        adjacency = _adjacency(ties, people.n)
        sim = _simulate(
            self.rng, people, adjacency, self.cal,
            self._events_per_person(), self.influence_strength,
        )  # fmt: skip
        identity = _identity(self.rng, self.first_row, self.n_people, self.n_dup)
        row_id = _customer_ids(identity.row_number)
        person_ids = row_id[: self.n_people]
        alias = _alias_ids(identity, row_id)
        n_tx = _write_transactions(
            self.rng, files.transactions, sim, people, self.cal, self.catalog, person_ids, alias,
            ids,
        )  # fmt: skip
        n_int = _write_interactions(
            self.rng, files.interactions, sim, people, self.cal, person_ids, alias, ids
        )
        n_ties = _write_ties(files.social_ties, ties, person_ids, self.cal)
        _write_customers(
            self.rng, files.customers, files.ground_truth, people, sim, identity, row_id,
            self.cal, self.total_rows, self.community_offset,
        )  # fmt: skip
        ids.communities += people.n_communities
        return {"customers": self.rows, "transactions": n_tx, "interactions": n_int,
                "social_ties": n_ties}  # fmt: skip

    def _events_per_person(self) -> float:
        """Category purchases a person should make so that rows x lines_per_customer holds."""
        lines_per_event = (1 + EXTRA_LINES) * (1 + COMPLEMENT_P)
        return self.lines_per_customer * self.rows / self.n_people / lines_per_event


# ------------------------------------------------------------------------------------------------
# People
# ------------------------------------------------------------------------------------------------


def _people(rng: np.random.Generator, n: int, cal: _Calendar) -> _People:
    """Draw communities and, per person, home, taste, spend, loyalty and churn risk."""
    sizes = _community_sizes(rng, n)
    community = np.repeat(np.arange(len(sizes)), sizes)
    k = len(sizes)
    home_country = _pick(_GEO.weight, rng.random(k))
    home_city = _city_in(home_country, rng)
    country = home_country[community]
    city = np.where(rng.random(n) < 0.85, home_city[community], _city_in(country, rng))
    taste = _tastes(rng, community, k)
    signup_day = _signup_days(rng, n, cal)
    active_from = np.where(signup_day < 0, 0, signup_day // 7 + 1).astype(np.int32)
    satisfaction = rng.standard_normal(n)
    hazard = CHURN_HAZARD * rng.lognormal(-0.125, 0.5, n) * np.exp(-0.4 * satisfaction)
    age = np.clip(np.rint(rng.normal(41, 14, n)), 18, 90).astype(np.int64)
    source = _pick(_cdf(SOURCE_WEIGHTS), rng.random(n))
    return _People(
        n=n, community=community, n_communities=k, country=country, city=city, taste=taste,
        propensity=rng.lognormal(-PROPENSITY_SIGMA**2 / 2, PROPENSITY_SIGMA, n),
        influence=rng.beta(2.0, 2.0, n), satisfaction=satisfaction, hazard=hazard,
        drift_weeks=DRIFT_WEEKS_MIN + rng.poisson(DRIFT_WEEKS_MEAN - DRIFT_WEEKS_MIN, n),
        sociability=np.minimum((1 - rng.random(n)) ** (-1 / SOCIABILITY_ALPHA), 200.0),
        signup_day=signup_day, active_from=active_from, age=age, source=source,
        channel_cdf=_channel_preferences(rng, age, source),
    )  # fmt: skip


def _community_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Heavy-tailed (Pareto) circle sizes summing to n; the last one absorbs the remainder."""
    cap = max(2 * COMMUNITY_MIN, min(COMMUNITY_MAX, n // 20))
    draws = COMMUNITY_MIN * (1 - rng.random(n // COMMUNITY_MIN + 1)) ** (-1 / COMMUNITY_ALPHA)
    sizes = np.minimum(np.floor(draws).astype(np.int64), cap)
    cut = int(np.searchsorted(np.cumsum(sizes), n))
    sizes = sizes[: cut + 1].copy()
    sizes[-1] = n - sizes[:-1].sum()
    if len(sizes) > 1 and sizes[-1] < COMMUNITY_MIN:
        sizes[-2] += sizes[-1]
        sizes = sizes[:-1]
    return sizes


def _city_in(country: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A city of each given country, drawn by city size."""
    u = rng.random(len(country))
    city = np.empty(len(country), dtype=np.int64)
    for k in range(len(_COUNTRIES)):
        mask = country == k
        city[mask] = _GEO.city_first[k] + _pick(_GEO.city_cdf[k], u[mask])
    return city


def _tastes(rng: np.random.Generator, community: np.ndarray, k: int) -> np.ndarray:
    """Category tastes: a community draw around global popularity, then a member draw around it."""
    popularity = np.array([row[3] for row in _CATEGORIES])
    popularity /= popularity.sum()
    circle = _dirichlet_rows(rng, np.broadcast_to(6.0 * popularity, (k, N_CATEGORIES)))
    member = _dirichlet_rows(rng, 12.0 * circle[community] + 0.2 * popularity)
    return (member * N_CATEGORIES).astype(np.float32)


def _dirichlet_rows(rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """One Dirichlet draw per row of concentration parameters."""
    g = rng.standard_gamma(alpha) + 1e-12
    drawn: np.ndarray = g / g.sum(axis=1, keepdims=True)
    return drawn


def _signup_days(rng: np.random.Generator, n: int, cal: _Calendar) -> np.ndarray:
    """Two thirds signed up in the six years before the period, the rest during it."""
    before = rng.random(n) < 0.65
    old = -rng.integers(1, 6 * 365, n)
    new = rng.integers(0, max(1, cal.n_days - 14), n)
    return np.where(before, old, new).astype(np.int64)


def _channel_preferences(
    rng: np.random.Generator, age: np.ndarray, source: np.ndarray
) -> np.ndarray:
    """Cumulative order-channel preferences: the young use the app, the old the store and phone."""
    logits = np.tile(np.array([0.0, -0.3, -0.6, -2.3]), (len(age), 1))
    young, old = age < 35, age > 60
    logits[young] += (0.0, -0.3, 0.8, -0.5)
    logits[old] += (-0.3, 0.5, -0.8, 0.8)
    logits[source == SOURCE_SYSTEMS.index("pos")] += (0.0, 0.9, 0.0, 0.0)
    logits[source == SOURCE_SYSTEMS.index("webshop")] += (0.4, 0.0, 0.2, 0.0)
    weights = np.exp(logits + rng.normal(0.0, 0.5, logits.shape))
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    return cdf


# ------------------------------------------------------------------------------------------------
# Social ties
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ties:
    """Unique undirected friendships, each with a direction, type, start day and strength."""

    source: np.ndarray
    target: np.ndarray
    type: np.ndarray
    since_day: np.ndarray  # relative to the period start
    weight_milli: np.ndarray


def _social_ties(rng: np.random.Generator, people: _People, cal: _Calendar) -> _Ties:
    """Chung-Lu ties, 80% inside the community, typed, de-duplicated and dated."""
    n = people.n
    cum = np.cumsum(people.sociability)
    total = cum[-1]
    m = int(n * AVG_DEGREE / 2 * 1.1)
    u = _weighted_index(cum, rng.random(m) * total)
    sizes = np.bincount(people.community, minlength=people.n_communities)
    last = np.cumsum(sizes) - 1
    first = last - sizes + 1
    comm = people.community[u]
    lo = cum[first[comm]] - people.sociability[first[comm]]
    hi = cum[last[comm]]
    v_in = _weighted_index(cum, lo + rng.random(m) * (hi - lo))
    v_out = _weighted_index(cum, rng.random(m) * total)
    v = np.where(rng.random(m) < INTRA_COMMUNITY, v_in, v_out)
    a, b = np.minimum(u, v), np.maximum(u, v)
    pair = np.unique((a * n + b)[a != b])
    a, b = pair // n, pair % n
    return _type_ties(rng, people, cal, a, b)


def _weighted_index(cum: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cum, x, side="right"), len(cum) - 1)


def _type_ties(
    rng: np.random.Generator, people: _People, cal: _Calendar, a: np.ndarray, b: np.ndarray
) -> _Ties:
    """Give each friendship a type, a direction, the date it began and a strength."""
    e = len(a)
    intra = people.community[a] == people.community[b]
    u = rng.random(e)
    kind = np.where(intra, _pick(_cdf(TIE_TYPE_P_INTRA), u), _pick(_cdf(TIE_TYPE_P_CROSS), u))
    referred = kind == TIE_TYPES.index("REFERRED")
    earlier_a = people.signup_day[a] <= people.signup_day[b]
    flip = np.where(referred, ~earlier_a, rng.random(e) < 0.5)
    source, target = np.where(flip, b, a), np.where(flip, a, b)
    since = rng.integers(-8 * 365, cal.n_days - 30, e)
    family_since = rng.integers(-30 * 365, -3 * 365, e)
    since = np.where(kind == TIE_TYPES.index("FAMILY"), family_since, since)
    since = np.where(referred, people.signup_day[target], since)
    beta_a = np.array([2.0, 4.0, 8.0, 3.0])[kind]
    beta_b = np.array([3.0, 3.0, 2.0, 4.0])[kind]
    weight = np.clip(np.rint(rng.beta(beta_a, beta_b) * 1000), 1, 1000).astype(np.int64)
    return _Ties(source=source, target=target, type=kind, since_day=since, weight_milli=weight)


def _adjacency(ties: _Ties, n: int) -> sp.csr_matrix:
    """Symmetric 0/1 friendship matrix (CSR, float32) used for influence and churn contagion."""
    rows = np.concatenate([ties.source, ties.target])
    cols = np.concatenate([ties.target, ties.source])
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(n, n))


# ------------------------------------------------------------------------------------------------
# Weekly simulation of purchases and churn
# ------------------------------------------------------------------------------------------------


def _simulate(
    rng: np.random.Generator, people: _People, adjacency: sp.csr_matrix, cal: _Calendar,
    events_per_person: float, influence_strength: float,
) -> _Simulation:  # fmt: skip
    """Week by week: who starts drifting away, and which categories each customer buys.

    A few unrecorded warm-up weeks let word of mouth build up before the period starts. The
    pull of friends is measured against the typical weekly purchase rate, so its relative size
    does not depend on how many lines were asked for or how long the period is.
    """
    scale = _rate_scale(people, cal, events_per_person, influence_strength)
    weekly_rate = events_per_person / (cal.n_weeks * N_CATEGORIES)
    strength = influence_strength * REFERENCE_RATE / weekly_rate
    market = _Market(rng, people, adjacency, strength, scale)
    for _ in range(WARM_UP_WEEKS):
        market.trade(0, 1.0)
    events = []
    for week in range(cal.n_weeks):
        market.drift_away(week)
        cust, cat, slot = market.trade(week, float(cal.season[week]))
        events.append((cust, cat, slot, week))
    return _finish_simulation(rng, events, market.drift_at, market.churn_week, cal)


class _Market:
    """The weekly state of a chunk: word-of-mouth exposure and who is drifting away."""

    def __init__(
        self, rng: np.random.Generator, people: _People, adjacency: sp.csr_matrix,
        influence_strength: float, scale: float,
    ) -> None:  # fmt: skip
        n = people.n
        self.rng, self.people, self.adjacency = rng, people, adjacency
        degree = np.diff(adjacency.indptr)
        self.inv_degree = np.divide(1.0, degree, out=np.zeros(n), where=degree > 0).astype(
            np.float32
        )
        self.rate = (people.propensity * scale).astype(np.float32)
        self.susceptible = (influence_strength * INFLUENCE_BETA * people.influence).astype(
            np.float32
        )
        self.open_taste = people.taste + np.float32(DISCOVERY)
        self.exposure = np.zeros((n, N_CATEGORIES), dtype=np.float32)
        self.pressure = np.zeros(n, dtype=np.float32)
        self.drift_at = np.full(n, NEVER, dtype=np.int32)
        self.churn_week = np.full(n, NEVER, dtype=np.int32)

    def active(self, week: int) -> np.ndarray:
        """Customers who have signed up and not churned yet."""
        return (self.people.active_from <= week) & (week < self.churn_week)

    def drift_away(self, week: int) -> None:
        """Loyal customers start drifting with their hazard, raised by friends already gone."""
        p = self.people
        hazard = p.hazard * (1 + CHURN_CONTAGION * self.pressure)
        starts = np.flatnonzero(
            self.active(week) & (self.drift_at == NEVER) & (self.rng.random(p.n) < hazard)
        )
        self.drift_at[starts] = week
        self.churn_week[starts] = week + p.drift_weeks[starts]
        _spread(self.adjacency, self.inv_degree, starts, None, self.pressure)

    def trade(self, week: int, season: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Draw the week's category purchases, then let friends hear about them.

        Returns (customer, category, order slot) per purchased category.
        """
        p = self.people
        weekly = self.rate * np.float32(season) * _engagement(week, self.drift_at, p)
        buyers = np.flatnonzero(self.active(week) & (weekly > 0))
        word_of_mouth = self.susceptible[buyers, None] * self.exposure[buyers]
        lam = weekly[buyers, None] * (p.taste[buyers] + word_of_mouth * self.open_taste[buyers])
        draw = self.rng.random(lam.shape, dtype=np.float32)
        hit_row, cat = np.nonzero(draw < -np.expm1(-lam))
        cust, cat, slot = _with_complements(self.rng, buyers[hit_row], cat)
        self.exposure *= np.float32(EXPOSURE_DECAY)
        bought = np.unique(cust.astype(np.int64) * N_CATEGORIES + cat)
        _spread(self.adjacency, self.inv_degree, bought // N_CATEGORIES, bought % N_CATEGORIES,
                self.exposure)  # fmt: skip
        return cust, cat, slot


def _rate_scale(
    people: _People, cal: _Calendar, events_per_person: float, influence_strength: float
) -> float:
    """Scale propensities so a chunk's expected category purchases match the requested volume.

    Uses each customer's expected active, season-weighted weeks under their churn hazard, and
    the measured extra buying that word of mouth brings.
    """
    survival = np.ones(people.n)
    exposure_weeks = np.zeros(people.n)
    for week in range(cal.n_weeks):
        on = people.active_from <= week
        exposure_weeks += cal.season[week] * np.where(on, survival, 0.0)
        survival = np.where(on, survival * (1 - people.hazard), survival)
    expected = N_CATEGORIES * float(np.sum(people.propensity * exposure_weeks))
    if expected <= 0:
        return 0.0
    word_of_mouth = 1 + WORD_OF_MOUTH_SHARE * influence_strength
    return events_per_person * people.n / expected * CALIBRATION / word_of_mouth


def _engagement(week: int, drift_at: np.ndarray, people: _People) -> np.ndarray:
    """1 while loyal; fades linearly towards 0.1 over the weeks a drifting customer has left."""
    into = week - drift_at + 1
    fade = 1.0 - 0.9 * into / people.drift_weeks
    return np.where(drift_at <= week, np.clip(fade, 0.1, 1.0), 1.0).astype(np.float32)


def _spread(
    adjacency: sp.csr_matrix, inv_degree: np.ndarray, who: np.ndarray, cat: np.ndarray | None,
    into: np.ndarray,
) -> None:  # fmt: skip
    """Add 1/degree to every friend of each `who` (in category `cat` if given) in `into`."""
    if len(who) == 0:
        return
    indptr, indices = adjacency.indptr, adjacency.indices
    count = indptr[who + 1] - indptr[who]
    total = int(count.sum())
    if total == 0:
        return
    offsets = np.repeat(indptr[who] - (np.cumsum(count) - count), count) + np.arange(total)
    friends = indices[offsets]
    if cat is None:
        np.add.at(into, friends, inv_degree[friends])
    else:
        np.add.at(into, (friends, np.repeat(cat, count)), inv_degree[friends])


def _with_complements(
    rng: np.random.Generator, cust: np.ndarray, cat: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add the complementary categories baskets pull in, and split some into a second order."""
    slot = (rng.random(len(cust)) < SECOND_ORDER_P).astype(np.int8)
    pulled = np.flatnonzero(rng.random(len(cust)) < COMPLEMENT_P)
    complement = _pick_rows(_COMPLEMENTS[cat[pulled]], rng.random(len(pulled)))
    return (
        np.concatenate([cust, cust[pulled]]).astype(np.int32),
        np.concatenate([cat, complement]).astype(np.int8),
        np.concatenate([slot, slot[pulled]]),
    )


def _finish_simulation(
    rng: np.random.Generator, events: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]],
    drift_at: np.ndarray, churn_week: np.ndarray, cal: _Calendar,
) -> _Simulation:  # fmt: skip
    """Collect the weekly purchases and date each churn inside its week."""
    churn_day = 7 * churn_week.astype(np.int64) + rng.integers(0, 7, len(churn_week))
    churned = (churn_week < NEVER) & (churn_day < cal.n_days)
    return _Simulation(
        cust=np.concatenate([e[0] for e in events]),
        week=np.concatenate([np.full(len(e[0]), e[3], dtype=np.int32) for e in events]),
        cat=np.concatenate([e[1] for e in events]),
        slot=np.concatenate([e[2] for e in events]),
        drift_at=drift_at, churn_week=churn_week,
        churn_day=np.where(churned, churn_day, NEVER),
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------
# Identities and duplicates
# ------------------------------------------------------------------------------------------------


def _identity(rng: np.random.Generator, first_row: int, n_people: int, n_dup: int) -> _Identity:
    """Shuffle the chunk's customer numbers over its people and their duplicate records."""
    rows = n_people + n_dup
    row_number = first_row + rng.permutation(rows)
    dup_people = np.sort(rng.choice(n_people, size=n_dup, replace=False))
    duplicate_of = np.full(n_people, -1, dtype=np.int64)
    duplicate_of[dup_people] = n_people + np.arange(n_dup)
    return _Identity(
        row_number=row_number, person=np.concatenate([np.arange(n_people), dup_people]),
        is_duplicate=np.arange(rows) >= n_people, duplicate_of=duplicate_of,
    )  # fmt: skip


def _customer_ids(row_number: np.ndarray) -> np.ndarray:
    return _fixed_digits(row_number + 1, 8, b"C")


def _alias_ids(identity: _Identity, row_id: np.ndarray) -> np.ndarray:
    """Per person, the id of their duplicate record (empty bytes if none)."""
    has = identity.duplicate_of >= 0
    alias = np.zeros(len(identity.duplicate_of), dtype=row_id.dtype)
    alias[has] = row_id[identity.duplicate_of[has]]
    return alias


def _file_under_alias(
    rng: np.random.Generator, person: np.ndarray, person_ids: np.ndarray, alias: np.ndarray
) -> np.ndarray:
    """The customer id a record was filed under: sometimes the person's duplicate record."""
    use = (alias[person] != b"") & (rng.random(len(person)) < DUPLICATE_RECORD_P)
    drawn: np.ndarray = np.where(use, alias[person], person_ids[person])
    return drawn


# ------------------------------------------------------------------------------------------------
# Transactions
# ------------------------------------------------------------------------------------------------


def _write_transactions(
    rng: np.random.Generator, out: BinaryIO, sim: _Simulation, people: _People, cal: _Calendar,
    catalog: _Catalog, person_ids: np.ndarray, alias: np.ndarray, ids: _IdCursor,
) -> int:  # fmt: skip
    """Turn weekly category purchases into orders and line items and append them."""
    key = (sim.cust.astype(np.int64) * cal.n_weeks + sim.week) * 2 + sim.slot
    order_key, order_of_event = np.unique(key, return_inverse=True)
    o_cust = order_key // (2 * cal.n_weeks)
    o_week = (order_key // 2) % cal.n_weeks
    channel = _pick_rows(people.channel_cdf[o_cust], rng.random(len(order_key)))
    o_second = _order_seconds(rng, o_week, channel, cal)
    n_lines = 1 + rng.poisson(EXTRA_LINES, len(key))
    event = np.repeat(np.arange(len(key)), n_lines)
    product = _pick_products(rng, catalog, sim.cat[event])
    quantity = 1 + rng.poisson(catalog.extra_quantity[sim.cat[event]])
    line_key = order_of_event[event].astype(np.int64) * len(catalog.names) + product
    merged, inverse = np.unique(line_key, return_inverse=True)
    quantity = np.bincount(inverse, weights=quantity).astype(np.int64)
    order, product = merged // len(catalog.names), merged % len(catalog.names)
    unit = _unit_cents(rng, catalog.list_cents[product], cal.promo[o_week[order]])
    rank = np.empty(len(order_key), dtype=np.int64)
    rank[np.argsort(o_second, kind="stable")] = np.arange(len(order_key))
    by_time = np.argsort(rank[order] * len(catalog.names) + product, kind="stable")
    order, product = order[by_time], product[by_time]
    quantity, unit = quantity[by_time], unit[by_time]
    order_customer = _file_under_alias(rng, o_cust, person_ids, alias)
    out.write(_render([
        _fixed_digits(ids.transactions + 1 + rank[order], 10, b"T"), b",",
        order_customer[order], b",", _timestamps(cal, o_second[order]), b",",
        _fixed_digits(product + 1, 5, b"P"), b",", _int_text(quantity), b",",
        _decimal_text(unit), b",", _decimal_text(quantity * unit), b",",
        _labels(ORDER_CHANNELS)[channel[order]], b"\n",
    ]))  # fmt: skip
    ids.transactions += len(order_key)
    return len(order)


def _order_seconds(
    rng: np.random.Generator, week: np.ndarray, channel: np.ndarray, cal: _Calendar
) -> np.ndarray:
    """Seconds after the period start: a weekday by the week's rhythm, an hour by channel."""
    day = 7 * week + _pick_rows(cal.day_cdf[week], rng.random(len(week)))
    u = rng.random(len(week))
    hour = np.empty(len(week), dtype=np.int64)
    for c, cdf in enumerate(_ORDER_HOUR_CDF):
        mask = channel == c
        hour[mask] = _pick(cdf, u[mask])
    drawn: np.ndarray = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, len(week))
    return drawn


def _pick_products(rng: np.random.Generator, catalog: _Catalog, cat: np.ndarray) -> np.ndarray:
    """A product of each given category, by popularity."""
    x = cat + rng.random(len(cat))
    return np.minimum(np.searchsorted(catalog.pick, x, side="right"), len(catalog.pick) - 1)


def _unit_cents(rng: np.random.Generator, list_cents: np.ndarray, promo: np.ndarray) -> np.ndarray:
    """The price paid per unit: list price, or 10-30% off in a third of holiday-season lines."""
    off = rng.choice(np.array([10, 15, 20, 25, 30]), size=len(list_cents))
    discounted = promo & (rng.random(len(list_cents)) < 0.35)
    return np.where(discounted, np.rint(list_cents * (100 - off) / 100), list_cents).astype(
        np.int64
    )


# ------------------------------------------------------------------------------------------------
# Interactions
# ------------------------------------------------------------------------------------------------


def _write_interactions(
    rng: np.random.Generator, out: BinaryIO, sim: _Simulation, people: _People, cal: _Calendar,
    person_ids: np.ndarray, alias: np.ndarray, ids: _IdCursor,
) -> int:  # fmt: skip
    """Contacts: steady ones while loyal, unhappy ones while drifting, and cancellations."""
    who, day, phase = _contact_days(rng, sim, people, cal)
    kind = np.empty(len(who), dtype=np.int64)
    u = rng.random(len(who))
    for p, probs in enumerate(_TYPE_P):
        kind[phase == p] = _pick(_cdf(probs), u[phase == p])
    sentiment = _sentiment(rng, who, day, phase, kind, sim, people)
    satisfaction = _satisfaction(rng, kind, sentiment)
    subject = _subjects(rng, kind, phase, sentiment)
    channel = _pick_rows(_TYPE_CHANNEL_CDF[kind], rng.random(len(who)))
    office = np.isin(kind, [INTERACTION_TYPES.index(t) for t in ("call", "meeting")])
    hour = np.where(
        office, _pick(_cdf(HOUR_OFFICE), rng.random(len(who))),
        _pick(_cdf(HOUR_ONLINE), rng.random(len(who))),
    )  # fmt: skip
    second = day * 86_400 + hour * 3_600 + rng.integers(0, 3_600, len(who))
    order = np.argsort(second, kind="stable")
    customer = _file_under_alias(rng, who, person_ids, alias)
    sat_text = np.where(satisfaction > 0, satisfaction.astype("S1"), b"")
    out.write(_render([
        _fixed_digits(ids.interactions + 1 + np.arange(len(who)), 10, b"I"), b",",
        customer[order], b",", _timestamps(cal, second[order]), b",",
        _labels(INTERACTION_TYPES)[kind[order]], b",",
        _labels(INTERACTION_CHANNELS)[channel[order]], b",", _SUBJECT_POOL[subject[order]], b",",
        _decimal_text(sentiment[order]), b",", sat_text[order], b"\n",
    ]))  # fmt: skip
    ids.interactions += len(who)
    return len(who)


def _contact_days(
    rng: np.random.Generator, sim: _Simulation, people: _People, cal: _Calendar
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(person, day, phase) of every contact; phase 0 loyal, 1 drifting, 2 cancellation."""
    n_days = cal.n_days
    begin = np.minimum(7 * people.active_from.astype(np.int64), n_days)
    drift = np.minimum(np.where(sim.drift_at < NEVER, 7 * sim.drift_at.astype(np.int64), n_days),
                       n_days)  # fmt: skip
    drift = np.maximum(drift, begin)
    stop = np.maximum(np.minimum(sim.churn_day, n_days), drift)
    calm_days, unhappy_days = drift - begin, stop - drift
    engaged = people.propensity**0.3
    calm = rng.poisson(STEADY_CONTACTS_PER_WEEK / 7 * engaged * calm_days)
    unhappy = rng.poisson(DRIFT_CONTACTS_PER_WEEK / 7 * unhappy_days)
    cancels = np.flatnonzero((sim.churn_day < n_days) & (rng.random(people.n) < CANCELLATION_P))
    calm_who = np.repeat(np.arange(people.n), calm)
    unhappy_who = np.repeat(np.arange(people.n), unhappy)
    calm_day = begin[calm_who] + (rng.random(len(calm_who)) * calm_days[calm_who]).astype(np.int64)
    unhappy_day = drift[unhappy_who] + (
        rng.random(len(unhappy_who)) * unhappy_days[unhappy_who]
    ).astype(np.int64)
    return (
        np.concatenate([calm_who, unhappy_who, cancels]),
        np.concatenate([calm_day, unhappy_day, sim.churn_day[cancels]]),
        np.concatenate([np.zeros(len(calm_who), np.int64), np.ones(len(unhappy_who), np.int64),
                        np.full(len(cancels), 2, np.int64)]),
    )  # fmt: skip


def _sentiment(
    rng: np.random.Generator, who: np.ndarray, day: np.ndarray, phase: np.ndarray,
    kind: np.ndarray, sim: _Simulation, people: _People,
) -> np.ndarray:  # fmt: skip
    """Sentiment in hundredths (-100..100): mildly positive when loyal, souring while drifting."""
    z = people.satisfaction[who]
    drift_start = 7.0 * np.minimum(sim.drift_at[who], NEVER // 8)
    length = np.maximum(7.0 * people.drift_weeks[who], 1.0)
    progress = np.clip((day - drift_start) / length, 0.0, 1.0)
    ticket = kind == INTERACTION_TYPES.index("ticket")
    mean = np.select(
        [phase == 0, phase == 1],
        [0.2 + 0.15 * z - 0.25 * ticket, -0.3 + 0.1 * z - 0.3 * progress], -0.7,
    )  # fmt: skip
    value = np.clip(mean + rng.normal(0.0, 0.3, len(who)), -1.0, 1.0)
    drawn: np.ndarray = np.rint(value * 100).astype(np.int64)
    return drawn


def _satisfaction(rng: np.random.Generator, kind: np.ndarray, sentiment: np.ndarray) -> np.ndarray:
    """A 1-5 survey score for some calls, chats, meetings and tickets; 0 means not answered."""
    surveyed = np.isin(kind, [INTERACTION_TYPES.index(t) for t in _SURVEYED_TYPES])
    answered = surveyed & (rng.random(len(kind)) < 0.55)
    score = np.clip(np.rint(3 + 2.0 * sentiment / 100 + rng.normal(0, 0.7, len(kind))), 1, 5)
    return np.where(answered, score, 0).astype(np.int64)


def _subject_pool() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All subjects, CSV-quoted UTF-8, with the [first, end) slice per (type, mood)."""
    categories = [row[0] for row in _CATEGORIES]
    texts: list[str] = []
    start = np.zeros((len(INTERACTION_TYPES), 3), dtype=np.int64)
    stop = np.zeros_like(start)
    for t, name in enumerate(INTERACTION_TYPES):
        for mood, pool in enumerate((_SUBJECTS_CALM[name], _SUBJECTS_UNHAPPY[name],
                                     _SUBJECTS_CANCEL)):  # fmt: skip
            start[t, mood] = len(texts)
            for template in pool:
                if "{cat}" in template:
                    texts += [template.format(cat=c) for c in categories]
                else:
                    texts.append(template)
            stop[t, mood] = len(texts)
    return np.array([_csv_field(s).encode() for s in texts]), start, stop


def _subjects(
    rng: np.random.Generator, kind: np.ndarray, phase: np.ndarray, sentiment: np.ndarray
) -> np.ndarray:
    """A subject line matching the contact's type and mood."""
    mood = np.where(phase == 2, 2, np.where(sentiment < -20, 1, 0))
    first, stop = _SUBJECT_START[kind, mood], _SUBJECT_STOP[kind, mood]
    drawn: np.ndarray = first + (rng.random(len(kind)) * (stop - first)).astype(np.int64)
    return drawn


# ------------------------------------------------------------------------------------------------
# Customers, ties and ground truth
# ------------------------------------------------------------------------------------------------


def _write_ties(out: BinaryIO, ties: _Ties, person_ids: np.ndarray, cal: _Calendar) -> int:
    """social_ties.csv rows of the chunk."""
    out.write(_render([
        person_ids[ties.source], b",", person_ids[ties.target], b",",
        _labels(TIE_TYPES)[ties.type], b",", _dates(cal, ties.since_day), b",",
        _decimal_text(ties.weight_milli, places=3), b"\n",
    ]))  # fmt: skip
    return len(ties.source)


def _write_customers(
    rng: np.random.Generator, out: BinaryIO, truth: BinaryIO, people: _People, sim: _Simulation,
    identity: _Identity, row_id: np.ndarray, cal: _Calendar, total_rows: int,
    community_offset: int,
) -> None:  # fmt: skip
    """customers.csv and ground_truth.csv rows of the chunk, in customer_id order."""
    records = _customer_records(rng, people, identity, cal, total_rows)
    order = np.argsort(identity.row_number, kind="stable")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(records[i] for i in order.tolist())
    out.write(buffer.getvalue().encode("utf-8"))
    person = identity.person[order]
    churned = sim.churn_day[person] < NEVER
    original = np.where(
        identity.is_duplicate[order], row_id[person], np.zeros(1, dtype=row_id.dtype)
    )
    truth.write(_render([
        row_id[order], b",", _int_text(community_offset + people.community[person]), b",",
        np.where(churned, _dates(cal, np.where(churned, sim.churn_day[person], 0)), b""), b",",
        _decimal_text(np.rint(people.influence[person] * 1000).astype(np.int64), places=3),
        b",", original, b"\n",
    ]))  # fmt: skip


def _customer_records(
    rng: np.random.Generator, people: _People, identity: _Identity, cal: _Calendar,
    total_rows: int,
) -> list[tuple[str, ...]]:  # fmt: skip
    """One customers.csv record per row of the chunk (people first, then duplicate records)."""
    digits = max(4, len(str(total_rows)))
    persons = _person_contacts(rng, people, identity.row_number[: people.n], digits)
    dups = _duplicate_contacts(rng, people, identity, persons, digits)
    person = identity.person
    signup = np.concatenate([people.signup_day, dups.signup])
    source = np.concatenate([people.source, dups.source]).tolist()
    tier = np.concatenate([_tiers(rng, people.propensity), np.zeros(len(dups.source), np.int64)])
    return list(zip(
        [_customer_id(x) for x in identity.row_number.tolist()],
        persons.name + dups.name, persons.email + dups.email, persons.phone + dups.phone,
        [_GEO.city_names[c] for c in people.city[person].tolist()],
        [_GEO.codes[c] for c in people.country[person].tolist()],
        _dates(cal, signup).astype("U10").tolist(), [SOURCE_SYSTEMS[s] for s in source],
        people.age[person].astype("U3").tolist(), [TIERS[t] for t in tier.tolist()],
        strict=True,
    ))  # fmt: skip


@dataclass(frozen=True)
class _Contacts:
    """Names, emails and phones of some rows, plus what a duplicate record needs to copy them."""

    name: list[str]
    email: list[str]
    phone: list[str]
    phone_style: list[int]
    given: list[tuple[str, str]]
    family: list[tuple[str, str]]
    order: list[str]


@dataclass(frozen=True)
class _DuplicateRows:
    """The visible columns of the duplicate records that differ from the original's."""

    name: list[str]
    email: list[str]
    phone: list[str]
    source: np.ndarray
    signup: np.ndarray


def _person_contacts(
    rng: np.random.Generator, people: _People, numbers: np.ndarray, digits: int
) -> _Contacts:
    """Each person's name in their culture, a unique email and a unique mobile number."""
    n = people.n
    culture = _cultures(rng, people.country).tolist()
    first_u, family_u = rng.random(n).tolist(), rng.random(n).tolist()
    swap = (rng.random(n) < 0.05).tolist()
    email_style = rng.integers(0, 4, n).tolist()
    domain = rng.integers(0, len(_EMAIL_DOMAINS), n).tolist()
    phone_style = np.where(rng.random(n) < 0.8, 0, 1).tolist()
    country = people.country.tolist()
    out = _Contacts([], [], [], phone_style, [], [], [])
    for p, number in enumerate(numbers.tolist()):
        pool = _POOLS[culture[p]]
        given = pool.first[int(first_u[p] * len(pool.first))]
        family = pool.family[int(family_u[p] * len(pool.family))]
        out.given.append(given)
        out.family.append(family)
        out.order.append(pool.order)
        out.name.append(_full_name(pool.order, given[0], family[0], swap[p]))
        out.email.append(_email(given[1], family[1], email_style[p], domain[p], number, digits))
        out.phone.append(_phone(country[p], number, phone_style[p]))
    return out


def _duplicate_contacts(
    rng: np.random.Generator, people: _People, identity: _Identity, persons: _Contacts,
    digits: int,
) -> _DuplicateRows:  # fmt: skip
    """Second records: another source system, the same email or phone written differently.

    Each duplicate shares the original's email (45%), phone (40%) or both (15%); the other
    channel is its own. Its name may be reordered, initialled, upper-cased or romanised.
    """
    rows = np.flatnonzero(identity.is_duplicate)
    person = identity.person[rows]
    k = len(rows)
    share = _pick(_cdf((0.45, 0.40, 0.15)), rng.random(k)).tolist()
    source = (people.source[person] + rng.integers(1, 3, k)) % 3
    signup = people.signup_day[person] - rng.integers(1, 400, k)
    name_variant, email_variant = rng.integers(0, 4, k).tolist(), rng.integers(0, 4, k).tolist()
    email_style, domain = rng.integers(0, 4, k).tolist(), rng.integers(0, 6, k).tolist()
    phone_shift = rng.integers(1, 3, k).tolist()
    out = _DuplicateRows([], [], [], source, signup)
    numbers = identity.row_number.tolist()
    for d, p in enumerate(person.tolist()):
        number, country = numbers[rows[d]], int(people.country[p])
        given, family = persons.given[p], persons.family[p]
        out.name.append(_vary_name(persons.order[p], given, family, persons.name[p],
                                   name_variant[d]))  # fmt: skip
        if share[d] == 1:
            out.email.append(_email(given[1], family[1], email_style[d], domain[d], number,
                                    digits))  # fmt: skip
        else:
            out.email.append(_vary_email(persons.email[p], email_variant[d]))
        if share[d] == 0:
            out.phone.append(_phone(country, number, 1 - persons.phone_style[p]))
        else:
            style = (persons.phone_style[p] + phone_shift[d]) % 3
            out.phone.append(_phone(country, numbers[p], style))
    return out


def _customer_id(number: int) -> str:
    return f"C{number + 1:08d}"


def _cultures(rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    """Each person's naming culture, drawn from their country's mix."""
    u = rng.random(len(country))
    culture = np.zeros(len(country), dtype=np.int64)
    for k in range(len(_COUNTRIES)):
        mask = country == k
        culture[mask] = _GEO.culture_ids[k][_pick(_GEO.culture_cdf[k], u[mask])]
    return culture


def _tiers(rng: np.random.Generator, propensity: np.ndarray) -> np.ndarray:
    """Loyalty tier by noisy spend rank: 50% bronze, 30% silver, 15% gold, 5% platinum."""
    score = np.log(propensity) + rng.normal(0.0, 0.6, len(propensity))
    rank = np.argsort(np.argsort(score, kind="stable"), kind="stable") / max(len(score), 1)
    return np.searchsorted(np.array([0.5, 0.8, 0.95]), rank, side="right")


def _full_name(order: str, given: str, family: str, swap: bool) -> str:
    """A display name in the culture's order; some Latin names are filed as 'Family, Given'."""
    if order == "east":
        return family + given
    if order == "east_space":
        return f"{family} {given}"
    if order == "western" and swap:
        return f"{family}, {given}"
    return f"{given} {family}"


def _vary_name(
    order: str, given: tuple[str, str], family: tuple[str, str], name: str, variant: int
) -> str:
    """How another system spelled the same person: as is, reordered, initialled or romanised."""
    if order != "western":
        if variant >= 2:
            return f"{given[1].title()} {family[1].title()}"
        return name
    if variant == 1:
        return f"{family[0]}, {given[0]}"
    if variant == 2:
        return f"{given[0][0]}. {family[0]}"
    if variant == 3:
        return f"{given[0]} {family[0]}".upper()
    return name


def _email(given: str, family: str, style: int, domain: int, number: int, digits: int) -> str:
    """A unique address: the name in one of four patterns plus a number unique to the row."""
    code = (number * _MIX + 4_231) % 10**digits
    local = (f"{given}.{family}", f"{given}{family}", f"{given[:1]}{family}",
             f"{family}.{given}")[style]  # fmt: skip
    return f"{local}{code}@{_EMAIL_DOMAINS[domain]}"


def _vary_email(email: str, variant: int) -> str:
    """The same address as typed into another system: upper-cased, capitalised or padded."""
    if variant == 0:
        return email.upper()
    if variant == 1:
        local, _, domain = email.partition("@")
        return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain.title()
    if variant == 2:
        return f" {email} "
    return email.upper() + " "


def _phone(country: int, number: int, style: int) -> str:
    """A mobile number unique to the row number, spaced, compact or dashed (+44 7400 123456)."""
    prefixes, digits = _GEO.prefixes[country], _GEO.suffix_digits[country]
    space = 8 * 10 ** (digits - 1)
    capacity = space * len(prefixes)
    code = (number * _MIX + 7 * country) % capacity
    national = prefixes[code // space] + str(2 * 10 ** (digits - 1) + code % space)
    if style == 1:
        return f"+{_GEO.dial[country]}{national}"
    parts, at = [], 0
    for size in _GEO.groups[country]:
        parts.append(national[at : at + size])
        at += size
    sep = " " if style == 0 else "-"
    return f"+{_GEO.dial[country]}{sep}{sep.join(parts)}"


# ================================================================================================
# Output plumbing: files and fast CSV rendering
# ================================================================================================


@dataclass
class _Outputs:
    """The open output files (binary, UTF-8 content)."""

    customers: BinaryIO
    transactions: BinaryIO
    interactions: BinaryIO
    social_ties: BinaryIO
    ground_truth: BinaryIO

    def __enter__(self) -> _Outputs:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in (self.customers, self.transactions, self.interactions, self.social_ties,
                  self.ground_truth):  # fmt: skip
            f.close()


def _open_outputs(out_dir: Path) -> _Outputs:
    """Create the five streamed files and write their headers."""
    names = ("customers.csv", "transactions.csv", "interactions.csv", "social_ties.csv",
             "ground_truth.csv")  # fmt: skip
    handles = []
    for name in names:
        header = CONTRACT_HEADERS.get(name, GROUND_TRUTH_HEADER)
        handle = (out_dir / name).open("wb")
        handle.write((",".join(header) + "\n").encode("utf-8"))
        handles.append(handle)
    return _Outputs(*handles)


def _render(pieces: list[np.ndarray | bytes]) -> bytes:
    """Concatenate per-row byte fields and literal separators into CSV text.

    Each array holds one byte string per row (numpy 'S' dtype, NUL-padded); the padding, and
    any NUL bytes a formatter left in, are dropped.
    """
    arrays = [p for p in pieces if not isinstance(p, bytes)]
    n = len(arrays[0])
    if n == 0:
        return b""
    blocks = []
    for piece in pieces:
        if isinstance(piece, bytes):
            blocks.append(np.broadcast_to(np.frombuffer(piece, np.uint8), (n, len(piece))))
        else:
            flat = np.ascontiguousarray(piece)
            blocks.append(flat.view(np.uint8).reshape(n, flat.dtype.itemsize))
    matrix = np.concatenate(blocks, axis=1)
    packed: bytes = matrix[matrix != 0].tobytes()
    return packed


def _fixed_digits(values: np.ndarray, width: int, prefix: bytes) -> np.ndarray:
    """Zero-padded ids: 42 -> b'C00000042'."""
    values = np.asarray(values, dtype=np.int64)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers % 10 + 48).astype(np.uint8)
    head = np.broadcast_to(np.frombuffer(prefix, np.uint8), (len(values), len(prefix)))
    matrix = np.ascontiguousarray(np.concatenate([head, digits], axis=1))
    return matrix.view(f"S{matrix.shape[1]}").ravel()


def _int_text(values: np.ndarray) -> np.ndarray:
    """Non-negative integers as text without leading zeros."""
    values = np.asarray(values, dtype=np.int64)
    width = max(1, len(str(int(values.max())))) if len(values) else 1
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers % 10).astype(np.uint8)
    significant = np.maximum.accumulate(digits != 0, axis=1)
    significant[:, -1] = True
    matrix = np.ascontiguousarray(np.where(significant, digits + 48, 0).astype(np.uint8))
    return matrix.view(f"S{width}").ravel()


def _decimal_text(scaled: np.ndarray, places: int = 2) -> np.ndarray:
    """Fixed-point numbers given in units of 10**-places: -5 -> b'-0.05', 12345 -> b'123.45'."""
    scaled = np.asarray(scaled, dtype=np.int64)
    if len(scaled) == 0:
        return np.zeros(0, dtype="S1")
    magnitude = np.abs(scaled)
    unit = 10**places
    whole = _int_text(magnitude // unit).view(np.uint8).reshape(len(scaled), -1)
    frac = _fixed_digits(magnitude % unit, places, b".").view(np.uint8).reshape(len(scaled), -1)
    sign = np.where(scaled < 0, ord("-"), 0).astype(np.uint8)[:, None]
    matrix = np.ascontiguousarray(np.concatenate([sign, whole, frac], axis=1))
    return matrix.view(f"S{matrix.shape[1]}").ravel()


def _timestamps(cal: _Calendar, seconds: np.ndarray) -> np.ndarray:
    """ISO 8601 UTC instants: b'2024-03-05T14:22:10+00:00'."""
    base = cal.start.astype("datetime64[s]").astype(np.int64)
    text = (base + seconds).astype("datetime64[s]").astype("S19")
    matrix = np.concatenate(
        [text.view(np.uint8).reshape(len(text), 19),
         np.broadcast_to(np.frombuffer(b"+00:00", np.uint8), (len(text), 6))], axis=1,
    )  # fmt: skip
    return np.ascontiguousarray(matrix).view("S25").ravel()


def _dates(cal: _Calendar, day: np.ndarray) -> np.ndarray:
    """ISO dates of days relative to the period start."""
    return (cal.start + np.asarray(day, dtype=np.int64)).astype("datetime64[D]").astype("S10")


def _labels(values: Sequence[str]) -> np.ndarray:
    return np.array([v.encode() for v in values])


def _csv_field(text: str) -> str:
    """A field as the csv module would write it: quoted only when it must be."""
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _pick(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index drawn from one cumulative distribution for each uniform u."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


def _pick_rows(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Index drawn from each row's own cumulative distribution."""
    drawn: np.ndarray = np.minimum((u[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1)
    return drawn


def _cdf_rows(probs: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    rows = np.asarray(probs, dtype=float)
    cdf = np.cumsum(rows / rows.sum(axis=1, keepdims=True), axis=1)
    cdf[:, -1] = 1.0
    return cdf


# ================================================================================================
# Tables built once at import
# ================================================================================================

_GEO = _geo()
_POOLS = _name_pools()
_ORDER_HOUR_CDF = (_cdf(HOUR_ONLINE), _cdf(HOUR_STORE), _cdf(HOUR_ONLINE), _cdf(HOUR_OFFICE))
_COMPLEMENTS = _complement_cdf()
_SUBJECT_POOL, _SUBJECT_START, _SUBJECT_STOP = _subject_pool()
_TYPE_CHANNEL_CDF = _cdf_rows(_TYPE_CHANNEL_P)
