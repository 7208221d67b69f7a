"""Routes are data: a second route is configuration alone."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from contracts.routes import Route, RouteBook
from contracts.status import CaseStatus, illegal_steps
from devkit import scenario
from devkit.devstack import service_specs
from tests.paths import CENTRAL_ASIA_ROUTES

SECOND = {
    "route_id": "kaz-kgz-tjk",
    "origin_country": "KAZ",
    "destination_country": "TJK",
    "gathering_point": {"name": "Korday gathering point", "country": "KAZ"},
    "reception_point": {"name": "Reception centre, Dushanbe", "country": "TJK"},
    "checkpoints": [
        {
            "checkpoint_id": "kaz-korday-exit",
            "crossing": "Korday",
            "post": "Korday",
            "country": "KAZ",
            "direction": "exit",
        },
        {
            "checkpoint_id": "kgz-ak-tilek-entry",
            "crossing": "Korday",
            "post": "Ak-Tilek",
            "country": "KGZ",
            "direction": "entry",
        },
        {
            "checkpoint_id": "kgz-karamyk-exit",
            "crossing": "Karamyk",
            "post": "Karamyk",
            "country": "KGZ",
            "direction": "exit",
        },
        {
            "checkpoint_id": "tjk-karamyk-entry",
            "crossing": "Karamyk",
            "post": "Karamyk",
            "country": "TJK",
            "direction": "entry",
        },
    ],
}


def test_a_second_route_adds_its_border_posts_and_nothing_else(tmp_path: Path) -> None:
    book = json.loads(CENTRAL_ASIA_ROUTES.read_text())
    book["routes"].append(SECOND)
    routes_file = tmp_path / "routes.json"
    routes_file.write_text(json.dumps(book))

    routes = RouteBook.load(routes_file)
    assert [r.route_id for r in routes.routes] == ["kaz-uzb-tjk", "kaz-kgz-tjk"]
    assert routes.get("kaz-kgz-tjk").transit_countries == ["KGZ", "TJK"]  # type: ignore[union-attr]
    specs = service_specs(routes_file, list(range(9000, 9012)))
    border = {
        s.extra_env["CORRIDOR_CHECKPOINT"]: s.mission
        for s in specs
        if s.module == "services.border_clearance"
    }
    assert border == {
        "kaz-zhibek-zholy-exit": "KAZ",
        "uzb-zhibek-zholy-entry": "UZB",
        "uzb-oybek-exit": "UZB",
        "tjk-oybek-entry": "TJK",
        "kaz-korday-exit": "KAZ",
        "kgz-ak-tilek-entry": "KGZ",
        "kgz-karamyk-exit": "KGZ",
        "tjk-karamyk-entry": "TJK",
    }
    assert [s.name for s in specs][:3] == ["intake", "eligibility", "transport"]


def test_a_route_crosses_out_of_the_origin_and_into_the_destination_in_order() -> None:
    data = json.loads(CENTRAL_ASIA_ROUTES.read_text())["routes"][0]
    Route.model_validate(data)
    swapped = {
        **data,
        "checkpoints": [data["checkpoints"][1], data["checkpoints"][0], *data["checkpoints"][2:]],
    }
    with pytest.raises(ValidationError, match="alternate exit and entry"):
        Route.model_validate(swapped)
    with pytest.raises(ValidationError, match="destination country"):
        Route.model_validate({**data, "checkpoints": data["checkpoints"][:2]})


def test_a_case_journey_follows_its_route() -> None:
    """What the integration tests expect a case's status stream to be, derived from the route."""
    central_asia = RouteBook.load(CENTRAL_ASIA_ROUTES).routes[0]
    assert scenario.journey(central_asia) == [
        CaseStatus.REGISTERED,
        CaseStatus.ELIGIBLE,
        CaseStatus.MANIFESTED,
        CaseStatus.DEPARTED,
        CaseStatus.EXIT_CLEARED,  # Zhibek-Zholy, KAZ
        CaseStatus.ENTRY_CLEARED,  # Gisht-Kuprik, UZB
        CaseStatus.EXIT_CLEARED,  # Oybek, UZB
        CaseStatus.ENTRY_CLEARED,  # Fotehobod, TJK
        CaseStatus.ARRIVED,
    ]
    # Two crossings, four checkpoints: the same shape on the second route.
    assert scenario.journey(Route.model_validate(SECOND)) == scenario.journey(central_asia)
    assert not illegal_steps(scenario.journey(central_asia))
