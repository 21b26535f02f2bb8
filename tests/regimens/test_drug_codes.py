"""The drug codes of RULES §7.2 (regimens/drug_codes.py), served as `drug_codes` on protocol phases, doses (the
worklist, a dose, a regimen's schedule) and the schedule preview, for integrators mapping Cobalt's doses to an EHR.

The codes below are written out from RULES §7.2 (RULES.md, retold in docs/clinical-reference.md "Drug codes"), so a
changed code fails here. A row that fails means the shipped data no longer says what RULES says: change the data (or
get RULES changed), never the row without a RULES quote for it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from patients.models import Clinic
from regimens import drug_codes, services
from regimens.models import Drug, Protocol, Regimen, Route, ScheduledDose
from tests.factories import PatientFactory, RegimenFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 1, 20, 9, 0, tzinfo=UTC)
TODAY = date(2027, 1, 20)

# RULES §7.2 "Cyanocobalamin 1000 mcg/mL injection (IM/SC)": "RxCUI 309594 (SCD; ...) [V]", "B03BA01 cyanocobalamin
# [V, openFDA substance/WHO-ATC]", "Substance 419382002 Cyanocobalamin (substance) [S, FHIR concept map to B03BA01]",
# "UNII P6YC3EG204 [V]".
CYANO_INJECTION = {
    "product": "Cyanocobalamin 1000 mcg/mL injection (IM/SC)",
    "rxnorm": "309594",
    "atc": "B03BA01",
    "snomed": "419382002",
    "unii": "P6YC3EG204",
    "evidence": {"rxnorm": "V", "atc": "V", "snomed": "S", "unii": "V"},
    "rule": "§7.2",
}
# RULES §7.2 "Hydroxocobalamin 1000 mcg/mL injection (IM) (US, Actavis NDC 0591-2888)": "RxCUI 317106 [V, openFDA
# NDC]", "B03BA03 hydroxocobalamin [V, openFDA substance Q40X8H422O]", "Substance 409258004 Hydroxocobalamin
# (substance). Caution: ... replaced by 1217427007 Aquacobalamin (substance) ... [S]", "UNII Q40X8H422O
# (hydroxocobalamin); S535M27N3Q is listed for the acetate product [V]".
HYDROXO_INJECTION = {
    "product": "Hydroxocobalamin 1000 mcg/mL injection (IM) (US, Actavis NDC 0591-2888)",
    "rxnorm": "317106",
    "atc": "B03BA03",
    "snomed": "409258004",
    "unii": "Q40X8H422O",
    "evidence": {"rxnorm": "V", "atc": "V", "snomed": "S", "unii": "V"},
    "rule": "§7.2",
}
# RULES §7.2 "Oral cyanocobalamin tablets (1000 mcg etc.)": RxNorm "Look up in RxNav. Many US 1000 mcg tablets are
# dietary supplements without NDC/SCD [U]" (no RxCUI), "B03BA01", "419382002 (substance)", Other "UK: POM/P/GSL
# products differ; use dm+d in the UK [U]" (no UNII). The untagged ATC and SNOMED cells are the injection row's
# substance codes, with its tags.
CYANO_ORAL = {
    "product": "Oral cyanocobalamin tablets (1000 mcg etc.)",
    "rxnorm": None,
    "atc": "B03BA01",
    "snomed": "419382002",
    "unii": None,
    "evidence": {"rxnorm": None, "atc": "V", "snomed": "S", "unii": None},
    "rule": "§7.2",
}

# The cautions RULES §7.2 attaches to each product, which its `note` must carry (and §9 item 3 on every one).
CAUTIONS = {
    CYANO_INJECTION["product"]: ("RxNav", "§9 item 3"),
    HYDROXO_INJECTION["product"]: (
        "1217427007 Aquacobalamin", "S535M27N3Q", "Cyanokit", "V03AB33", "excluded from B12 regimens", "RxNav",
        "§9 item 3",
    ),
    CYANO_ORAL["product"]: ("look it up in RxNav", "dietary supplements", "dm+d", "§9 item 3"),
}  # fmt: skip

# The phases of each built-in protocol, in order (RULES "Protocol codes": drug and route of each phase).
PROTOCOL_PHASES: dict[str, tuple[dict[str, Any], ...]] = {
    "hydroxo-uk-standard": (HYDROXO_INJECTION, HYDROXO_INJECTION),  # hydroxocobalamin IM
    "hydroxo-uk-neuro": (HYDROXO_INJECTION, HYDROXO_INJECTION),  # hydroxocobalamin IM
    "cyano-us-label": (CYANO_INJECTION,) * 4,  # cyanocobalamin 100 mcg IM, four phases
    "hydroxo-us-label": (HYDROXO_INJECTION, HYDROXO_INJECTION),  # hydroxocobalamin 30 then 100 mcg IM
    "cyano-1000-us": (CYANO_INJECTION,) * 3,  # cyanocobalamin 1000 mcg IM
    "cyano-1000-weekly": (CYANO_INJECTION,) * 2,  # cyanocobalamin 1000 mcg IM
    "oral-high-dose": (CYANO_ORAL,),  # cyanocobalamin 1000 mcg PO
    "ileal-resection": (CYANO_INJECTION,),  # cyanocobalamin 1000 mcg IM
    "bariatric-oral": (CYANO_ORAL,),  # cyanocobalamin 1000 mcg PO
    "diet-oral": (CYANO_ORAL,),  # cyanocobalamin 50-150 mcg PO
}

# RULES §7.3 (and §1.4): the routes each product is given by. Any other drug and route has no codes.
BY_DRUG_AND_ROUTE = {
    ("cyanocobalamin", "IM"): CYANO_INJECTION,
    ("cyanocobalamin", "SC"): CYANO_INJECTION,
    ("cyanocobalamin", "deep SC"): CYANO_INJECTION,
    ("cyanocobalamin", "PO"): CYANO_ORAL,
    ("cyanocobalamin", "SL"): CYANO_ORAL,  # §7.3 "Cyanocobalamin oral: PO (sublingual also used)"
    ("hydroxocobalamin", "IM"): HYDROXO_INJECTION,  # §7.3 "IM only"
}

DRUG_CODES_KEYS = {"product", "rxnorm", "atc", "snomed", "unii", "evidence", "note", "rule"}


def codes_of(served: dict[str, Any] | None) -> dict[str, Any] | None:
    """A served `drug_codes` without its note (checked on its own, CAUTIONS), to compare with the rows above."""
    if served is None:
        return None
    assert set(served) == DRUG_CODES_KEYS
    return {key: value for key, value in served.items() if key != "note"}


def assert_carries_its_cautions(served: dict[str, Any]) -> None:
    missing = [words for words in CAUTIONS[served["product"]] if words not in served["note"]]
    assert not missing, f"{served['product']}: the note lacks {missing}: {served['note']}"


def add(regimen: Regimen, sequence: int, drug: str, route: str, **fields: Any) -> ScheduledDose:
    values: dict[str, Any] = {
        "regimen": regimen, "patient": regimen.patient, "phase_index": 0, "phase": "loading", "sequence": sequence,
        "due_date": TODAY, "drug": drug, "dose_mcg": 1000, "route": route, **fields,
    }  # fmt: skip
    return ScheduledDose.objects.create(**values)


# --- The data -------------------------------------------------------------------------------


@pytest.mark.parametrize("drug", Drug.values)
@pytest.mark.parametrize("route", Route.values)
def test_each_drug_and_route_has_the_codes_of_its_rules_product_or_none(drug: str, route: str) -> None:
    found = drug_codes.drug_codes_json(drug, route)

    assert codes_of(found) == BY_DRUG_AND_ROUTE.get((drug, route))
    if found is not None:
        assert_carries_its_cautions(found)


def test_the_data_names_only_drugs_and_routes_cobalt_knows() -> None:
    assert {drug_codes.CYANOCOBALAMIN, drug_codes.HYDROXOCOBALAMIN} == set(Drug.values)
    for product in drug_codes.PRODUCTS:
        assert product.drug in Drug.values
        assert set(product.routes) <= set(Route.values), product.product
    routes = [(product.drug, route) for product in drug_codes.PRODUCTS for route in product.routes]
    assert len(routes) == len(set(routes)), "a drug and route belongs to one product"


def test_no_hydroxocobalamin_route_but_im_maps_to_a_product_nor_to_cyanokit() -> None:
    # RULES §7.3 "IM only"; §7.2: Cyanokit (hydroxocobalamin 5 g IV, V03AB33) is excluded from B12 regimens.
    for route in set(Route.values) - {"IM"}:
        assert drug_codes.drug_codes("hydroxocobalamin", route) is None, route
    assert all(product.atc != "V03AB33" for product in drug_codes.PRODUCTS)
    assert drug_codes.drug_codes("cyanocobalamin", "IV") is None  # §7.3 "not IV"


def test_each_call_answers_a_new_object() -> None:
    first = drug_codes.drug_codes_json("hydroxocobalamin", "IM")
    assert first is not None
    first["evidence"]["rxnorm"] = "changed"

    again = drug_codes.drug_codes_json("hydroxocobalamin", "IM")
    assert again is not None and again["evidence"]["rxnorm"] == "V"


# --- Protocol phases --------------------------------------------------------------------------


@pytest.fixture
def served(api: APIClient) -> dict[str, dict[str, Any]]:
    response = api.get("/api/protocols/", {"is_builtin": "true", "page_size": 500})
    assert response.status_code == 200, response.content
    return {protocol["code"]: protocol for protocol in response.json()["results"]}


@pytest.mark.parametrize("code", sorted(PROTOCOL_PHASES))
def test_each_builtin_protocol_phase_carries_the_rules_codes_of_its_drug(
    code: str, served: dict[str, dict[str, Any]]
) -> None:
    phases = served[code]["phases"]

    assert [codes_of(phase["drug_codes"]) for phase in phases] == list(PROTOCOL_PHASES[code])
    for phase in phases:
        assert_carries_its_cautions(phase["drug_codes"])


def test_the_protocol_codes_above_cover_every_builtin_protocol(served: dict[str, dict[str, Any]]) -> None:
    assert set(PROTOCOL_PHASES) == set(served)


def test_an_oral_phase_carries_no_rxcui_but_rules_note(served: dict[str, dict[str, Any]]) -> None:
    oral = served["oral-high-dose"]["phases"][0]

    assert (oral["drug"], oral["route"]) == ("cyanocobalamin", "PO")
    codes = oral["drug_codes"]
    assert (codes["rxnorm"], codes["evidence"]["rxnorm"], codes["unii"]) == (None, None, None)
    assert "look it up in RxNav" in codes["note"] and "dm+d" in codes["note"]


def test_a_clinics_copy_carries_the_codes_of_the_protocol_it_copies(api: APIClient, copy: Protocol) -> None:
    response = api.get(f"/api/protocols/{copy.code}/")

    assert response.status_code == 200
    assert [codes_of(p["drug_codes"]) for p in response.json()["phases"]] == [HYDROXO_INJECTION] * 2


# --- Doses ----------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_a_dose_in_the_worklist_carries_its_drugs_codes(api: APIClient, clinic: Clinic) -> None:
    hydroxo = services.regimen_start(
        patient=PatientFactory(clinic=clinic), protocol=Protocol.objects.get(code="hydroxo-uk-standard"),
        start_date=TODAY,
    )  # fmt: skip
    cyano = services.regimen_start(
        patient=PatientFactory(clinic=clinic), protocol=Protocol.objects.get(code="cyano-1000-us"), start_date=TODAY
    )
    oral = services.regimen_start(
        patient=PatientFactory(clinic=clinic, deficiency_cause="bariatric_surgery"),
        protocol=Protocol.objects.get(code="bariatric-oral"), start_date=TODAY,
    )  # fmt: skip

    response = api.get(f"/api/doses/?clinic={clinic.pk}&due_from={TODAY}&due_to={TODAY}")

    assert response.status_code == 200
    rows = {row["regimen"]: row for row in response.json()["results"]}
    assert codes_of(rows[hydroxo.pk]["drug_codes"]) == HYDROXO_INJECTION
    assert codes_of(rows[cyano.pk]["drug_codes"]) == CYANO_INJECTION
    assert codes_of(rows[oral.pk]["drug_codes"]) == CYANO_ORAL
    # The same object on the dose, in the regimen's schedule and in the worklist with warnings.
    dose = rows[hydroxo.pk]
    assert api.get(f"/api/doses/{dose['id']}/").json()["drug_codes"] == dose["drug_codes"]
    schedule = api.get(f"/api/regimens/{hydroxo.pk}/").json()["doses"]
    assert {d["id"]: d["drug_codes"] for d in schedule}[dose["id"]] == dose["drug_codes"]
    with_warnings = api.get(f"/api/doses/?clinic={clinic.pk}&due_from={TODAY}&due_to={TODAY}&warnings=true").json()
    assert {d["id"]: d["drug_codes"] for d in with_warnings["results"]}[dose["id"]] == dose["drug_codes"]


@time_machine.travel(NOW, tick=False)
def test_a_dose_by_a_route_rules_names_no_product_for_has_no_codes(api: APIClient, clinic: Clinic) -> None:
    regimen = RegimenFactory(patient=PatientFactory(clinic=clinic))
    off_label = add(regimen, 1, "hydroxocobalamin", "SC")

    response = api.get(f"/api/doses/{off_label.pk}/")

    assert response.status_code == 200
    assert response.json()["drug_codes"] is None
    assert api.get(f"/api/doses/?regimen={regimen.pk}").json()["results"][0]["drug_codes"] is None


@time_machine.travel(NOW, tick=False)
def test_the_codes_follow_the_planned_route_not_the_route_given(api: APIClient, clinic: Clinic) -> None:
    regimen = RegimenFactory(patient=PatientFactory(clinic=clinic))
    given = add(regimen, 1, "cyanocobalamin", "IM", status="given", administered_at=NOW, given_route="deep SC")

    assert codes_of(api.get(f"/api/doses/{given.pk}/").json()["drug_codes"]) == CYANO_INJECTION


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("query", [f"&due_from={TODAY}&due_to={TODAY}", "&overdue=true"])
def test_the_worklist_still_takes_its_pinned_queries_with_every_product(
    api: APIClient, clinic: Clinic, query: str, django_assert_num_queries: Any
) -> None:
    """As tests/regimens/test_dose_rows.py pins them: the user's clinics, the count and the page (and, overdue, the
    time zones on the edge of today). The codes are computed from the row's drug and route, read already."""
    due = date(2027, 1, 19) if "overdue" in query else TODAY
    for n, (drug, route) in enumerate([*BY_DRUG_AND_ROUTE, ("hydroxocobalamin", "IV")]):
        add(RegimenFactory(patient=PatientFactory(clinic=clinic)), n + 1, drug, route, due_date=due)
    url = f"/api/doses/?clinic={clinic.pk}{query}"
    api.get(url)  # the client keeps its user, whose clinics are then read once

    with django_assert_num_queries(3 if "overdue" in query else 2):
        rows = api.get(url).json()["results"]

    assert len(rows) == len(BY_DRUG_AND_ROUTE) + 1
    assert [codes_of(row["drug_codes"]) for row in rows] == [*BY_DRUG_AND_ROUTE.values(), None]


# --- Schedule preview -----------------------------------------------------------------------


def test_a_previewed_dose_carries_its_drugs_codes(api: APIClient) -> None:
    response = api.post("/api/schedule/preview/", {"protocol": "diet-oral", "start_date": "2027-01-04"}, format="json")

    assert response.status_code == 200, response.json()
    doses = response.json()["doses"]
    assert doses and all(codes_of(dose["drug_codes"]) == CYANO_ORAL for dose in doses)


# --- The schema -----------------------------------------------------------------------------


def test_the_schema_documents_drug_codes_as_a_typed_nullable_object(api: APIClient) -> None:
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    components = response.json()["components"]["schemas"]

    for component in ("Dose", "DoseDetail", "ProtocolPhase", "PlannedDose"):
        field = components[component]["properties"]["drug_codes"]
        assert (field["type"], field["nullable"], field["readOnly"]) == ("object", True, True), component
        assert set(field["properties"]) == DRUG_CODES_KEYS, component
        assert field["properties"]["evidence"] == {"$ref": "#/components/schemas/DrugCodeEvidence"}, component
        for code in ("rxnorm", "atc", "snomed", "unii"):
            assert (field["properties"][code]["type"], field["properties"][code]["nullable"]) == ("string", True)
        assert "RULES" in field["description"], component
    # A regimen's schedule and a protocol's phases are lists of those.
    assert components["RegimenDetail"]["properties"]["doses"]["items"] == {"$ref": "#/components/schemas/Dose"}
    assert components["Protocol"]["properties"]["phases"]["items"] == {"$ref": "#/components/schemas/ProtocolPhase"}
    assert set(components["DrugCodeEvidence"]["properties"]) == {"rxnorm", "atc", "snomed", "unii"}
    assert components["DrugCodeEvidenceEnum"]["enum"] == ["V", "S", "U"]
