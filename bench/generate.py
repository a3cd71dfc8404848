"""A synthetic UK health directory as FHIR R4 NDJSON, deterministic from a seed.

The directory is dense on purpose: common names are common (Faker en_GB
frequencies), families share an address, several households live on each
street and neighbours differ only by house number, patients use the same
webmail providers with the same few local-part styles, professionals use
nhs.net or their trust's nhs.uk domain and have fax numbers in blocks.

Faker is slow, so it is used once to build pools (names, inward codes) and
everything else is drawn from those pools with `random` and numpy: a million
entries take well under two minutes.

    python -m bench.generate --size 100000            # writes bench/out/...ndjson
    python -m bench.generate --size 2000 --sends 3    # and prints a few labelled sends

The in-memory `World` keeps what the labelled sends (bench/sends.py) need:
who lives where, who is whose next of kin, who is whose GP.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import orjson
import phonenumbers
from faker import Faker

__all__ = [
    "AS_OF",
    "GENERATOR_VERSION",
    "OUT_DIR",
    "Addr",
    "Contact",
    "Org",
    "Patient",
    "Phone",
    "Practitioner",
    "Role",
    "World",
    "build_world",
    "directory_file",
    "ensure_directory",
    "nhs_check_digit",
    "write_ndjson",
]

GENERATOR_VERSION = 3
AS_OF = date(2026, 1, 15)
"""The date the directory is loaded `as_of`: every ended period ends before it."""
OUT_DIR = Path(__file__).resolve().parent / "out"

NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
GMC_SYSTEM = "https://fhir.hl7.org.uk/Id/gmc-number"
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"

# Post towns: (town, county, postcode area, districts, dialling code, local digits, weight).
TOWNS: tuple[tuple[str, str, str, int, str, int, float], ...] = (
    ("Leeds", "West Yorkshire", "LS", 29, "0113", 7, 8.0),
    ("Bradford", "West Yorkshire", "BD", 24, "01274", 6, 5.0),
    ("Wakefield", "West Yorkshire", "WF", 17, "01924", 6, 3.0),
    ("Huddersfield", "West Yorkshire", "HD", 9, "01484", 6, 2.5),
    ("Halifax", "West Yorkshire", "HX", 7, "01422", 6, 1.5),
    ("Harrogate", "North Yorkshire", "HG", 5, "01423", 6, 1.2),
    ("York", "North Yorkshire", "YO", 32, "01904", 6, 2.5),
    ("Sheffield", "South Yorkshire", "S", 36, "0114", 7, 6.0),
    ("Doncaster", "South Yorkshire", "DN", 22, "01302", 6, 2.5),
    ("Hull", "East Yorkshire", "HU", 20, "01482", 6, 3.0),
    ("Manchester", "Greater Manchester", "M", 50, "0161", 7, 8.0),
    ("Stockport", "Greater Manchester", "SK", 17, "0161", 7, 2.5),
    ("Oldham", "Greater Manchester", "OL", 16, "0161", 7, 2.0),
    ("Bolton", "Greater Manchester", "BL", 9, "01204", 6, 2.2),
    ("Wigan", "Greater Manchester", "WN", 8, "01942", 6, 2.0),
    ("Liverpool", "Merseyside", "L", 40, "0151", 7, 6.0),
    ("Preston", "Lancashire", "PR", 26, "01772", 6, 2.5),
    ("Blackburn", "Lancashire", "BB", 12, "01254", 6, 2.0),
    ("Lancaster", "Lancashire", "LA", 23, "01524", 6, 1.2),
    ("Newcastle upon Tyne", "Tyne and Wear", "NE", 50, "0191", 7, 4.5),
    ("Sunderland", "Tyne and Wear", "SR", 8, "0191", 7, 2.5),
    ("Durham", "County Durham", "DH", 9, "0191", 7, 1.5),
    ("Middlesbrough", "North Yorkshire", "TS", 29, "01642", 6, 2.0),
    ("Carlisle", "Cumbria", "CA", 28, "01228", 6, 1.0),
    ("Birmingham", "West Midlands", "B", 48, "0121", 7, 9.0),
    ("Coventry", "West Midlands", "CV", 37, "024", 8, 3.5),
    ("Nottingham", "Nottinghamshire", "NG", 34, "0115", 7, 4.5),
    ("Leicester", "Leicestershire", "LE", 19, "0116", 7, 4.0),
    ("Derby", "Derbyshire", "DE", 24, "01332", 6, 3.0),
    ("Stoke-on-Trent", "Staffordshire", "ST", 21, "01782", 6, 3.0),
    ("Lincoln", "Lincolnshire", "LN", 13, "01522", 6, 1.2),
    ("Chester", "Cheshire", "CH", 66, "01244", 6, 1.5),
    ("Warrington", "Cheshire", "WA", 16, "01925", 6, 2.0),
    ("Bristol", "Avon", "BS", 41, "0117", 7, 5.0),
    ("Reading", "Berkshire", "RG", 45, "0118", 7, 3.0),
    ("Oxford", "Oxfordshire", "OX", 29, "01865", 6, 2.0),
    ("Cambridge", "Cambridgeshire", "CB", 25, "01223", 6, 2.0),
    ("Norwich", "Norfolk", "NR", 35, "01603", 6, 2.5),
    ("Exeter", "Devon", "EX", 39, "01392", 6, 2.0),
    ("Plymouth", "Devon", "PL", 35, "01752", 6, 2.5),
    ("Southampton", "Hampshire", "SO", 53, "023", 8, 3.0),
    ("Portsmouth", "Hampshire", "PO", 41, "023", 8, 3.0),
    ("Brighton", "East Sussex", "BN", 45, "01273", 6, 3.0),
    ("London", "", "SE", 28, "020", 8, 9.0),
    ("London", "", "SW", 20, "020", 8, 8.0),
    ("London", "", "N", 22, "020", 8, 7.0),
    ("London", "", "E", 18, "020", 8, 7.0),
    ("London", "", "NW", 11, "020", 8, 5.0),
    ("Cardiff", "South Glamorgan", "CF", 48, "029", 8, 3.5),
    ("Edinburgh", "Midlothian", "EH", 55, "0131", 7, 4.0),
    ("Glasgow", "Lanarkshire", "G", 84, "0141", 7, 6.0),
)
# The first digit(s) of local numbers that are in use, per local length.
_LOCAL_LEAD = {7: "2345789", 8: "378", 6: "2345678"}
_LOCAL_LEAD_BY_CODE = {"024": "7", "023": "89", "029": "2"}

WEBMAIL: tuple[tuple[str, float], ...] = (
    ("gmail.com", 30),
    ("hotmail.co.uk", 12),
    ("hotmail.com", 7),
    ("outlook.com", 8),
    ("yahoo.co.uk", 7),
    ("icloud.com", 7),
    ("btinternet.com", 6),
    ("live.co.uk", 4),
    ("googlemail.com", 2),
    ("yahoo.com", 2),
    ("sky.com", 2),
    ("virginmedia.com", 2),
    ("aol.com", 1),
    ("ntlworld.com", 1),
    ("talktalk.net", 1),
    ("me.com", 1),
    ("live.com", 1),
    ("msn.com", 0.5),
    ("outlook.co.uk", 0.5),
    ("blueyonder.co.uk", 0.5),
    ("protonmail.com", 0.5),
)
WORK_DOMAINS = (
    "tesco.com",
    "barclays.com",
    "bbc.co.uk",
    "leeds.ac.uk",
    "manchester.ac.uk",
    "birmingham.gov.uk",
    "sheffield.gov.uk",
    "police.uk",
    "royalmail.com",
    "sainsburys.co.uk",
    "hsbc.com",
    "network-rail.co.uk",
    "aviva.com",
    "capita.com",
    "unison.co.uk",
)

STREET_TYPES: tuple[tuple[str, float], ...] = (
    ("Road", 26),
    ("Street", 18),
    ("Lane", 10),
    ("Avenue", 8),
    ("Close", 8),
    ("Drive", 6),
    ("Crescent", 4),
    ("Grove", 4),
    ("Way", 4),
    ("Gardens", 3),
    ("Terrace", 3),
    ("Court", 2),
    ("Place", 2),
    ("Walk", 1),
    ("Mews", 1),
    ("Rise", 1),
    ("View", 1),
)
COMMON_STREETS = (
    "High Street",
    "Station Road",
    "Main Street",
    "Park Road",
    "Church Road",
    "Church Street",
    "London Road",
    "Victoria Road",
    "Green Lane",
    "Manor Road",
    "Church Lane",
    "Park Avenue",
    "The Avenue",
    "The Crescent",
    "Queens Road",
    "New Road",
    "Grange Road",
    "Kings Road",
    "Alexandra Road",
    "Albert Road",
    "Mill Lane",
    "School Lane",
    "York Road",
    "Springfield Road",
    "St John's Road",
    "St Mary's Road",
    "The Green",
    "Highfield Road",
    "North Street",
    "West Street",
)
STREET_WORDS = (
    "Oak",
    "Elm",
    "Ash",
    "Beech",
    "Birch",
    "Cedar",
    "Willow",
    "Meadow",
    "Mill",
    "Church",
    "Station",
    "Park",
    "Victoria",
    "Albert",
    "Windsor",
    "Chapel",
    "Spring",
    "Orchard",
    "Hollin",
    "Moor",
    "Brook",
    "Cross",
    "Bridge",
    "Market",
    "Castle",
    "Abbey",
    "Priory",
    "Manor",
    "Grange",
    "Hawthorn",
    "Rowan",
    "Heather",
    "Woodland",
    "Fairfield",
    "Highfield",
    "Westfield",
    "Kirkstall",
    "Headingley",
    "Roundhay",
    "Otley",
    "Harrogate",
    "Wetherby",
    "Beckett",
    "Chapel Allerton",
)
HOUSE_NAMES = (
    "Rose Cottage",
    "The Old Rectory",
    "Ivy Cottage",
    "The Coach House",
    "Orchard House",
    "The Barn",
    "Mill House",
    "Holly Lodge",
    "The Bungalow",
    "Fern Cottage",
)
BUILDINGS = ("Court", "House", "Mansions", "Heights", "Lodge", "Point")

EXTRA_FAMILY = (
    ("Patel", 0.35),
    ("Khan", 0.3),
    ("Ali", 0.25),
    ("Ahmed", 0.22),
    ("Hussain", 0.22),
    ("Begum", 0.15),
    ("Shah", 0.12),
    ("Singh", 0.15),
    ("Kaur", 0.1),
    ("Akhtar", 0.08),
    ("Iqbal", 0.07),
    ("Rahman", 0.08),
    ("Chowdhury", 0.05),
    ("Nowak", 0.05),
    ("Kowalski", 0.04),
    ("Okafor", 0.04),
    ("Mensah", 0.03),
    ("Nguyen", 0.03),
    ("Chen", 0.04),
    ("Murphy", 0.2),
    ("O'Brien", 0.1),
    ("O'Neill", 0.08),
    ("McDonald", 0.1),
    ("Smith-Jones", 0.02),
    ("Lloyd-Williams", 0.02),
)
EXTRA_GIVEN_M = ("Mohammed", "Muhammad", "Amir", "Imran", "Arjun", "Oliver", "Noah", "Jakub")
EXTRA_GIVEN_F = ("Aisha", "Fatima", "Priya", "Zara", "Olivia", "Amelia", "Maja", "Chloe")
NICKNAMES = {
    "david": "dave",
    "christopher": "chris",
    "thomas": "tom",
    "james": "jim",
    "michael": "mike",
    "robert": "rob",
    "richard": "rich",
    "stephen": "steve",
    "andrew": "andy",
    "daniel": "dan",
    "matthew": "matt",
    "jennifer": "jen",
    "elizabeth": "liz",
    "katherine": "kate",
    "rebecca": "becky",
    "samantha": "sam",
    "victoria": "vicky",
    "margaret": "maggie",
}
SPECIALTIES = (
    "Cardiology",
    "Dermatology",
    "Gastroenterology",
    "General Surgery",
    "Respiratory Medicine",
    "Rheumatology",
    "Orthopaedics",
    "Paediatrics",
    "Obstetrics",
    "Oncology",
    "Neurology",
    "Urology",
    "Ophthalmology",
    "ENT",
    "Diabetes",
    "Renal Medicine",
)
SAINTS = ("James's", "Thomas'", "Mary's", "George's", "Luke's", "Helier", "Peter's", "Michael's")


def nhs_check_digit(nine: str) -> int:
    """The Modulus 11 check digit of nine digits; 10 means the base is never issued."""
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1), strict=True))
    check = 11 - total % 11
    return 0 if check == 11 else check


# -- world -------------------------------------------------------------------


@dataclass(slots=True)
class Phone:
    """A UK number: dialling code and local number, and how it is written on file."""

    code: str  # "0113", "020", "07700"
    local: str  # "4960000"
    written: str = ""

    @property
    def national(self) -> str:
        return self.code + self.local

    @property
    def e164(self) -> str:
        return "+44" + self.national[1:]


@dataclass(slots=True)
class Addr:
    lines: tuple[str, ...]
    city: str
    postcode: str
    county: str = ""
    street: int = -1  # index into World.streets, -1 for addresses off the map
    house: int = 0
    flat: int = 0

    def text(self) -> str:
        return ", ".join((*self.lines, self.city, self.postcode))


@dataclass(slots=True)
class Contact:
    """A next of kin, inline in the patient's FHIR resource."""

    given: tuple[str, ...]
    family: str
    prefix: str
    relationship: str
    email: str | None
    phone: Phone | None
    address: Addr | None
    patient: int = -1  # the contact is also this patient


@dataclass(slots=True)
class Patient:
    id: str
    given: tuple[str, ...]
    family: str
    prefix: str
    gender: str
    birth_year: int
    household: int
    address: Addr
    email: str | None = None
    old_email: str | None = None
    phone: Phone | None = None
    old_address: Addr | None = None
    old_address_use: str = "old"  # "old", or "home" with an ended period
    gp_org: int = -1
    gp_ref: str = ""
    contacts: list[Contact] = field(default_factory=list)
    nhs: str = ""


@dataclass(slots=True)
class Org:
    id: str
    ods: str
    name: str
    kind: str  # "gp" | "hospital"
    town: int
    address: Addr
    fax: Phone
    phone: Phone
    email: str
    old_fax: Phone | None = None
    trust_domain: str = ""
    roles: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Practitioner:
    id: str
    given: tuple[str, ...]
    family: str
    prefix: str
    email: str
    gmc: str
    roles: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Role:
    id: str
    practitioner: int
    org: int
    title: str
    specialty: str
    fax: Phone | None
    email: str | None


@dataclass(slots=True)
class Street:
    name: str
    town: int
    outward: str
    houses: int
    flats: bool
    inwards: list[str]

    def postcode(self, house: int) -> str:
        return f"{self.outward} {self.inwards[(house - 1) // 16]}"


@dataclass
class World:
    """Everything generated, with the lookups the labelled sends need."""

    n: int
    seed: int
    patients: list[Patient]
    households: list[list[int]]
    orgs: list[Org]
    practitioners: list[Practitioner]
    roles: list[Role]
    streets: list[Street]
    emails: set[str]
    numbers: set[str]  # E.164 of every fax and phone on file
    faxes: dict[str, list[tuple[str, int]]]  # E.164 -> [("org"|"role"|"org_old", index)]
    domains: set[str]
    places: set[tuple[int, int, int]]  # occupied (street, house, flat)
    pools: Pools
    _by_name: dict[tuple[str, str], list[int]] | None = None
    _by_family: dict[str, list[int]] | None = None
    _by_street: dict[int, list[int]] | None = None

    @property
    def entries(self) -> int:
        return (
            len(self.patients)
            + sum(len(p.contacts) for p in self.patients)
            + len(self.orgs)
            + len(self.practitioners)
            + len(self.roles)
        )

    def by_name(self) -> dict[tuple[str, str], list[int]]:
        """(first given, family) -> patients."""
        if self._by_name is None:
            d: dict[tuple[str, str], list[int]] = defaultdict(list)
            for i, p in enumerate(self.patients):
                d[(p.given[0], p.family)].append(i)
            self._by_name = dict(d)
        return self._by_name

    def by_family(self) -> dict[str, list[int]]:
        if self._by_family is None:
            d: dict[str, list[int]] = defaultdict(list)
            for i, p in enumerate(self.patients):
                d[p.family].append(i)
            self._by_family = dict(d)
        return self._by_family

    def by_street(self) -> dict[int, list[int]]:
        """street -> households living on it."""
        if self._by_street is None:
            d: dict[int, list[int]] = defaultdict(list)
            for h, members in enumerate(self.households):
                d[self.patients[members[0]].address.street].append(h)
            self._by_street = dict(d)
        return self._by_street


# -- pools -----------------------------------------------------------------------


@dataclass
class Pools:
    """Names and postcode parts drawn from Faker once, with their frequencies."""

    male: list[str]
    male_w: list[float]
    female: list[str]
    female_w: list[float]
    family: list[str]
    family_w: list[float]
    inwards: list[str]
    street_words: list[str]
    webmail: list[str]
    webmail_w: list[float]

    @classmethod
    def build(cls, seed: int) -> Pools:
        fake = Faker("en_GB")
        fake.seed_instance(seed)
        person = fake.provider("faker.providers.person")
        assert person is not None

        def zipf(names: list[str]) -> list[float]:
            # Faker lists the most common names first; make the head heavy.
            return [1.0 / (r + 4) ** 1.1 for r in range(len(names))]

        male = list(dict.fromkeys([*person.first_names_male, *EXTRA_GIVEN_M]))
        female = list(dict.fromkeys([*person.first_names_female, *EXTRA_GIVEN_F]))
        fam_w: dict[str, float] = dict(person.last_names)
        for name, w in EXTRA_FAMILY:
            fam_w[name] = fam_w.get(name, 0) + w
        family = list(fam_w)
        inwards = sorted({fake.postcode().split()[-1] for _ in range(12000)})
        inwards = [x for x in inwards if len(x) == 3 and x[0].isdigit()]
        words = list(STREET_WORDS) + [fake.last_name() for _ in range(600)]
        words += [fake.first_name() for _ in range(200)]
        return cls(
            male=male,
            male_w=zipf(male),
            female=female,
            female_w=zipf(female),
            family=family,
            family_w=[fam_w[f] for f in family],
            inwards=inwards,
            street_words=sorted(set(words)),
            webmail=[d for d, _ in WEBMAIL],
            webmail_w=[w for _, w in WEBMAIL],
        )


# -- helpers ---------------------------------------------------------------------


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID from the seeded generator (formatted directly: uuid.UUID is slow)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


class _Stream:
    """Weighted draws from a list, pre-drawn with numpy in blocks (random.choices is slow)."""

    def __init__(self, gen: np.random.Generator, items: list[str], weights: list[float]) -> None:
        self.items = items
        p = np.asarray(weights, dtype=float)
        self.p = p / p.sum()
        self.gen = gen
        self.buf: list[int] = []
        self.pos = 0

    def __call__(self) -> str:
        if self.pos >= len(self.buf):
            self.buf = self.gen.choice(len(self.items), size=16384, p=self.p).tolist()
            self.pos = 0
        i = self.buf[self.pos]
        self.pos += 1
        return self.items[i]


@lru_cache(maxsize=65536)
def _slug(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum())


def _local_number(rng: random.Random, code: str, digits: int) -> str:
    lead = _LOCAL_LEAD_BY_CODE.get(code) or _LOCAL_LEAD[digits]
    return rng.choice(lead) + f"{rng.randrange(10 ** (digits - 1)):0{digits - 1}d}"


def format_local(local: str) -> str:
    if len(local) == 7:
        return f"{local[:3]} {local[3:]}"
    if len(local) == 8:
        return f"{local[:4]} {local[4:]}"
    return local


def write_phone(p: Phone, style: int) -> str:
    """A number the way people write it: several national and international forms."""
    loc = format_local(p.local)
    if style == 0:
        return f"{p.code} {loc}"
    if style == 1:
        return f"{p.code}{p.local}"
    if style == 2:
        return f"+44 {p.code[1:]} {loc}"
    if style == 3:
        return f"+44 (0){p.code[1:]} {p.local}"
    if style == 4:
        return f"({p.code}) {loc}"
    if style == 5:
        return f"+44{p.code[1:]}{p.local}"
    if style == 6:
        return f"{p.code}-{p.local}"
    return f"0044 {p.code[1:]} {loc}"


_EMAIL_STYLES = (
    ("g.f", 30),
    ("gf", 10),
    ("g_f", 4),
    ("g.fNN", 12),
    ("gfNN", 8),
    ("if", 8),
    ("i.f", 4),
    ("gYY", 5),
    ("g.fYYYY", 3),
    ("f.g", 3),
    ("fi", 3),
    ("nickNN", 5),
    ("g.i", 2),
    ("gfiNN", 2),
)
_STYLE_NAMES = [s for s, _ in _EMAIL_STYLES]


def local_part(rng: random.Random, given: str, family: str, birth_year: int, style: str) -> str:
    g = _slug(given)
    f = family.lower().replace("'", "").replace(" ", "")
    if "-" in f and rng.random() < 0.6:
        f = f.replace("-", "")
    nn = str(rng.randint(1, 99))
    if style == "g.f":
        return f"{g}.{f}"
    if style == "gf":
        return f"{g}{f}"
    if style == "g_f":
        return f"{g}_{f}"
    if style == "g.fNN":
        return f"{g}.{f}{nn}"
    if style == "gfNN":
        return f"{g}{f}{nn}"
    if style == "if":
        return f"{g[0]}{f}"
    if style == "i.f":
        return f"{g[0]}.{f}"
    if style == "gYY":
        return f"{g}{birth_year % 100:02d}"
    if style == "g.fYYYY":
        return f"{g}.{f}{birth_year}"
    if style == "f.g":
        return f"{f}.{g}"
    if style == "fi":
        return f"{f}{g[0]}"
    if style == "nickNN":
        return f"{NICKNAMES.get(g, g)}{f[0]}{nn}"
    if style == "g.i":
        return f"{g}.{f[0]}"
    return f"{g}{f[0]}{nn}"


class _Gen:
    """The state of one generation run."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.seed = seed
        self.rng = random.Random(seed)
        self.np = np.random.default_rng(seed)
        self.pools = Pools.build(seed)
        self.emails: set[str] = set()
        self.numbers: set[str] = set()
        self.faxes: dict[str, list[tuple[str, int]]] = defaultdict(list)
        self.domains: set[str] = set()
        self.places: set[tuple[int, int, int]] = set()
        self.streets: list[Street] = []
        self.town_streets: list[list[int]] = [[] for _ in TOWNS]
        self.town_street_cw: list[list[float]] = [[] for _ in TOWNS]
        p = self.pools
        self._male = _Stream(self.np, p.male, p.male_w)
        self._female = _Stream(self.np, p.female, p.female_w)
        self._family = _Stream(self.np, p.family, p.family_w)
        self.webmail = _Stream(self.np, p.webmail, p.webmail_w)
        self.style = _Stream(self.np, _STYLE_NAMES, [w for _, w in _EMAIL_STYLES])
        self.town = _Stream(self.np, [str(i) for i in range(len(TOWNS))], [t[6] for t in TOWNS])
        self.phone_style = _Stream(self.np, list("01234567"), [50, 15, 10, 5, 5, 7, 4, 4])
        self.fax_style = _Stream(self.np, list("01234567"), [55, 10, 13, 7, 5, 5, 3, 2])
        self.ods: set[str] = set()
        self.used_inward: set[str] = set()

    # -- names ---------------------------------------------------------------
    def given(self, gender: str) -> str:
        return self._male() if gender == "male" else self._female()

    def family(self) -> str:
        return self._family()

    # -- places ----------------------------------------------------------------
    def make_streets(self, households: int) -> None:
        rng = self.rng
        total_w = sum(t[6] for t in TOWNS)
        types = [t for t, _ in STREET_TYPES]
        types_cw = list(np.cumsum([w for _, w in STREET_TYPES]))
        for ti, (_town, _county, area, districts, _code, _digits, w) in enumerate(TOWNS):
            want = max(8, round(households * w / total_w / 30))
            names_here: set[tuple[str, str]] = set()
            for _ in range(want):
                district = f"{area}{rng.randint(1, districts)}"
                for _try in range(20):
                    if rng.random() < 0.25:
                        name = rng.choice(COMMON_STREETS)
                    else:
                        word = rng.choice(self.pools.street_words)
                        name = f"{word} {rng.choices(types, cum_weights=types_cw)[0]}"
                    if (name, district) not in names_here:
                        break
                names_here.add((name, district))
                houses = int(min(240, max(6, rng.lognormvariate(3.6, 0.7))))
                inwards = []
                for _b in range((houses - 1) // 16 + 1):
                    for _try in range(30):
                        inward = rng.choice(self.pools.inwards)
                        if f"{district} {inward}" not in self.used_inward:
                            break
                    self.used_inward.add(f"{district} {inward}")
                    inwards.append(inward)
                self.town_streets[ti].append(len(self.streets))
                self.streets.append(
                    Street(name, ti, district, houses, rng.random() < 0.12, inwards)
                )
            self.town_street_cw[ti] = list(
                np.cumsum([self.streets[s].houses for s in self.town_streets[ti]])
            )

    def pick_town(self) -> int:
        return int(self.town())

    def place(self, town: int, occupy: bool = True) -> Addr:
        """A home on a street of `town`, free unless the street has flats."""
        rng = self.rng
        for _try in range(8):
            s = rng.choices(self.town_streets[town], cum_weights=self.town_street_cw[town])[0]
            st = self.streets[s]
            house = rng.randint(1, st.houses)
            flat = rng.randint(1, 12) if st.flats else 0
            if (s, house, flat) not in self.places:
                break
        if occupy:
            self.places.add((s, house, flat))
        name, city, county = st.name, TOWNS[town][0], TOWNS[town][1]
        r = rng.random()
        if flat:
            if r < 0.5:
                lines: tuple[str, ...] = (f"Flat {flat}", f"{house} {name}")
            else:
                b = f"{name.split()[0]} {rng.choice(BUILDINGS)}"
                lines = (f"Flat {flat}, {b}", f"{house} {name}")
        elif r < 0.015 and not name.startswith("The "):
            lines = (rng.choice(HOUSE_NAMES), name)
            house = 0
        else:
            lines = (f"{house} {name}",)
        return Addr(lines, city, st.postcode(max(house, 1)), county, s, house, flat)

    # -- contact details -------------------------------------------------------
    def phone(self, town: int | None, mobile: bool) -> Phone:
        rng = self.rng
        for _ in range(10):
            if mobile:
                code = f"07{rng.choice('123459')}{rng.randrange(100):02d}"
                if code.startswith(("0745", "0746", "0752", "0756", "0762")):
                    continue
                p = Phone(code, f"{rng.randrange(10**6):06d}")
            else:
                t = TOWNS[town if town is not None else self.pick_town()]
                p = Phone(t[4], _local_number(rng, t[4], t[5]))
            if p.e164 not in self.numbers:
                break
        self.numbers.add(p.e164)
        p.written = write_phone(p, int(self.phone_style()))
        return p

    def fax(self, town: int, near: Phone | None = None) -> Phone:
        """A valid fax line in `town`; `near` puts it in the same block of 100 (a DDI)."""
        rng = self.rng
        t = TOWNS[town]
        for _ in range(50):
            if near is not None:
                local = near.local[:-2] + f"{rng.randint(0, 99):02d}"
            else:
                local = _local_number(rng, t[4], t[5])
            p = Phone(t[4], local)
            if p.e164 in self.numbers:
                continue
            if phonenumbers.is_valid_number(phonenumbers.parse(p.national, "GB")):
                break
        self.numbers.add(p.e164)
        p.written = write_phone(p, int(self.fax_style()))
        return p

    def email(self, given: str, family: str, birth_year: int, domain: str | None = None) -> str:
        """A unique address in the styles people choose (digits added on collision)."""
        rng = self.rng
        if domain is None:
            r = rng.random()
            if r < 0.02:
                domain = rng.choice(WORK_DOMAINS)
            elif r < 0.045:
                f = _slug(family)
                domain = rng.choice(
                    (f"{f}.me.uk", f"{f}family.co.uk", f"{_slug(given)}{f}.co.uk", f"the{f}s.com")
                )
            else:
                domain = self.webmail()
        style = self.style()
        own = domain.endswith((".me.uk", "family.co.uk", "s.com")) or (
            domain.endswith(".co.uk") and _slug(family) in domain
        )
        if own and rng.random() < 0.7:
            base = _slug(given)
        else:
            base = local_part(rng, given, family, birth_year, style)
        addr = f"{base}@{domain}"
        k = 0
        while addr in self.emails:
            k += 1
            if k < 4:
                style = self.style()
                base2 = local_part(rng, given, family, birth_year, style)
            else:
                base2 = f"{base}{rng.randint(1, 999 if k < 8 else 99999)}"
            addr = f"{base2}@{domain}"
        self.emails.add(addr)
        self.domains.add(domain)
        return addr

    def nhs_email(self, given: str, family: str) -> str:
        """NHSmail style: firstname.lastname, then firstname.lastname1, 2, ..."""
        g, f = _slug(given), family.lower().replace("'", "").replace(" ", "")
        addr = f"{g}.{f}@nhs.net"
        k = 0
        while addr in self.emails:
            k += 1
            addr = f"{g}.{f}{k}@nhs.net"
        self.emails.add(addr)
        return addr

    def unique_email(self, addr: str) -> str:
        local, _, domain = addr.partition("@")
        k = 0
        while addr in self.emails:
            k += 1
            addr = f"{local}{k}@{domain}"
        self.emails.add(addr)
        self.domains.add(domain)
        return addr

    def ods_code(self, hospital: bool) -> str:
        rng = self.rng
        while True:
            if hospital:
                code = (
                    "R"
                    + rng.choice("ABCDEFGHJKLMNPQRTVWXY")
                    + rng.choice("0123456789ABCDEFGHJKLMNPQRTVWXY")
                    + f"{rng.randint(1, 99):02d}"
                )
            else:
                code = rng.choice("ABCDEFGHJKLMNPY") + f"{rng.randint(81000, 89999)}"
            if code not in self.ods:
                self.ods.add(code)
                return code


def _counts(n: int) -> tuple[int, int, int, int]:
    """(organisations, practitioners, roles, patients + contacts) for n entries."""
    orgs = max(4, round(n * 0.004))
    practitioners = max(6, round(n * 0.022))
    roles = max(8, round(n * 0.025))
    return orgs, practitioners, roles, n - orgs - practitioners - roles


def build_world(n: int, seed: int = 1) -> World:
    """Generate a directory of about `n` entries (deterministic for a seed)."""
    g = _Gen(n, seed)
    rng = g.rng
    n_orgs, n_pract, n_roles, n_people = _counts(n)
    g.make_streets(max(200, int(n_people / 2.3)))

    # -- organisations ---------------------------------------------------------
    orgs: list[Org] = []
    n_hosp = max(1, round(n_orgs * 0.15))
    trust_of_town: dict[int, str] = {}
    for k in range(n_orgs):
        hospital = k < n_hosp
        town = g.pick_town() if k >= len(TOWNS) or hospital else k % len(TOWNS)
        tname = TOWNS[town][0]
        addr = g.place(town)
        street = g.streets[addr.street].name
        if hospital:
            if town not in trust_of_town:
                slug = _slug(tname) + (TOWNS[town][2].lower() if tname == "London" else "")
                trust_of_town[town] = rng.choice(
                    (f"{slug[:8]}th", f"{slug[:7]}hospitals", f"{slug[:6]}nhs")
                )
            trust = trust_of_town[town]
            name = rng.choice(
                (
                    f"{tname} General Hospital",
                    f"St {rng.choice(SAINTS)} Hospital",
                    f"{tname} Royal Infirmary",
                    f"{street.split()[0]} Community Hospital",
                    f"{tname} University Hospital",
                )
            )
            addr = Addr((street,), addr.city, addr.postcode, addr.county, addr.street, 0, 0)
            email = g.unique_email(
                rng.choice((f"{trust}.referrals@nhs.net", f"referrals@{trust}.nhs.uk"))
            )
            trust_domain = f"{trust}.nhs.uk"
            g.domains.add(trust_domain)
        else:
            style = rng.random()
            if style < 0.35:
                name = f"{street} Surgery"
            elif style < 0.6:
                name = f"{street.split()[0]} Medical Centre"
            elif style < 0.75:
                name = f"The {street.split()[0]} Practice"
            elif style < 0.9:
                name = (
                    f"{tname} {rng.choice(('Health Centre', 'Family Practice', 'Group Practice'))}"
                )
            else:
                name = f"Dr {g.family()} and Partners"
            trust_domain = ""
            email = ""  # after the ODS code
        ods = g.ods_code(hospital)
        if not hospital:
            slug = _slug(name.replace("Surgery", "").replace("Medical Centre", ""))[:18]
            email = g.unique_email(
                rng.choice(
                    (f"{slug}.practice@nhs.net", f"gp.{ods.lower()}@nhs.net", f"{slug}@nhs.net")
                )
            )
        fax = g.fax(town)
        phone = Phone(fax.code, fax.local[:-2] + f"{(int(fax.local[-2:]) + 50) % 100:02d}")
        if phone.e164 in g.numbers:
            phone = g.phone(town, mobile=False)
        else:
            g.numbers.add(phone.e164)
            phone.written = write_phone(phone, 0)
        o = Org(
            _uuid(rng),
            ods,
            name,
            "hospital" if hospital else "gp",
            town,
            addr,
            fax,
            phone,
            email,
            trust_domain=trust_domain,
        )
        g.faxes[fax.e164].append(("org", k))
        if rng.random() < 0.06 or k == 1:
            o.old_fax = g.fax(town)
            g.faxes[o.old_fax.e164].append(("org_old", k))
        orgs.append(o)
    gps = [i for i, o in enumerate(orgs) if o.kind == "gp"]
    hospitals = [i for i, o in enumerate(orgs) if o.kind == "hospital"]
    gps_in_town: dict[int, list[int]] = defaultdict(list)
    for i in gps:
        gps_in_town[orgs[i].town].append(i)

    # -- practitioners and roles -------------------------------------------------
    practitioners: list[Practitioner] = []
    roles: list[Role] = []
    gmc_base = 2_000_000 + rng.randint(0, 3_000_000)
    assignments: list[tuple[int, int]] = []  # (practitioner, organisation) per role
    for k in range(n_pract):
        gender = rng.choice(("male", "female"))
        given = g.given(gender)
        family = g.family()
        pool = hospitals if k % 3 == 0 else gps
        org = pool[k % len(pool)] if k < len(pool) * 2 else rng.choice(pool)
        o = orgs[org]
        if o.kind == "hospital" and rng.random() < 0.45:
            fam = family.lower().replace("'", "").replace(" ", "")
            email = g.unique_email(f"{_slug(given)}.{fam}@{o.trust_domain}")
        else:
            email = g.nhs_email(given, family)
        prefix = "Dr" if o.kind == "gp" or rng.random() < 0.7 else rng.choice(("Mr", "Ms", "Prof"))
        practitioners.append(
            Practitioner(_uuid(rng), (given,), family, prefix, email, str(gmc_base + k * 7))
        )
        assignments.append((k, org))
    # second roles: a GP at two practices, a consultant at two sites
    while len(assignments) < n_roles:
        k = rng.randrange(len(practitioners))
        pool = hospitals if k % 3 == 0 else gps
        assignments.append((k, rng.choice(pool)))
    dept_mail: dict[tuple[int, str], str] = {}
    for k, org in assignments[:n_roles]:
        o = orgs[org]
        if o.kind == "hospital":
            spec = rng.choice(SPECIALTIES)
            title = "Consultant"
            r = rng.random()
            fax = g.fax(o.town, near=o.fax) if r < 0.6 else (o.fax if r < 0.8 else None)
            key = (org, spec)
            if key not in dept_mail:
                dept_mail[key] = g.unique_email(
                    f"{_slug(spec)}.{o.trust_domain.split('.')[0]}@nhs.net"
                )
            email = dept_mail[key] if rng.random() < 0.5 else None
        else:
            spec = "General Practice"
            title = "General Practitioner"
            r = rng.random()
            fax = g.fax(o.town, near=o.fax) if r < 0.45 else (o.fax if r < 0.65 else None)
            pr = practitioners[k]
            email = (
                g.unique_email(f"{_slug(pr.family)}.{o.ods.lower()}@nhs.net")
                if rng.random() < 0.25
                else None
            )  # a clinician's mailbox at the practice
        ri = len(roles)
        roles.append(Role(_uuid(rng), k, org, title, spec, fax, email))
        if fax is not None and fax is not o.fax:
            g.faxes[fax.e164].append(("role", ri))
        practitioners[k].roles.append(ri)
        o.roles.append(ri)
    gp_roles: dict[int, list[int]] = defaultdict(list)
    for ri, r in enumerate(roles):
        if orgs[r.org].kind == "gp":
            gp_roles[r.org].append(ri)

    # -- patients in households --------------------------------------------------
    patients: list[Patient] = []
    households: list[list[int]] = []
    year = AS_OF.year
    people = 0

    def new_patient(
        gender: str, family: str, age: int, household: int, addr: Addr, town: int
    ) -> Patient:
        given = [g.given(gender)]
        if age >= 16 and rng.random() < 0.3:
            given.append(g.given(gender))
        if age < 16:
            prefix = "" if rng.random() < 0.7 else ("Master" if gender == "male" else "Miss")
        elif rng.random() < 0.01:
            prefix = "Dr"
        elif gender == "male":
            prefix = "Mr"
        else:
            prefix = rng.choices(("Mrs", "Ms", "Miss"), cum_weights=(5, 8, 10))[0]
        by = year - age
        p = Patient("", tuple(given), family, prefix, gender, by, household, addr)
        if age >= 13 and rng.random() < (0.85 if age >= 18 else 0.4):
            p.email = g.email(given[0], family, by)
            if rng.random() < 0.05:
                p.old_email = g.email(given[0], family, by)
        if rng.random() < 0.8:
            p.phone = g.phone(town, mobile=age >= 13 and rng.random() < 0.75)
        if rng.random() < 0.08:
            p.old_address = g.place(g.pick_town() if rng.random() < 0.3 else town, occupy=False)
            p.old_address_use = "old" if rng.random() < 0.5 else "home"
        return p

    while people < n_people:
        h = len(households)
        town = g.pick_town()
        addr = g.place(town)
        r = rng.random()
        fam = g.family()
        members: list[Patient] = []
        if r < 0.30:  # single adult
            age = int(rng.triangular(18, 98, 45))
            members.append(new_patient(rng.choice(("male", "female")), fam, age, h, addr, town))
        elif r < 0.60:  # couple
            age = int(rng.triangular(22, 95, 55))
            members.append(new_patient("male", fam, age, h, addr, town))
            fam2 = fam if rng.random() < 0.7 else g.family()
            age2 = max(18, age + rng.randint(-6, 6))
            members.append(new_patient("female", fam2, age2, h, addr, town))
        elif r < 0.90:  # family
            age = rng.randint(26, 55)
            members.append(new_patient("male", fam, age, h, addr, town))
            fam2 = fam if rng.random() < 0.75 else g.family()
            members.append(
                new_patient("female", fam2, max(20, age + rng.randint(-5, 5)), h, addr, town)
            )
            for _ in range(rng.choice((1, 1, 2, 2, 2, 3))):
                kid = rng.randint(0, min(17, age - 18))
                members.append(new_patient(rng.choice(("male", "female")), fam, kid, h, addr, town))
        elif r < 0.97:  # single parent
            age = rng.randint(20, 55)
            members.append(new_patient("female", fam, age, h, addr, town))
            for _ in range(rng.choice((1, 2, 2, 3))):
                kid = rng.randint(0, min(17, age - 18))
                members.append(new_patient(rng.choice(("male", "female")), fam, kid, h, addr, town))
        else:  # shared house
            for _ in range(rng.randint(2, 4)):
                members.append(
                    new_patient(
                        rng.choice(("male", "female")),
                        g.family(),
                        rng.randint(19, 35),
                        h,
                        addr,
                        town,
                    )
                )
        # a GP practice in the town (or a neighbouring one)
        local = gps_in_town.get(town) or gps
        org = rng.choice(local)
        idx = []
        for p in members:
            p.gp_org = org
            if gp_roles.get(org) and rng.random() < 0.4:
                p.gp_ref = f"PractitionerRole/{roles[rng.choice(gp_roles[org])].id}"
            else:
                p.gp_ref = f"Organization/{orgs[org].id}"
            idx.append(len(patients))
            patients.append(p)
        households.append(idx)
        people += len(members)
        # next of kin
        adults = [i for i in idx if year - patients[i].birth_year >= 18]
        for i in idx:
            p = patients[i]
            age = year - p.birth_year
            c: Contact | None = None
            if age < 16 and adults and rng.random() < 0.2:
                j = rng.choice(adults)
                par = patients[j]
                c = Contact(
                    par.given[:1],
                    par.family,
                    par.prefix,
                    "Mother" if par.gender == "female" else "Father",
                    par.email,
                    par.phone,
                    addr,
                    j,
                )
            elif age >= 75 and rng.random() < 0.3:
                others = [j for j in adults if j != i]
                if others and rng.random() < 0.4:
                    sp = patients[others[0]]
                    c = Contact(
                        sp.given[:1],
                        sp.family,
                        sp.prefix,
                        "Wife" if sp.gender == "female" else "Husband",
                        sp.email,
                        sp.phone,
                        addr,
                        others[0],
                    )
                else:
                    cg = rng.choice(("male", "female"))
                    cf = p.family if rng.random() < 0.6 else g.family()
                    cby = p.birth_year + rng.randint(22, 38)
                    ctown = town if rng.random() < 0.6 else g.pick_town()
                    cgiven = (g.given(cg),)
                    cemail = g.email(cgiven[0], cf, cby) if rng.random() < 0.8 else None
                    c = Contact(
                        cgiven,
                        cf,
                        "Mr" if cg == "male" else "Mrs",
                        "Son" if cg == "male" else "Daughter",
                        cemail,
                        g.phone(ctown, mobile=True) if rng.random() < 0.9 else None,
                        g.place(ctown),
                    )
            elif 18 <= age < 75 and rng.random() < 0.04:
                others = [j for j in adults if j != i]
                if others:
                    sp = patients[others[0]]
                    c = Contact(
                        sp.given[:1],
                        sp.family,
                        sp.prefix,
                        "Partner",
                        sp.email,
                        sp.phone,
                        addr,
                        others[0],
                    )
            if c is not None:
                p.contacts.append(c)
                people += 1

    # -- identifiers --------------------------------------------------------------
    want = len(patients)
    bases = np.unique(
        np.concatenate(
            [
                g.np.integers(400_000_000, 499_999_999, size=want + want // 3 + 16),
                g.np.integers(600_000_000, 708_800_000, size=want // 2 + 16),
            ]
        )
    )
    g.np.shuffle(bases)
    digits = np.stack([(bases // 10**k) % 10 for k in range(8, -1, -1)], axis=1)
    total = digits @ np.arange(10, 1, -1)
    check = 11 - total % 11
    check[check == 11] = 0
    ok = check != 10
    nhs = (bases[ok] * 10 + check[ok])[:want]
    assert len(nhs) == want, "not enough NHS numbers drawn"
    for p, num in zip(patients, nhs.tolist(), strict=True):
        p.nhs = str(num)
        p.id = _uuid(rng)

    return World(
        n=n,
        seed=seed,
        patients=patients,
        households=households,
        orgs=orgs,
        practitioners=practitioners,
        roles=roles,
        streets=g.streets,
        emails=g.emails,
        numbers=g.numbers,
        faxes=dict(g.faxes),
        domains=g.domains,
        places=g.places,
        pools=g.pools,
    )


# -- FHIR ----------------------------------------------------------------------------


def _ended(rng: random.Random) -> dict[str, str]:
    y = rng.randint(2012, AS_OF.year - 1)
    return {
        "start": f"{y - rng.randint(2, 9)}-{rng.randint(1, 12):02d}-01",
        "end": f"{y}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }


def _fhir_address(
    a: Addr, use: str = "home", period: dict[str, str] | None = None
) -> dict[str, object]:
    out: dict[str, object] = {"use": use, "line": list(a.lines), "city": a.city}
    if a.county:
        out["district"] = a.county
    out["postalCode"] = a.postcode
    out["country"] = "GB"
    if period:
        out["period"] = period
    return out


def _telecom(
    system: str, value: str, use: str, period: dict[str, str] | None = None
) -> dict[str, object]:
    t: dict[str, object] = {"system": system, "value": value, "use": use}
    if period:
        t["period"] = period
    return t


def _human(given: tuple[str, ...], family: str, prefix: str) -> dict[str, object]:
    n: dict[str, object] = {"use": "official", "family": family, "given": list(given)}
    if prefix:
        n["prefix"] = [prefix]
    return n


def patient_resource(p: Patient, rng: random.Random) -> dict[str, object]:
    telecom = []
    if p.email:
        telecom.append(_telecom("email", p.email, "home"))
    if p.old_email:
        telecom.append(_telecom("email", p.old_email, "home", _ended(rng)))
    if p.phone:
        telecom.append(
            _telecom(
                "phone", p.phone.written, "mobile" if p.phone.code.startswith("07") else "home"
            )
        )
    address = [_fhir_address(p.address)]
    if p.old_address:
        if p.old_address_use == "old":
            address.append(_fhir_address(p.old_address, "old", _ended(rng)))
        else:
            address.append(_fhir_address(p.old_address, "home", _ended(rng)))
    res: dict[str, object] = {
        "resourceType": "Patient",
        "id": p.id,
        "identifier": [{"system": NHS_SYSTEM, "value": p.nhs}],
        "active": True,
        "name": [_human(p.given, p.family, p.prefix)],
        "telecom": telecom,
        "gender": p.gender,
        "birthDate": f"{p.birth_year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "address": address,
        "generalPractitioner": [{"reference": p.gp_ref}],
    }
    if p.contacts:
        contacts = []
        for c in p.contacts:
            ct: dict[str, object] = {
                "relationship": [
                    {
                        "coding": [{"system": V2_0131, "code": "N", "display": "Next-of-Kin"}],
                        "text": c.relationship,
                    }
                ],
                "name": {"family": c.family, "given": list(c.given)}
                | ({"prefix": [c.prefix]} if c.prefix else {}),
            }
            tel = []
            if c.email:
                tel.append(_telecom("email", c.email, "home"))
            if c.phone:
                tel.append(_telecom("phone", c.phone.written, "mobile"))
            if tel:
                ct["telecom"] = tel
            if c.address:
                ct["address"] = _fhir_address(c.address)
            contacts.append(ct)
        res["contact"] = contacts
    return res


def org_resource(o: Org) -> dict[str, object]:
    telecom = [
        _telecom("phone", o.phone.written, "work"),
        _telecom("fax", o.fax.written, "work"),
        _telecom("email", o.email, "work"),
    ]
    if o.old_fax:
        telecom.append(_telecom("fax", o.old_fax.written, "work", {"end": "2021-03-31"}))
    return {
        "resourceType": "Organization",
        "id": o.id,
        "identifier": [{"system": ODS_SYSTEM, "value": o.ods}],
        "active": True,
        "type": [{"text": "GP practice" if o.kind == "gp" else "NHS trust site"}],
        "name": o.name,
        "telecom": telecom,
        "address": [_fhir_address(o.address, "work")],
    }


def practitioner_resource(p: Practitioner) -> dict[str, object]:
    return {
        "resourceType": "Practitioner",
        "id": p.id,
        "identifier": [{"system": GMC_SYSTEM, "value": p.gmc}],
        "active": True,
        "name": [_human(p.given, p.family, p.prefix)],
        "telecom": [_telecom("email", p.email, "work")],
    }


def role_resource(r: Role, w: World) -> dict[str, object]:
    telecom = []
    if r.fax:
        telecom.append(_telecom("fax", r.fax.written, "work"))
    if r.email:
        telecom.append(_telecom("email", r.email, "work"))
    res: dict[str, object] = {
        "resourceType": "PractitionerRole",
        "id": r.id,
        "active": True,
        "practitioner": {"reference": f"Practitioner/{w.practitioners[r.practitioner].id}"},
        "organization": {"reference": f"Organization/{w.orgs[r.org].id}"},
        "code": [{"text": r.title}],
        "specialty": [{"text": r.specialty}],
    }
    if telecom:
        res["telecom"] = telecom
    return res


def write_ndjson(w: World, path: Path) -> None:
    """Write the world as FHIR NDJSON (atomically: a partial file is never left)."""
    rng = random.Random(w.seed + 7)
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    dumps = orjson.dumps
    nl = orjson.OPT_APPEND_NEWLINE
    with tmp.open("wb") as f:
        buf: list[bytes] = []
        for o in w.orgs:
            buf.append(dumps(org_resource(o), option=nl))
        for pr in w.practitioners:
            buf.append(dumps(practitioner_resource(pr), option=nl))
        for r in w.roles:
            buf.append(dumps(role_resource(r, w), option=nl))
        for p in w.patients:
            buf.append(dumps(patient_resource(p, rng), option=nl))
            if len(buf) >= 20000:
                f.write(b"".join(buf))
                buf.clear()
        f.write(b"".join(buf))
    os.replace(tmp, path)


def directory_file(n: int, seed: int = 1, out_dir: Path = OUT_DIR) -> Path:
    return out_dir / f"directory-{n}-s{seed}-v{GENERATOR_VERSION}.ndjson"


def ensure_directory(
    n: int, seed: int = 1, out_dir: Path = OUT_DIR, *, quiet: bool = False
) -> tuple[World, Path]:
    """The world for (n, seed), and its NDJSON file (written only if missing)."""
    t0 = time.perf_counter()
    w = build_world(n, seed)
    t1 = time.perf_counter()
    path = directory_file(n, seed, out_dir)
    if not path.exists():
        write_ndjson(w, path)
        if not quiet:
            print(
                f"generated {w.entries:,} entries in {t1 - t0:.1f} s, wrote {path} "
                f"({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t1:.1f} s"
            )
    elif not quiet:
        print(f"generated {w.entries:,} entries in {t1 - t0:.1f} s, reusing {path}")
    return w, path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=100_000, help="directory entries")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--sends", type=int, default=0, help="print this many labelled sends per kind")
    args = ap.parse_args(argv)
    w, path = ensure_directory(args.size, args.seed, args.out)
    kinds = defaultdict(int)
    for p in w.patients:
        kinds["patient"] += 1
        kinds["contact"] += len(p.contacts)
    print(
        f"{path}: {dict(kinds)} practitioners={len(w.practitioners)} roles={len(w.roles)} "
        f"organisations={len(w.orgs)} emails={len(w.emails)} numbers={len(w.numbers)}"
    )
    if args.sends:
        from bench.sends import make_sends

        for s in make_sends(w, per_kind=args.sends, seed=args.seed):
            print(orjson.dumps(s.as_dict()).decode())


if __name__ == "__main__":
    main()
