"""The drug codes of the products Cobalt schedules (RULES §7.2), for integrators mapping doses to an EHR.

Pure: imports nothing from Django and touches no database, like the analyte catalogue (patients/labs/analytes.py,
RULES §7.1). This is the one place the codes live: the API serves them on protocol phases, scheduled doses and the
schedule preview (`drug_codes`, regimens/serializers.py), keyed by a dose's drug and planned route.

Every code is copied from RULES §7.2 with the evidence tag (§0.1) of its cell; where RULES gives no code for a
product the code is None and the entry carries RULES' note instead. Never add a code RULES does not give: RULES §9
item 3 asks the clinical owner to confirm the ingredient-level RxNorm codes and the current SNOMED codes before
go-live.

Which route belongs to which product is RULES §7.3 (and §1.4): hydroxocobalamin IM only; cyanocobalamin injection IM
or deep SC, not IV; cyanocobalamin oral PO (sublingual also used). A drug and route RULES names no product for
(hydroxocobalamin by any route but IM, cyanocobalamin IV or intranasal) has no codes: such a dose is a wrong route
(S-12), and hydroxocobalamin IV is the route of Cyanokit (5 g, ATC V03AB33 [U], cyanide poisoning), which RULES §7.2
excludes from B12 regimens. Mecobalamin (B03BA05) is in no Cobalt protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

Evidence = Literal["V", "S", "U"]
# The evidence tags a code here can carry (RULES §0.1), as choices: the API's DrugCodeEvidenceEnum.
EVIDENCE_TAGS: Final = (
    ("V", "Verified against the primary source or a faithful copy"),
    ("S", "Secondary source"),
    ("U", "Not verified: check before use"),
)

# The RULES section every code here comes from (served as `rule`, as a safety warning names its rule).
RULE: Final = "§7.2"

# The drugs and routes as regimens.models.Drug and Route spell them (tests/regimens/test_drug_codes.py holds them
# equal; this module imports no model).
CYANOCOBALAMIN: Final = "cyanocobalamin"
HYDROXOCOBALAMIN: Final = "hydroxocobalamin"

# RULES §7.2, below the table: "Ingredient-level RxCUIs for cyanocobalamin and hydroxocobalamin were not verified for
# this document. Resolve them via RxNav before release." (and §9 item 3).
INGREDIENT_RXCUI_CAUTION: Final = (
    "The ingredient-level RxCUI was not verified (RULES §7.2): resolve it via RxNav before release; RULES §9 item 3 "
    "asks for the RxNorm and current SNOMED codes to be confirmed before go-live."
)


@dataclass(frozen=True)
class CodeEvidence:
    """The RULES §0.1 evidence tag of each code, as its RULES §7.2 cell gives it; None where there is no code."""

    rxnorm: Evidence | None
    atc: Evidence | None
    snomed: Evidence | None
    unii: Evidence | None


@dataclass(frozen=True)
class DrugCodes:
    """One product row of RULES §7.2, and the routes (RULES §7.3) by which Cobalt gives it."""

    product: str  # the row's "Product" cell
    drug: str
    routes: tuple[str, ...]
    rxnorm: str | None  # RxCUI (SCD level)
    atc: str | None  # WHO ATC
    snomed: str | None  # SNOMED CT *substance* concept, not a product
    unii: str | None  # FDA UNII (substance)
    evidence: CodeEvidence
    note: str
    rule: str = RULE

    def as_json(self) -> dict[str, Any]:
        """The API's `drug_codes` object (regimens.serializers.DrugCodesSerializer documents it)."""
        return {
            "product": self.product,
            "rxnorm": self.rxnorm,
            "atc": self.atc,
            "snomed": self.snomed,
            "unii": self.unii,
            "evidence": {
                "rxnorm": self.evidence.rxnorm,
                "atc": self.evidence.atc,
                "snomed": self.evidence.snomed,
                "unii": self.evidence.unii,
            },
            "note": self.note,
            "rule": self.rule,
        }


# RULES §7.2 row "Cyanocobalamin 1000 mcg/mL injection (IM/SC)": RxCUI 309594 (SCD) [V]; B03BA01 [V, openFDA
# substance/WHO-ATC]; substance 419382002 [S, FHIR concept map to B03BA01]; UNII P6YC3EG204 [V]. Routes: §7.3 "IM or
# deep SC; not IV" (and the row's "IM/SC").
CYANOCOBALAMIN_INJECTION: Final = DrugCodes(
    product="Cyanocobalamin 1000 mcg/mL injection (IM/SC)",
    drug=CYANOCOBALAMIN,
    routes=("IM", "SC", "deep SC"),
    rxnorm="309594",
    atc="B03BA01",
    snomed="419382002",
    unii="P6YC3EG204",
    evidence=CodeEvidence(rxnorm="V", atc="V", snomed="S", unii="V"),
    note=(
        "RxCUI 309594 is the SCD of the 1000 mcg/mL solution (every US 1000 mcg/mL cyanocobalamin vial NDC in "
        "openFDA maps to it), whatever dose is drawn from the vial. SNOMED 419382002 is Cyanocobalamin (substance), "
        "not a product [S, FHIR concept map to B03BA01]. " + INGREDIENT_RXCUI_CAUTION
    ),
)

# RULES §7.2 row "Hydroxocobalamin 1000 mcg/mL injection (IM) (US, Actavis NDC 0591-2888)": RxCUI 317106 [V, openFDA
# NDC]; B03BA03 [V, openFDA substance Q40X8H422O]; substance 409258004 with the Aquacobalamin caution [S]; UNII
# Q40X8H422O, S535M27N3Q for the acetate product [V]. Routes: §7.3 "IM only". The Cyanokit row (V03AB33, excluded from
# B12 regimens) is carried as a caution, so that no one maps these doses to it.
HYDROXOCOBALAMIN_INJECTION: Final = DrugCodes(
    product="Hydroxocobalamin 1000 mcg/mL injection (IM) (US, Actavis NDC 0591-2888)",
    drug=HYDROXOCOBALAMIN,
    routes=("IM",),
    rxnorm="317106",
    atc="B03BA03",
    snomed="409258004",
    unii="Q40X8H422O",
    evidence=CodeEvidence(rxnorm="V", atc="V", snomed="S", unii="V"),
    note=(
        "Caution: SNOMED tooling maps 409258004 Hydroxocobalamin (substance) as replaced by 1217427007 Aquacobalamin "
        "(substance); check the current SNOMED CT release [S]. RxCUI 317106 is from the US product's NDC (Actavis "
        "0591-2888) [V, openFDA NDC]. UNII Q40X8H422O is hydroxocobalamin; S535M27N3Q is listed for the acetate "
        "product [V]. Not Cyanokit (hydroxocobalamin 5 g IV, ATC V03AB33 [U], an antidote for cyanide poisoning): "
        "excluded from B12 regimens. " + INGREDIENT_RXCUI_CAUTION
    ),
)

# RULES §7.2 row "Oral cyanocobalamin tablets (1000 mcg etc.)": RxNorm "Look up in RxNav. Many US 1000 mcg tablets are
# dietary supplements without NDC/SCD [U]"; ATC B03BA01; 419382002 (substance); Other "UK: POM/P/GSL products differ;
# use dm+d in the UK [U]". No RxCUI and no UNII: RULES gives none for this row. The row repeats the ATC and SNOMED
# substance codes of the injection row without a tag of its own; they are the same substance codes, so they carry the
# tags RULES gives them there ([V] and [S]). Routes: §7.3 "Cyanocobalamin oral: PO (sublingual also used)".
CYANOCOBALAMIN_ORAL: Final = DrugCodes(
    product="Oral cyanocobalamin tablets (1000 mcg etc.)",
    drug=CYANOCOBALAMIN,
    routes=("PO", "SL"),
    rxnorm=None,
    atc="B03BA01",
    snomed="419382002",
    unii=None,
    evidence=CodeEvidence(rxnorm=None, atc="V", snomed="S", unii=None),
    note=(
        "No RxCUI: look it up in RxNav; many US 1000 mcg tablets are dietary supplements without NDC/SCD [U]. UK: "
        "POM/P/GSL products differ; use dm+d in the UK [U]. ATC B03BA01 and SNOMED 419382002 are the cyanocobalamin "
        "substance codes, as for the injection. " + INGREDIENT_RXCUI_CAUTION
    ),
)

PRODUCTS: Final[tuple[DrugCodes, ...]] = (CYANOCOBALAMIN_INJECTION, HYDROXOCOBALAMIN_INJECTION, CYANOCOBALAMIN_ORAL)

_BY_DRUG_AND_ROUTE: Final[dict[tuple[str, str], DrugCodes]] = {
    (product.drug, route): product for product in PRODUCTS for route in product.routes
}


def drug_codes(drug: str, route: str) -> DrugCodes | None:
    """The RULES §7.2 product a dose of `drug` by `route` is, or None when RULES names none for them."""
    return _BY_DRUG_AND_ROUTE.get((drug, route))


def drug_codes_json(drug: str, route: str) -> dict[str, Any] | None:
    """`drug_codes` as the API serves it: computed from the two fields alone (no query), a new dict each time."""
    found = _BY_DRUG_AND_ROUTE.get((drug, route))
    return None if found is None else found.as_json()
