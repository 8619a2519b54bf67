"""eForms UBL notices (every notice family: PIN, CN, CAN, VEAT, modification, change, E1-E6).

``parse_eforms(content)`` is a pure function: bytes in, one :class:`ParsedNotice` out.
It reads the business terms listed below with precompiled, relative XPath (no ``//``
searches over the whole tree), so a typical notice takes well under a millisecond.

| record field        | eForms business term                                                   |
|---------------------|------------------------------------------------------------------------|
| id / keys           | OPP-010 publication number (efac:Publication), BT-701 notice id        |
| procedure_id        | BT-04 cbc:ContractFolderID                                             |
| notice_version      | BT-757 cbc:VersionID                                                   |
| stage               | BT-03 form type (cbc:NoticeTypeCode/@listName)                         |
| title / titles      | BT-21 procedure title, every language                                  |
| description         | BT-24 procedure description                                            |
| language            | BT-702(a) notice language                                              |
| buyer               | BT-500/513/514 of the organisation named by the first contracting party |
| supplier            | winning tenderers of a result (settled contracts / selected tenders)    |
| cpv                 | BT-262 main then BT-263 additional, procedure then lots                |
| nuts                | BT-5071 place of performance                                           |
| value               | BT-27 estimated value (a lot without one: BT-271 framework maximum);   |
|                     | no procedure value: sum of the lots' (one currency), else BT-161 total |
| deadline            | BT-131 tender deadline, else BT-1311 requests to participate, else     |
|                     | BT-630 expressions of interest (PIN calls); the earliest over the lots |
| published           | OPP-012 publication date, else BT-05 dispatch date                     |
| reserved            | BT-71 reserved participation res-ws / res-pub-ser                      |
| social              | BT-06 'soc-obj', BT-775 social objectives, BT-736 reserved execution   |
|                     | 'yes' -> 'reserved-execution' (+ 'clause' from the text)               |
| framework_agreement | BT-765 other than 'none'                                               |
| status / changes    | BT-758 changed notice, BT-140 'cancel' / 'cancel-intent'               |

Lots are the ``cac:ProcurementProjectLot`` with scheme 'Lot' and, in prior information
notices, 'Part' (a PIN's parts are its planned lots); groups of lots ('LotsGroup') are not
lots. Every record ends with at least one lot (``finish_record``).

Over 500 lines on purpose: one reading of one schema (the eForms SDK's UBL notices and their
extensions); its field readers share the namespace and code tables above them.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from .common import (
    EFORMS_FORM_TYPE_STAGES,
    RESERVED_CODES,
    SOCIAL_OBJECTIVE_CODES,
    ParsedNotice,
    ParseError,
    clean_text,
    cpv_code,
    eforms_stage,
    finish_record,
    iso_date,
    iso_datetime,
    language_code,
    money,
    new_lot,
    new_record,
    publication_key,
    unique,
)
from .xmlsafe import parse_xml

__all__ = ["parse_eforms"]

CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
EXT = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
EFAC = "http://data.europa.eu/p27/eforms-ubl-extension-aggregate-components/1"
EFBC = "http://data.europa.eu/p27/eforms-ubl-extension-basic-components/1"
EFEXT = "http://data.europa.eu/p27/eforms-ubl-extensions/1"
NS = {"cac": CAC, "cbc": CBC, "ext": EXT, "efac": EFAC, "efbc": EFBC, "efext": EFEXT}

_UBL = "urn:oasis:names:specification:ubl:schema:xsd:"
NOTICE_ROOTS = {
    f"{{{_UBL}ContractNotice-2}}ContractNotice",
    f"{{{_UBL}PriorInformationNotice-2}}PriorInformationNotice",
    f"{{{_UBL}ContractAwardNotice-2}}ContractAwardNotice",
}

_CANCEL_CODES = {"cancel", "cancel-intent"}
_LOT_SCHEMES = {"lot", "part"}
_UUID = re.compile(r"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?:-[0-9]{2})?")


def _tag(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


# Root children, matched by tag in one pass over the root (no XPath needed there).
T_EXTENSIONS = _tag(EXT, "UBLExtensions")
T_ID = _tag(CBC, "ID")
T_FOLDER = _tag(CBC, "ContractFolderID")
T_ISSUE_DATE = _tag(CBC, "IssueDate")
T_VERSION = _tag(CBC, "VersionID")
T_TYPE = _tag(CBC, "NoticeTypeCode")
T_LANGUAGE = _tag(CBC, "NoticeLanguageCode")
T_PARTY = _tag(CAC, "ContractingParty")
T_TERMS = _tag(CAC, "TenderingTerms")
T_PROCESS = _tag(CAC, "TenderingProcess")
T_PROJECT = _tag(CAC, "ProcurementProject")
T_LOT = _tag(CAC, "ProcurementProjectLot")


def _xp(path: str) -> etree.XPath:
    return etree.XPath(path, namespaces=NS, smart_strings=False)


# Compiling an XPath is cheap (tens of microseconds each), so they are module constants.
X_EFORMS_EXT = _xp("ext:UBLExtension/ext:ExtensionContent/efext:EformsExtension")
X_PUB_ID = _xp("efac:Publication/efbc:NoticePublicationID/text()")
X_PUB_DATE = _xp("efac:Publication/efbc:PublicationDate/text()")
X_CHANGES = _xp("efac:Changes")
X_CHANGED_ID = _xp("efbc:ChangedNoticeIdentifier/text()")
X_CHANGE_REASON = _xp("efac:ChangeReason/cbc:ReasonCode/text()")
X_COMPANIES = _xp("efac:Organizations/efac:Organization/efac:Company")
X_COMPANY_ID = _xp("cac:PartyIdentification/cbc:ID/text()")
X_COMPANY_NAME = _xp("cac:PartyName/cbc:Name")
X_COMPANY_CITY = _xp("cac:PostalAddress/cbc:CityName/text()")
X_COMPANY_COUNTRY = _xp("cac:PostalAddress/cac:Country/cbc:IdentificationCode/text()")
X_PARTY_ID = _xp("cac:Party/cac:PartyIdentification/cbc:ID/text()")
X_NOTICE_RESULT = _xp("efac:NoticeResult")
X_RESULT_TOTAL = _xp("cbc:TotalAmount")
X_CONTRACT_TENDERS = _xp("efac:SettledContract/efac:LotTender/cbc:ID/text()")
X_WINNING_TENDERS = _xp("efac:LotResult[cbc:TenderResultCode='selec-w']/efac:LotTender/cbc:ID/text()")
X_LOT_TENDERS = _xp("efac:LotTender")
X_TENDER_PARTY = _xp("efac:TenderingParty/cbc:ID/text()")
X_TENDERING_PARTIES = _xp("efac:TenderingParty")
X_TENDERERS = _xp("efac:Tenderer/cbc:ID/text()")
X_FIRST_ID = _xp("cbc:ID/text()")

# Relative to a cac:ProcurementProject (procedure or lot).
X_NAME = _xp("cbc:Name")
X_DESCRIPTION = _xp("cbc:Description")
X_MAIN_CPV = _xp("cac:MainCommodityClassification/cbc:ItemClassificationCode/text()")
X_MORE_CPV = _xp("cac:AdditionalCommodityClassification/cbc:ItemClassificationCode/text()")
X_NUTS = _xp("cac:RealizedLocation/cac:Address/cbc:CountrySubentityCode/text()")
X_ESTIMATE = _xp("cac:RequestedTenderTotal/cbc:EstimatedOverallContractAmount")
X_ADDITIONAL_TYPE = _xp("cac:ProcurementAdditionalType/cbc:ProcurementTypeCode")

# Relative to a cac:TenderingTerms.
X_RESERVED = _xp(
    "cac:TendererQualificationRequest/cac:SpecificTendererRequirement"
    "/cbc:TendererRequirementTypeCode[@listName='reserved-procurement']/text()"
)
X_RESERVED_EXECUTION = _xp(
    "cac:ContractExecutionRequirement/cbc:ExecutionRequirementCode[@listName='reserved-execution']/text()"
)

# Relative to a cac:ProcurementProjectLot.
X_LOT_ID = _xp("cbc:ID")
X_LOT_PROJECT = _xp("cac:ProcurementProject")
X_LOT_TERMS = _xp("cac:TenderingTerms")
X_LOT_PROCESS = _xp("cac:TenderingProcess")

# Relative to a cac:TenderingProcess.
X_TENDER_DEADLINE = _xp("cac:TenderSubmissionDeadlinePeriod")
X_REQUEST_DEADLINE = _xp("cac:ParticipationRequestReceptionPeriod")
X_INTEREST_DEADLINE = _xp(
    "ext:UBLExtensions/ext:UBLExtension/ext:ExtensionContent/efext:EformsExtension"
    "/efac:InterestExpressionReceptionPeriod"
)
X_FRAMEWORK = _xp("cac:ContractingSystem/cbc:ContractingSystemTypeCode[@listName='framework-agreement']/text()")
X_FRAMEWORK_MAX = _xp("cac:FrameworkAgreement/cbc:EstimatedMaximumValueAmount")
X_END_DATE = _xp("cbc:EndDate/text()")
X_END_TIME = _xp("cbc:EndTime/text()")


def parse_eforms(content: bytes, *, url: str | None = None) -> list[ParsedNotice]:
    """Parse one eForms UBL notice. Raises ParseError when it cannot be used."""
    root = parse_xml(content)
    tag = root.tag if isinstance(root.tag, str) else ""
    if tag not in NOTICE_ROOTS:
        local = etree.QName(root).localname if tag else "?"
        if local == "BusinessRegistrationInformationNotice":
            raise ParseError("eForms business registration notice (X01/X02) is not a procurement notice")
        raise ParseError(
            f"root element <{local}> is not an eForms notice "
            "(ContractNotice, PriorInformationNotice or ContractAwardNotice in the UBL namespace)"
        )
    return [_Notice(root, url).parse()]


def _text(node: Any) -> str | None:
    """Stripped text of an element or string, None when empty."""
    if node is None:
        return None
    text = node if isinstance(node, str) else node.text
    if text is None:
        return None
    text = text.strip()
    return text or None


def _first(values: list[Any]) -> str | None:
    for value in values:
        text = _text(value)
        if text:
            return text
    return None


def _money(element: Any) -> dict[str, Any] | None:
    if element is None:
        return None
    value = money(element.text, element.get("currencyID"))
    # money() lets 'NaN', 'Infinity' and '1e999' through; they are not JSON numbers.
    return value if value is None or math.isfinite(value["amount"]) else None


def _deadline_key(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _Notice:
    """The state of parsing one notice (a class only to share the root's parts)."""

    def __init__(self, root: etree._Element, url: str | None) -> None:
        self.root = root
        self.url = url
        self.language: str | None = None

    # -- helpers -------------------------------------------------------------------------

    def texts_by_language(self, elements: list[Any]) -> tuple[str | None, dict[str, str]]:
        """(text in the notice language or the first text, {iso639-1: text})."""
        first: str | None = None
        chosen: str | None = None
        by_language: dict[str, str] = {}
        for element in elements:
            text = clean_text(element.text)
            if not text:
                continue
            language = language_code(element.get("languageID")) or self.language
            if first is None:
                first = text
            if language:
                by_language.setdefault(language, text)
                if chosen is None and language == self.language:
                    chosen = text
        return chosen or first, by_language

    def project_fields(self, project: Any) -> dict[str, Any]:
        """Title, titles, description, cpv, nuts, value and social codes of a ProcurementProject."""
        title, titles = self.texts_by_language(X_NAME(project))
        description, _ = self.texts_by_language(X_DESCRIPTION(project))
        cpv = unique([c for c in map(cpv_code, X_MAIN_CPV(project) + X_MORE_CPV(project)) if c])
        nuts = unique([n.strip() for n in X_NUTS(project) if n and n.strip()])
        estimates = X_ESTIMATE(project)
        value = _money(estimates[0]) if estimates else None
        social: list[str] = []
        for code_element in X_ADDITIONAL_TYPE(project):
            code = _text(code_element)
            if not code:
                continue
            list_name = code_element.get("listName")
            if list_name == "strategic-procurement" and code == "soc-obj":
                social.append("soc-obj")
            elif list_name == "social-objective" and code in SOCIAL_OBJECTIVE_CODES:
                social.append(code)
        return {"title": title, "titles": titles, "description": description, "cpv": cpv,
                "nuts": nuts, "value": value, "social": unique(social)}

    @staticmethod
    def reserved_codes(terms: Any) -> list[str]:
        if terms is None:
            return []
        codes = {c.strip() for c in X_RESERVED(terms) if c}
        return [c for c in RESERVED_CODES if c in codes]

    @staticmethod
    def execution_reserved(terms: Any) -> list[str]:
        """['reserved-execution'] when BT-736 says the contract is to be performed within
        sheltered employment programmes. Not a reserved competition (BT-71): buyers set it
        loosely, so it is a social consideration, not a reservation."""
        if terms is not None and any(c.strip() == "yes" for c in X_RESERVED_EXECUTION(terms) if c):
            return ["reserved-execution"]
        return []

    @staticmethod
    def deadline(process: Any) -> str | None:
        for xpath in (X_TENDER_DEADLINE, X_REQUEST_DEADLINE, X_INTEREST_DEADLINE):
            for period in xpath(process):
                value = iso_datetime(_first(X_END_DATE(period)), _first(X_END_TIME(period)))
                if value:
                    return value
        return None

    # -- the notice ----------------------------------------------------------------------

    def parse(self) -> ParsedNotice:
        root = self.root
        extensions = notice_id = folder = issue_date = version = type_code = language = None
        parties: list[Any] = []
        procedure = terms = None
        lots: list[Any] = []
        for child in root:
            tag = child.tag
            if tag == T_LOT:
                lots.append(child)
            elif tag == T_EXTENSIONS:
                extensions = extensions if extensions is not None else child
            elif tag == T_ID:
                notice_id = notice_id or _text(child)
            elif tag == T_FOLDER:
                folder = _text(child)
            elif tag == T_ISSUE_DATE:
                issue_date = _text(child)
            elif tag == T_VERSION:
                version = _text(child)
            elif tag == T_TYPE:
                type_code = child
            elif tag == T_LANGUAGE:
                language = language or _text(child)
            elif tag == T_PARTY:
                parties.append(child)
            elif tag == T_TERMS:
                terms = child
            elif tag == T_PROJECT:
                procedure = child if procedure is None else procedure

        if type_code is None:
            raise ParseError("no notice type (cbc:NoticeTypeCode): not a complete eForms notice")
        stage = self.stage(type_code)
        if procedure is None:
            raise ParseError("no procurement project (cac:ProcurementProject): the notice describes no procurement")
        eforms = None
        if extensions is not None:
            found = X_EFORMS_EXT(extensions)
            eforms = found[0] if found else None
        publication_number = _first(X_PUB_ID(eforms)) if eforms is not None else None
        if not notice_id and not publication_number:
            raise ParseError("notice identifier (BT-701 cbc:ID) is missing or empty")

        self.language = language_code(language)
        fields = self.project_fields(procedure)
        parsed_lots = [lot for lot in (self.lot(element) for element in lots) if lot is not None]
        title, titles = fields["title"], fields["titles"]
        if not title:  # no procedure title: the first lot's title stands for it
            title = next((lot["title"] for lot, _, _ in parsed_lots if lot["title"]), None)
            if not title:
                raise ParseError("procedure title (BT-21 cbc:Name) is missing or empty")
            titles = {self.language: title} if self.language else {}

        record = new_record(
            id=f"eforms:{publication_number or notice_id}",
            stage=stage,
            procedure_id=folder,
            notice_version=version,
            title=title,
            titles=titles,
            description=fields["description"],
            language=self.language,
            cpv=fields["cpv"],
            nuts=fields["nuts"],
            value=fields["value"],
            url=self.url,
            reserved=self.reserved_codes(terms),
            social=unique([*fields["social"], *self.execution_reserved(terms)]),
        )
        record["lots"] = [lot for lot, _, _ in parsed_lots]
        deadlines = [deadline for _, deadline, _ in parsed_lots if deadline]
        if deadlines:
            record["deadline"] = min(deadlines, key=_deadline_key)
        record["framework_agreement"] = any(framework for _, _, framework in parsed_lots)

        publication_date = _first(X_PUB_DATE(eforms)) if eforms is not None else None
        record["published"] = iso_date(publication_date) or iso_date(issue_date)

        companies = self.companies(eforms)
        buyer_id = next((i for p in parties for i in map(_text, X_PARTY_ID(p)) if i), None)
        record["buyer"] = self.organisation(companies.get(buyer_id)) if buyer_id else None

        notice_result = None
        if eforms is not None:
            found = X_NOTICE_RESULT(eforms)
            notice_result = found[0] if found else None
        if notice_result is not None:
            record["supplier"] = self.winners(notice_result, companies)
        if record["value"] is None:
            record["value"] = self.total_value(record["lots"], notice_result)

        changes = None
        if eforms is not None:
            for change in X_CHANGES(eforms):
                changes = changes or self.changed_key(_first(X_CHANGED_ID(change)))
                if any(_text(code) in _CANCEL_CODES for code in X_CHANGE_REASON(change)):
                    record["status"] = "cancelled"

        keys = []
        pub_key = publication_key(publication_number)
        if pub_key:
            keys.append(pub_key)
        if notice_id:
            keys.append(f"uuid:{notice_id.lower() if _UUID.fullmatch(notice_id) else notice_id}")
        return ParsedNotice(record=finish_record(record), keys=keys, changes=changes)

    @staticmethod
    def stage(type_code: Any) -> str:
        form_type = (type_code.get("listName") or "").strip()
        if form_type == "bri":
            raise ParseError("eForms business registration notice (X01/X02) is not a procurement notice")
        notice_type = _text(type_code) or ""
        if form_type not in EFORMS_FORM_TYPE_STAGES and notice_type.startswith("brin"):
            raise ParseError("eForms business registration notice (X01/X02) is not a procurement notice")
        stage = eforms_stage(form_type, notice_type)
        if stage is not None:
            return stage
        raise ParseError(f"unknown notice type {notice_type or form_type or '(empty)'!r}")

    def lot(self, element: Any) -> tuple[dict[str, Any], str | None, bool] | None:
        """(lot record, its deadline, whether it is a framework agreement), None for a group."""
        ids = X_LOT_ID(element)
        lot_id = _text(ids[0]) if ids else None
        scheme = (ids[0].get("schemeName") or "").lower() if ids else ""
        if scheme not in _LOT_SCHEMES and not (not scheme and lot_id and lot_id.upper().startswith(("LOT", "PAR"))):
            return None
        projects = X_LOT_PROJECT(element)
        fields = self.project_fields(projects[0]) if projects else {
            "title": None, "titles": {}, "description": None, "cpv": [], "nuts": [], "value": None, "social": []}
        terms = X_LOT_TERMS(element)
        processes = X_LOT_PROCESS(element)
        process = processes[0] if processes else None
        deadline = self.deadline(process) if process is not None else None
        framework = False
        value = fields["value"]
        if process is not None:
            framework = any(c.strip() not in ("", "none") for c in X_FRAMEWORK(process) if c)
            if value is None:
                maxima = X_FRAMEWORK_MAX(process)
                value = _money(maxima[0]) if maxima else None
        lot = new_lot(
            lot_id or "1",
            title=fields["title"],
            description=fields["description"],
            cpv=fields["cpv"],
            nuts=fields["nuts"],
            value=value,
            reserved=self.reserved_codes(terms[0] if terms else None),
            social=unique([*fields["social"], *self.execution_reserved(terms[0] if terms else None)]),
        )
        return lot, deadline, framework

    @staticmethod
    def companies(eforms: Any) -> dict[str, Any]:
        if eforms is None:
            return {}
        companies: dict[str, Any] = {}
        for company in X_COMPANIES(eforms):
            org_id = _first(X_COMPANY_ID(company))
            if org_id and org_id not in companies:
                companies[org_id] = company
        return companies

    def organisation_name(self, company: Any) -> str | None:
        name, _ = self.texts_by_language(X_COMPANY_NAME(company))
        return name

    def organisation(self, company: Any) -> dict[str, Any] | None:
        if company is None:
            return None
        name = self.organisation_name(company)
        if not name:
            return None
        city = clean_text(_first(X_COMPANY_CITY(company)))
        return {"name": name, "country": _first(X_COMPANY_COUNTRY(company)), "city": city}

    def winners(self, notice_result: Any, companies: dict[str, Any]) -> str | None:
        """Names of the winning tenderers: the tenders of the settled contracts, else the
        tenders of lot results whose winner was chosen ('selec-w')."""
        tender_ids = unique([t.strip() for t in X_CONTRACT_TENDERS(notice_result) if t and t.strip()])
        if not tender_ids:
            tender_ids = unique([t.strip() for t in X_WINNING_TENDERS(notice_result) if t and t.strip()])
        if not tender_ids:
            return None
        party_of_tender = {}
        for tender in X_LOT_TENDERS(notice_result):
            tender_id = _first(X_FIRST_ID(tender))
            if tender_id:
                party_of_tender[tender_id] = _first(X_TENDER_PARTY(tender))
        organisations_of_party = {}
        for party in X_TENDERING_PARTIES(notice_result):
            party_id = _first(X_FIRST_ID(party))
            if party_id:
                organisations_of_party[party_id] = [o.strip() for o in X_TENDERERS(party) if o and o.strip()]
        names = []
        for tender_id in tender_ids:
            for org_id in organisations_of_party.get(party_of_tender.get(tender_id) or "", []):
                company = companies.get(org_id)
                name = self.organisation_name(company) if company is not None else None
                if name:
                    names.append(name)
        return "; ".join(unique(names)) or None

    @staticmethod
    def total_value(lots: list[dict[str, Any]], notice_result: Any) -> dict[str, Any] | None:
        """The sum of the lots' values when every lot has one in the same currency, else the
        result's total value (BT-161)."""
        values = [lot["value"] for lot in lots]
        if values and all(values) and len({v["currency"] for v in values}) == 1:
            amount = sum(v["amount"] for v in values)
            if math.isfinite(amount):
                return {"amount": amount, "currency": values[0]["currency"]}
        if notice_result is not None:
            totals = X_RESULT_TOTAL(notice_result)
            if totals:
                return _money(totals[0])
        return None

    @staticmethod
    def changed_key(identifier: str | None) -> str | None:
        """BT-758 'uuid-01' -> 'uuid:<uuid>'; an OJ S publication number -> 'pub:<n>-<year>'."""
        if not identifier:
            return None
        match = _UUID.fullmatch(identifier)
        if match:
            return f"uuid:{match.group(1).lower()}"
        return publication_key(identifier) or f"uuid:{identifier}"

