"""The toolbox HTTP API against its ASGI app: exact values, plausible values, documented errors."""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import string
import subprocess
import sys
import time

import httpx
import pytest

from ste_mcp.toolbox import start_toolbox, wolfram
from ste_mcp.toolbox.api import catalog
from ste_mcp.toolbox.server import ENDPOINTS
from tests.fixtures.toolbox import words_to_int


def path(name: str) -> str:
    return next(e.path for e in ENDPOINTS if e.name == name)


def get(client, tool: str, /, **params):
    return client.get(path(tool), params=params)


# ---------------------------------------------------------------- OpenAPI


def test_openapi_matches_ste50_tools_json(toolbox_http, ste50_dir):
    reference = {t["mcp_name"]: t for t in json.loads((ste50_dir / "tools.json").read_text())}
    doc = toolbox_http.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"][0]["url"].startswith("http")
    operations = [op["get"] for op in doc["paths"].values()]
    assert sorted(op["operationId"] for op in operations) == sorted(catalog())
    assert len(catalog()) == 13
    for op in operations:
        tool = reference[op["operationId"]]
        assert op["description"] == tool["description"]
        properties = tool["parameters"].get("properties", {})
        assert [p["name"] for p in op["parameters"]] == list(properties)
        for p in op["parameters"]:
            rebuilt = dict(p["schema"], **({"description": p["description"]} if "description" in p else {}))
            assert rebuilt == properties[p["name"]]
            assert p["in"] == "query"
            assert p["required"] == (p["name"] in tool["parameters"].get("required", []))


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("date", "days", "expected"),
    [("2022-10-14", 90, "2023-01-12"), ("2022-01-01", -20, "2021-12-12"), ("2024-02-29", -365, "2023-03-01")],
)
def test_add_date(toolbox_http, date, days, expected):
    response = get(toolbox_http, "add_date", date=date, days=days)
    assert response.status_code == 200 and response.json() == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date": "14/10/2022", "days": 1}, "date"),
        ({"date": "2022-02-30", "days": 1}, "date"),
        ({"date": "2022-10-14", "days": "ninety"}, "days"),
        ({"date": "2022-10-14", "days": 10**7}, "days"),
        ({"days": 3}, "date"),
    ],
)
def test_add_date_errors_name_the_field(toolbox_http, params, field):
    response = get(toolbox_http, "add_date", **params)
    assert response.status_code == 422
    assert response.json()["field"] == field and f"'{field}'" in response.json()["error"]


def test_today(toolbox_http):
    before = dt.date.today().isoformat()
    today = get(toolbox_http, "get_today_date").json()
    assert before <= today <= dt.date.today().isoformat()


# ---------------------------------------------------------------- numbers in words


def test_numbers_translator(toolbox_http):
    text = get(toolbox_http, "Numbers_Translator__Numbers_Translator", text="999999").json()["text"]
    assert text == "Nine hundred ninety-nine thousand nine hundred ninety-nine"
    # the example of the API's own description, and its default
    example = get(toolbox_http, "Numbers_Translator__Numbers_Translator").json()["text"]
    assert example == (
        "Twenty-three quadrillion eight hundred seventy-nine trillion nine hundred eight billion seven "
        "hundred nine million eight hundred seventeen thousand eight hundred thirty-four"
    )
    big = "987654321012345678901234567890123456789"
    assert words_to_int(
        get(toolbox_http, "Numbers_Translator__Numbers_Translator", text=big).json()["text"]
    ) == int(big)
    bad = get(toolbox_http, "Numbers_Translator__Numbers_Translator", text="12abc")
    assert bad.status_code == 422 and bad.json()["field"] == "text"


@pytest.mark.parametrize(
    ("tool", "moneda", "monto", "expected"),
    [
        ("Espanol", "PESOS", "1000", "MIL PESOS 00/100 M.N."),
        ("Espanol", "EUROS", "1234.56", "MIL DOSCIENTOS TREINTA Y CUATRO EUROS 56/100"),
        ("Espanol", "EUROS", "1000000", "UN MILLÓN DE EUROS 00/100"),
        ("Espanol", "PESOS", "21", "VEINTIÚN PESOS 00/100 M.N."),
        ("Ingles", "DOLARES", "1500", "ONE THOUSAND FIVE HUNDRED DOLLARS 00/100"),
        ("Ingles", "PESOS", "2500.5", "TWO THOUSAND FIVE HUNDRED PESOS 50/100 M.N."),
    ],
)
def test_numbers_to_letters(toolbox_http, tool, moneda, monto, expected):
    name = f"NumbersToLetters__Convertir_cantidad_a_letra_Moneda_MXN_{tool}"
    response = get(toolbox_http, name, moneda=moneda, monto=monto)
    assert response.status_code == 200 and response.json() == {"value": expected}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"moneda": "PESOS", "monto": "mil"}, "monto"),
        ({"moneda": "PESOS", "monto": "-5"}, "monto"),
        ({"moneda": "42", "monto": "5"}, "moneda"),
    ],
)
def test_numbers_to_letters_errors(toolbox_http, params, field):
    response = get(toolbox_http, "NumbersToLetters__Convertir_cantidad_a_letra_Moneda_MXN_Espanol", **params)
    assert response.status_code == 422 and response.json()["field"] == field


# ---------------------------------------------------------------- passwords and tokens


def test_passwords(toolbox_http):
    base = get(toolbox_http, "Password_Generator_API__Base").json()["password"]
    default = get(toolbox_http, "Password_Generator_API__Password_of_length_50").json()["password"]
    sized = get(toolbox_http, "Password_Generator_API__Password_of_length_50", length="65").json()["password"]
    assert len(base) == 16 and len(default) == 50 and len(sized) == 65
    for password in (base, default, sized):
        assert any(c in string.ascii_lowercase for c in password)
        assert any(c in string.ascii_uppercase for c in password)
        assert any(c in string.digits for c in password)
    assert base != get(toolbox_http, "Password_Generator_API__Base").json()["password"]
    for bad in ("0", "abc", "100000"):
        response = get(toolbox_http, "Password_Generator_API__Password_of_length_50", length=bad)
        assert response.status_code == 422 and response.json()["field"] == "length"


def test_token(toolbox_http):
    first, second = (get(toolbox_http, "Token_API__generate").json() for _ in range(2))
    assert len(first["token"]) >= 32 and first["token"] != second["token"]
    assert first["expires_in"] == 300


# ---------------------------------------------------------------- places and time zones


def test_places(toolbox_http):
    name = "Places__Geographic_coordinates_by_placename"
    sydney = get(toolbox_http, name, name="Sydney", lang="en", country="AU").json()
    assert sydney["country"] == "AU" and sydney["timezone"] == "Australia/Sydney"
    assert abs(sydney["lat"] + 33.87) < 0.2 and abs(sydney["lon"] - 151.21) < 0.2
    assert sydney["population"] > 4_000_000
    nova_scotia = get(toolbox_http, name, name="Sydney", lang="en", country="CA").json()
    assert nova_scotia["country"] == "CA" and abs(nova_scotia["lat"] - 46.1) < 0.3
    london = get(toolbox_http, name, name="london", lang="en").json()  # most populous London
    assert london["country"] == "GB"
    assert get(toolbox_http, name, name="Londn", lang="en").json()["name"] == "London"  # most similar
    assert get(toolbox_http, name, name="São Paulo", lang="en").json()["country"] == "BR"


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"name": "Qwxzyvillezz", "lang": "en"}, 404, None),
        ({"name": "Sydney", "lang": "en", "country": "Australia"}, 422, "country"),
        ({"name": "Sydney", "lang": "fr"}, 422, "lang"),
        ({"name": "Sydney"}, 422, "lang"),
    ],
)
def test_places_errors(toolbox_http, params, status, field):
    response = get(toolbox_http, "Places__Geographic_coordinates_by_placename", **params)
    assert response.status_code == status
    assert response.json().get("field") == field and response.json()["error"]


def test_time_zone(toolbox_http):
    name = "Stadia_Maps_Time_Zone_API__TZ_Lookup_by_Location"
    may_2020 = 1589932800
    amsterdam = get(toolbox_http, name, lat=52.370216, lng=4.895168, timestamp=may_2020).json()
    assert amsterdam == {"tz_id": "Europe/Amsterdam", "base_utc_offset": 3600, "dst_offset": 3600}
    sydney = get(toolbox_http, name, lat=-33.8688, lng=151.2093, timestamp=may_2020).json()
    assert sydney == {"tz_id": "Australia/Sydney", "base_utc_offset": 36000, "dst_offset": 0}
    january = get(toolbox_http, name, lat=-33.8688, lng=151.2093, timestamp=1704067200).json()
    assert january["dst_offset"] == 3600  # southern summer
    mumbai = get(toolbox_http, name, lat=19.076, lng=72.8777).json()  # now
    assert mumbai == {"tz_id": "Asia/Kolkata", "base_utc_offset": 19800, "dst_offset": 0}
    for params, field in (
        ({"lat": 95, "lng": 0}, "lat"),
        ({"lat": 0, "lng": "east"}, "lng"),
        ({"lng": 3}, "lat"),
    ):
        response = get(toolbox_http, name, **params)
        assert response.status_code == 422 and response.json()["field"] == field


# ---------------------------------------------------------------- math facts, Wolfram|Alpha, cars


def test_math_fact(toolbox_http):
    name = "Numbers__Get_math_fact"
    fact = get(toolbox_http, name, number="1729").json()  # defaults: json, fragment
    assert fact["number"] == 1729 and fact["found"] is True and fact["type"] == "math"
    assert fact["text"].startswith(
        "the smallest number expressible as the sum of two positive cubes in 2 different ways"
    )
    sentence = get(toolbox_http, name, number="1000", fragment="false", json="false")
    assert sentence.headers["content-type"].startswith("text/plain")
    assert sentence.text == "1000 is the cube of 10 (10³)."
    assert "perfect number" in get(toolbox_http, name, number="28").json()["text"]
    assert get(toolbox_http, name, number="97").json()["text"] == "the 25th prime number"
    assert (
        get(toolbox_http, name, number="144", fragment="false").json()["text"]
        == "144 is the 12th Fibonacci number."
    )
    product = get(toolbox_http, name, number="456").json()["text"]
    assert product == "a number with 16 divisors, the product 2^3 × 3 × 19"
    for bad, field in (({"number": "12.5"}, "number"), ({"number": "7", "json": "maybe"}, "json")):
        response = get(toolbox_http, name, **bad)
        assert response.status_code == 422 and response.json()["field"] == field


def result_pod(answer: dict) -> str:
    pods = answer["queryresult"]["pods"]
    return next(p for p in pods if p.get("primary"))["subpods"][0]["plaintext"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("square root of 16", "4"),
        ("What is 15% of 200?", "30"),
        ("capital of France", "Paris"),
        ("atomic number of oxygen", "8"),
        ("solve x^2 - 4 = 0", "x = -2, x = 2"),
        ("derivative of x^2", "2*x"),
        ("100 km in miles", "62.1371 mi"),
        ("value of Avogadro's number", "6.02214076e+23"),
        ("2^10000", "1.99506311688076e+3010"),
        ("molar mass of C6H12O6", "180.156 g/mol"),
        ("population of France", "66,987,244 people"),
    ],
)
def test_wolfram_computes(toolbox_http, query, expected):
    answer = get(toolbox_http, "getWolframAlphaResults", input=query).json()
    assert answer["queryresult"]["success"] is True
    assert result_pod(answer) == expected


@pytest.mark.parametrize(
    "query",
    [
        "birth date of Albert Einstein",
        "__import__('os').system('id')",
        "9^9^9^9",
        "9**9**9**9",
        "10^10^10",
        "x.__class__",
        "molar mass of H2O)",
        "capital of Atlantis",
    ],
)
def test_wolfram_no_result(toolbox_http, query):
    response = get(toolbox_http, "getWolframAlphaResults", input=query)
    assert response.status_code == 200
    assert response.json()["queryresult"] == {
        "success": False,
        "error": False,
        "numpods": 0,
        "inputstring": query,
    }


@pytest.fixture
def math_workers(monkeypatch) -> list:
    """Fresh math workers, each recorded when it starts."""
    started = []
    original = wolfram.workers._Worker.__init__

    def record(worker) -> None:
        original(worker)
        started.append(worker)

    monkeypatch.setattr(wolfram.workers._Worker, "__init__", record)
    wolfram.workers.pool.close()
    yield started
    wolfram.workers.pool.close()


def test_wolfram_reuses_a_warm_math_worker(toolbox_http, math_workers):
    for query, expected in (
        ("2+2", "4"),
        ("derivative of x^3", "3*x^2"),
        ("factor x^2 - 1", "(x - 1)*(x + 1)"),
    ):
        answer = get(toolbox_http, "getWolframAlphaResults", input=query).json()
        assert result_pod(answer) == expected
    assert len(math_workers) == 1 and math_workers[0].alive()


def test_wolfram_stops_a_runaway_computation(toolbox_http, math_workers, monkeypatch):
    monkeypatch.setattr(wolfram, "MATH_TIME_LIMIT_S", 1.0)
    assert result_pod(get(toolbox_http, "getWolframAlphaResults", input="2+2").json()) == "4"  # warm
    start = time.monotonic()
    response = get(toolbox_http, "getWolframAlphaResults", input="expand (x+y+z+a+b+c+t)^30")
    assert time.monotonic() - start < 60  # sympy alone takes minutes (and gigabytes) for this one
    assert response.status_code == 422
    assert response.json() == {
        "error": "parameter 'input' could not be computed within the time limit of 1 s; try a simpler query",
        "field": "input",
    }
    runaway = math_workers[0]
    assert runaway.process.poll() == -signal.SIGKILL  # the computation was stopped, not left running
    answer = get(toolbox_http, "getWolframAlphaResults", input="square root of 16").json()
    assert result_pod(answer) == "4"  # a fresh worker
    assert len(math_workers) == 2


def test_wolfram_requires_input(toolbox_http):
    for params in ({}, {"input": "   "}):
        response = get(toolbox_http, "getWolframAlphaResults", **params)
        assert response.status_code == 422 and response.json()["field"] == "input"


def test_car_makes(toolbox_http):
    makes = get(toolbox_http, "Car_database__Makes").json()
    assert len(makes) > 50 and len(set(makes)) == len(makes)
    assert {"Toyota", "Volkswagen", "Ford", "BMW"} <= set(makes)
    assert makes == sorted(makes, key=str.casefold)


# ---------------------------------------------------------------- serving


def test_start_toolbox_serves_and_stops():
    with start_toolbox() as toolbox:
        assert toolbox.url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{toolbox.url}/dates/add", params={"date": "2022-10-14", "days": 90})
        assert response.json() == "2023-01-12"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{toolbox.url}/openapi.json")


def test_cli_serves_on_the_given_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "ste_mcp", "toolbox", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip().endswith(f"http://127.0.0.1:{port}/openapi.json")
        doc = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=10).json()
        assert len(doc["paths"]) == 13
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_cli_refuses_a_bad_port():
    done = subprocess.run(
        [sys.executable, "-m", "ste_mcp", "toolbox", "--port", "70000"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "port must be 0-65535" in done.stderr
