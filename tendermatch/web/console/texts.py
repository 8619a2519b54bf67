"""The console's words: written in Danish in the templates and pages, with the English
for the language switch here, keyed by the Danish text (a text missing here stays Danish)."""

from __future__ import annotations

from typing import Any

ENGLISH: dict[str, str] = {
    "Oversigt": "Overview", "Udbud": "Notices", "Virksomheder": "Enterprises", "Udsendelser": "Digests",
    "Kørsler": "Runs", "Ikke nået": "Not reached", "Adgangslog": "Access log", "SQL (Datasette)": "SQL (Datasette)",
    "Log ud": "Log out", "Log ind": "Log in", "Brugernavn": "User name", "Adgangskode": "Password",
    "Forkert brugernavn eller adgangskode.": "Wrong user name or password.",
    "Denne uge": "This week", "Nye udbud": "New notices", "Match": "Matches",
    "Virksomheder med match": "Enterprises with a match", "Udsendelser sendt": "Digests sent",
    "Udsendelser venter": "Digests pending", "Udsendelser fejlet": "Digests failed",
    "Virksomheder uden match": "Enterprises without any match", "Indsamling pr. kilde": "Crawls per source",
    "Kilde": "Source", "Seneste kørsel": "Last run", "Resultat": "Outcome", "Seneste gode kørsel": "Last good run",
    "Fejl": "Error", "Søg": "Search", "Søg i titel og beskrivelse": "Search title and description",
    "Ordregiver": "Buyer", "Type": "Kind", "Fase": "Stage", "Frist fra": "Deadline from", "Frist til": "Deadline to",
    "Område (NUTS)": "Region (NUTS)", "Nået": "Reached", "alle": "all", "ja": "yes", "nej": "no",
    "Titel": "Title", "Frist": "Deadline", "Værdi": "Value", "Offentliggjort": "Published",
    "Fortalt til": "Told", "Filtrer": "Filter", "Nulstil": "Reset", "Side": "Page", "af": "of",
    "Forrige": "Previous", "Næste": "Next", "Hent som CSV": "Download CSV", "Hent som Excel": "Download Excel",
    "Ingen rækker.": "No rows.", "Status": "Status", "Delkontrakter": "Lots", "Kilder": "Sources",
    "Historik": "History", "Hvem fik besked, hvornår og hvorfor": "Who was told, when and why",
    "Virksomhed": "Enterprise", "E-mail": "E-mail", "Uge": "Week", "Hvorfor": "Why", "Sendt": "Sent",
    "Matchet, men ikke fortalt endnu": "Matched, not told yet", "Profil": "Profile", "Søgeord": "Keywords",
    "Områder": "Regions", "Største kontrakt": "Largest contract", "Sprog": "Language",
    "Forbeholdte udbud": "Reserved tenders", "Aktuelle match": "Current matches",
    "Afmeldinger": "Unsubscribes", "Hvad vi har sendt": "What we sent", "Periode": "Period",
    "Tilstand": "State", "Emne": "Subject", "Svar fra serveren": "The server's answer", "Job": "Job",
    "Startet": "Started", "Sluttet": "Finished", "Tal": "Counts", "Tættest på": "Closest",
    "Åbne udbud fra kommunens egne ordregivere, som ingen virksomhed har fået besked om.":
        "Open tenders of the municipality's own buyers that reached no enterprise.",
    "Bruger": "User", "Handling": "Action", "Hvad": "What", "Tidspunkt": "Time",
    "skjult (rollen læser)": "hidden (viewer role)", "Fristen blev flyttet fra": "The deadline moved from",
    "til": "to", "ændret": "changed", "Version": "Version", "Til oversigten": "To the overview",
    "Side ikke fundet": "Page not found",
    "Aftalen udløber": "The agreement ends", "Beskrivelse": "Description", "En adresse": "An address",
    "Fejlede først, så dem der venter, så de sendte.": "Failed first, then pending, then sent.",
    "Fejlede og afbrudte først, nyeste først.": "Failed and interrupted first, newest first.",
    "Forbeholdt": "Reserved", "Forbeholdt / sociale hensyn": "Reserved / social considerations",
    "Fortalt med fristen": "Told with the deadline", "fristen er nu": "the deadline is now",
    "Hvem har åbnet en virksomheds side eller hentet personoplysninger. Gemmes i {days} dage.":
        "Who opened an enterprise's page or downloaded personal data. Kept {days} days.",
    "Ingen aktuelle match.": "No current matches.",
    "Ingen egne ordregivere er sat op ([serve] own_buyers), så alle ordregivere vises.":
        "No own buyers are configured ([serve] own_buyers), so every buyer is shown.",
    "Ingen udsendelser i perioden.": "No digests in the period.",
    "Ingen virksomhed har fået besked om dette udbud.": "No enterprise was told about this notice.",
    "Ingen virksomhed med samme CPV-område.": "No enterprise with the same CPV division.", "Ingen.": "None.",
    "Leverandør": "Supplier", "Læs udbuddet": "Read the notice", "Matchet": "Matched", "Måneder": "Months",
    "Navn": "Name", "Ordregivere": "Buyers", "Seneste udsendelse": "Last digest",
    "Sociale hensyn": "Social considerations", "Sortering": "Order", "Udsendelse": "Digest", "Vis": "Show",
    "afmeldte": "unsubscribed", "aldrig": "never", "forsøg": "attempts", "frist": "deadline",
    "først set": "first seen", "ikke oplyst": "not given", "kun uden match": "only without a match",
    "match": "matches", "måneder": "months", "nyeste": "newest", "række": "row", "rækker": "rows",
    "score": "score", "senest set": "last seen", "seneste": "last", "siden": "since", "via": "via",
    "virksomheder": "enterprises", "virksomhed": "enterprise", "fortalt": "told",
    "Viser de første 1000; SQL-visningens notice_recipients har dem alle.":
        "Showing the first 1,000; the SQL view's notice_recipients has them all.",
    "vil høre om udbud om": "wants to hear about tenders for",
}


def translate(text: str, language: str, **values: Any) -> str:
    """``text`` (Danish) in ``language``, with ``values`` filled in."""
    if language == "en":
        text = ENGLISH.get(text, text)
    return text.format(**values) if values else text
