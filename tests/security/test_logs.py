"""Personal data and keys never reach the logs.

Every logger at DEBUG (the root, so the app's, the store's, httpx's and the libraries' records
all come in) while the API serves 360 views, searches, filters, upserts of customers with names,
emails and phones, refused requests (no key, bad keys, malformed variables quoting the values,
oversized and malformed bodies), and, in production, an unexpected error (a stored interaction
whose type the API does not know). And the loader's log and console output while it loads,
rejects and merges customers. Each record is checked as formatted (message, arguments,
traceback)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_graph.api.app import create_app
from crm_graph.api.auth.keys import create_key
from crm_graph.api.auth.principal import Role
from crm_graph.api.cli import main
from crm_graph.graph.settings import StoreSettings
from crm_graph.graph.store import GraphStore
from crm_graph.loaders.load import load_folder
from tests.conftest import Api
from tests.helpers import broad_partner_scopes, secret_of, write_csv

PEOPLE = [
    {"id": "p-1", "name": "Zebedee Quackenbush", "email": "zebedee.quackenbush@example.org",
     "phone": "+44 20 7946 0917", "e164": "+442079460917", "city": "Llanfair"},
    {"id": "p-2", "name": "Philippa Oyelaran-Brightwater", "email": "p.oyelaran@brightwater.test",
     "phone": "+1 212 555 0188", "e164": "+12125550188", "city": "Tromsø"},
]  # fmt: skip


def personal_data(people: Iterable[dict[str, str]]) -> list[str]:
    """Every piece of a person that must not be logged: names and their words, emails and their
    local parts, phones as given, in E.164 and as bare digits."""
    found = []
    for person in people:
        found += [person["name"], *person["name"].split(), person["email"],
                  person["email"].split("@")[0], person["phone"], person["e164"],
                  person["e164"].lstrip("+")]  # fmt: skip
    return [text for text in found if len(text) >= 5]


def _formatted(record: logging.LogRecord) -> str:
    text = logging.Formatter("%(name)s %(levelname)s %(message)s").format(record)
    return f"{text} {record.args!r} {record.exc_text or ''} {record.stack_info or ''}"


def assert_not_logged(
    records: list[logging.LogRecord], secrets: Iterable[str], console: str = ""
) -> None:
    lines = [_formatted(record) for record in records] + [console]
    for secret in secrets:
        leaked = [line[:300] for line in lines if secret.lower() in line.lower()]
        assert not leaked, (secret, leaked)


UPSERT = """mutation($input: [CustomerInput!]!) { upsertCustomers(input: $input) { __typename
  ... on UpsertCustomersSuccess { customers { id name email phone } merges { rule } }
  ... on UpsertCustomersError { code field message } } }"""
VIEW = """query($id: ID!) { customer(id: $id) { id name email phone city attributes
  interactions { nodes { type subject } } socialTies { nodes { customer { name email } } } } }"""


async def _requests(store: GraphStore, admin: Api, analyst: Api, partner: Api) -> None:
    """What the API is asked, with personal data in arguments, answers and errors."""
    given = [
        {"id": p["id"], "name": p["name"], "email": p["email"], "phone": p["phone"],
         "city": p["city"], "attributes": {"nickname": p["name"]}}
        for p in PEOPLE
    ]  # fmt: skip
    assert (await admin.data(UPSERT, input=given))["upsertCustomers"]["customers"]
    # the same people again under other ids (identity resolution matches them by email)
    again = [{**g, "id": g["id"] + "-crm", "sourceSystem": "crm"} for g in given]
    assert (await admin.data(UPSERT, input=again))["upsertCustomers"]["customers"]
    link = 'mutation { linkCustomers(input: {sourceId: "p-1", targetId: "p-2"}) { __typename } }'
    await admin.data(link)
    for person in PEOPLE:
        for api in (admin, analyst, partner):
            await api.data(VIEW, id=person["id"])
        await analyst.data("query($t: String!) { searchCustomers(text: $t) { nodes { email } } }",
                           t=person["email"])  # fmt: skip
        await partner.data("query($t: String!) { searchCustomers(text: $t) { nodes { name } } }",
                           t=person["name"])  # fmt: skip
        where = {"email": {"eq": person["email"]}, "phone": {"contains": person["e164"]}}
        filtered = "query($w: CustomerFilter) { customers(where: $w) { nodes { id } } }"
        await analyst.data(filtered, w=where)
        await partner.errors(filtered, w=where)  # FORBIDDEN
        # refused by the mutation: the message quotes the value back, to the caller only
        bad = [{"id": "p-9", "name": person["name"], "email": person["name"]}]
        assert (await admin.data(UPSERT, input=bad))["upsertCustomers"]["code"] == "INVALID"
        # refused by GraphQL: the error quotes the variables, to the caller only
        await admin.errors(UPSERT, input=[{"name": person["name"], "email": person["email"]}])
        await admin.errors(filtered, w={"email": {"eq": [person["email"]]}})
        # refused before GraphQL
        await admin.post(VIEW, {"id": person["email"]}, key="crm_" + person["e164"])
        body = {"query": VIEW, "variables": {"id": person["email"] * 5000}}
        assert (await admin.client.post("/graphql", json=body)).status_code == 413
        await admin.client.post("/graphql", content=f'{{"query": "{person["name"]}"',
                                headers={"Authorization": f"Bearer {admin.key}"})  # fmt: skip


async def test_serving_logs_no_personal_data_and_no_key(
    shop: None, store: GraphStore, api_for: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # given every logger at DEBUG, and clients of every role
    caplog.set_level(logging.DEBUG)
    admin, analyst = [await api_for(role) for role in (Role.ADMIN, Role.ANALYST)]
    partner = await api_for(Role.PARTNER, scopes=broad_partner_scopes())
    # when the API serves requests full of personal data
    await _requests(store, admin, analyst, partner)
    # then the requests were logged (one line each, by the access log) ...
    lines = [r for r in caplog.records if r.name == "crm_graph.access"]
    assert len(lines) >= 25
    # ... and no record holds a name, an email, a phone or a key
    keys = [api.key for api in (admin, analyst, partner) if api.key]
    secrets = [*personal_data(PEOPLE), *keys, *(secret_of(key) for key in keys)]
    assert_not_logged(caplog.records, secrets)


async def test_an_unexpected_error_in_production_is_logged_without_personal_data(
    shop: None, store: GraphStore, caplog: pytest.LogCaptureFixture
) -> None:
    # given, in production, a customer whose stored interaction has a type the API does not
    # know (written by hand, as a faulty import could), about a person
    person = PEOPLE[0]
    await store.write(
        "MATCH (c:Customer {id: 'c00'}) SET c.name = $name, c.email = $email, c.phone = $phone "
        "CREATE (c)-[:HAD]->(:Interaction {id: 'i-odd', type: 'carrier pigeon', at: 0, "
        "subject: $subject})",
        {"name": person["name"], "email": person["email"], "phone": person["e164"],
         "subject": f"Call {person['name']} back on {person['phone']}"},
    )  # fmt: skip
    app = create_app(StoreSettings(), store=store, production=True, rate_limiter=None)
    _, key = await create_key(store, Role.ANALYST, "prod")
    caplog.set_level(logging.DEBUG)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # when the customer's 360 view is asked for
        response = await client.post(
            "/graphql",
            json={"query": VIEW, "variables": {"id": "c00"}},
            headers={"Authorization": f"Bearer {key}", "X-Request-ID": "req-odd"},
        )
    # then the caller gets a masked error with a code ...
    [error] = response.json()["errors"]
    assert error["message"] == "Unexpected error."
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    # ... the error is logged with the request id and what went wrong ...
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "req-odd" in logged.getMessage() and "carrier pigeon" in _formatted(logged)
    # ... and nothing logged holds the person or the key
    assert_not_logged(caplog.records, [*personal_data([person]), key])


def _contract_folder(folder: Path) -> Path:
    """Customers with personal data: good rows, a duplicate by email under another id (merged),
    rows with a malformed email and phone (rejected or dropped), orders and ties."""
    people = [{"customer_id": p["id"], "name": p["name"], "email": p["email"],
               "phone": p["phone"], "city": p["city"]} for p in PEOPLE]  # fmt: skip
    write_csv(folder / "customers.csv", [
        *people,
        {**people[0], "customer_id": "dup-1", "source_system": "shop"},
        {"customer_id": "bad-1", "name": PEOPLE[1]["name"], "email": PEOPLE[1]["name"],
         "phone": "call " + PEOPLE[1]["phone"] + " after six"},
        {"customer_id": "", "name": PEOPLE[0]["name"], "email": PEOPLE[0]["email"]},
    ])  # fmt: skip
    write_csv(folder / "transactions.csv", [
        {"transaction_id": "t-1", "customer_id": "p-1", "timestamp": "2024-01-01", "amount": "9"},
        {"transaction_id": "t-2", "customer_id": PEOPLE[1]["email"], "timestamp": "2024-01-01"},
    ])  # fmt: skip
    write_csv(folder / "social_ties.csv", [
        {"source_customer_id": "p-1", "target_customer_id": "p-2"},
        {"source_customer_id": "p-1", "target_customer_id": PEOPLE[0]["phone"]},
    ])  # fmt: skip
    return folder


async def test_loading_logs_and_prints_no_personal_data(
    store: GraphStore, tmp_path: Path, caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # given a folder of customers with personal data, some of them rejected or merged
    folder = _contract_folder(tmp_path / "contract")
    caplog.set_level(logging.DEBUG)
    # when it is loaded with progress bars on
    report = await load_folder(store, folder, progress=True)
    # then rows were loaded, rejected and merged (their values go to the rejects file only) ...
    assert report.rows_rejected >= 3 and report.merges
    assert PEOPLE[1]["name"] in report.rejects_path.read_text(encoding="utf-8")
    # ... and neither the log nor the console holds a name, an email or a phone
    out, err = capfd.readouterr()
    assert "customers.csv" in out + err  # the bars were shown
    assert_not_logged(caplog.records, personal_data(PEOPLE), console=out + err)


def test_the_load_command_prints_no_personal_data(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    # given the same folder, loaded by `crm-graph load` into its own embedded store
    folder = _contract_folder(tmp_path / "contract")
    caplog.set_level(logging.DEBUG)
    status = main(["--data-dir", str(tmp_path / "data"), "load", str(folder)])
    # then it reports what it did, and nothing printed or logged holds personal data
    out, err = capsys.readouterr()
    assert status == 0 and "rejected rows" in out
    assert_not_logged(caplog.records, personal_data(PEOPLE), console=out + err)
