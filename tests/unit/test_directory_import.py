"""Directory sources: FHIR R4 (Bundle, NDJSON) and CSV, errors, duplicates, snapshots."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from common import DEMO, TODAY
from sendguard import Action, Guard
from sendguard.core.directory import DirectoryError, Kind
from sendguard.sources import load_directory, load_or_build, load_snapshot, save_snapshot

NHS = "https://fhir.nhs.uk/Id/nhs-number"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"


def patient(pid: str, nhs: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "identifier": [{"system": NHS, "value": nhs}],
        "name": [{"family": "Smith", "given": ["Jane"]}],
        **extra,
    }


def write_ndjson(path: Path, *resources: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


def test_bundle_with_urn_uuid_and_identifier_references(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0001",
                "resource": {
                    "resourceType": "Organization",
                    "identifier": [{"system": ODS, "value": "B82005"}],
                    "name": "Leeds Road Practice",
                    "telecom": [{"system": "fax", "value": "0113 496 0000"}],
                },
            },
            {
                "fullUrl": "urn:uuid:0002",
                "resource": {
                    "resourceType": "Practitioner",
                    "name": [{"family": "Jones", "given": ["Alice"]}],
                },
            },
            {
                "fullUrl": "urn:uuid:0003",
                "resource": {
                    "resourceType": "PractitionerRole",
                    "practitioner": {"reference": "urn:uuid:0002"},
                    "organization": {"identifier": {"system": ODS, "value": "B82005"}},
                    "telecom": [{"system": "fax", "value": "0113 496 0001"}],
                },
            },
            {
                "fullUrl": "urn:uuid:0004",
                "resource": patient(
                    "p1",
                    "9434765919",
                    generalPractitioner=[{"reference": "urn:uuid:0003"}],
                    telecom=[{"system": "email", "value": "Jane.Smith@Gmail.com"}],
                ),
            },
        ],
    }
    f = tmp_path / "bundle.json"
    f.write_text(json.dumps(bundle))
    d = load_directory([f], as_of=TODAY)
    assert len(d) == 4
    jane = d.entry(d.find("9434765919")[0])
    role = d.entry(jane.gps[0])
    assert role.kind is Kind.ROLE
    assert role.family == "Jones"
    assert role.org_name == "Leeds Road Practice"
    assert d.find("ods:B82005") == list(role.organizations)
    assert d.by_email("jane.smith@gmail.com") == [jane.index]
    assert d.linked(jane.index) >= {
        jane.index,
        role.index,
        *role.organizations,
        *role.practitioners,
    }


def test_periods_old_addresses_contacts_and_related_persons(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "d.ndjson",
        patient(
            "p1",
            "9434765919",
            telecom=[
                {"system": "email", "value": "old@example.org", "period": {"end": "2020-05"}},
                {"system": "email", "value": "new@example.org"},
            ],
            address=[
                {
                    "use": "home",
                    "line": ["12 High Street"],
                    "city": "Leeds",
                    "postalCode": "LS1 1AA",
                },
                {"use": "old", "line": ["3 Park Lane"], "postalCode": "LS6 2AB"},
                {
                    "use": "home",
                    "line": ["9 Low Lane"],
                    "postalCode": "LS2 7AB",
                    "period": {"start": "2010", "end": "2015-01-01"},
                },
            ],
            contact=[
                {
                    "relationship": [{"text": "Husband"}],
                    "name": {"family": "Smith", "given": ["John"]},
                    "telecom": [{"system": "email", "value": "john@example.org"}],
                }
            ],
        ),
        {
            "resourceType": "RelatedPerson",
            "id": "r1",
            "patient": {"reference": "Patient/p1"},
            "name": [{"family": "Smith", "given": ["Amy"]}],
            "telecom": [{"system": "email", "value": "amy@example.org"}],
        },
    )
    d = load_directory([f], as_of=TODAY)
    jane = d.entry(d.find("Patient/p1")[0])
    assert [(e.address, e.current) for e in jane.emails] == [
        ("old@example.org", False),
        ("new@example.org", True),
    ]
    assert [a.current for a in jane.addresses] == [True, False, False]
    contacts = {d.entry(c).id for c in jane.contacts}
    assert contacts == {"Patient/p1#contact-0", "RelatedPerson/r1"}
    # the same directory judged on an earlier day: the 2020 address was current then
    assert d.on(date(2019, 1, 1).toordinal()).entry(jane.index).emails[0].current


@pytest.mark.parametrize(
    ("resource", "field", "message"),
    [
        (patient("p1", "9434765918"), "identifier", "Modulus 11"),
        (
            patient("p1", "9434765919", telecom=[{"system": "email", "value": "jane@@x.org"}]),
            "telecom[0]",
            "not a usable email address",
        ),
        (
            patient("p1", "9434765919", telecom=[{"system": "fax"}]),
            "telecom[0].value",
            "needs a value",
        ),
        (
            patient("p1", "9434765919", telecom=[{"system": "fax", "value": "not a number"}]),
            "telecom[0]",
            "not a usable fax number",
        ),
        (patient("p1", "9434765919", name="Jane"), "name", "expected a list"),
        (
            patient("p1", "9434765919", address=[{"line": ["x"], "period": {"end": "soon"}}]),
            "address[0].period.end",
            "not a FHIR date",
        ),
        ({"resourceType": "RelatedPerson", "id": "r1"}, "patient", "must name its patient"),
    ],
)
def test_bad_record_names_file_record_and_field(
    tmp_path: Path, resource: dict[str, Any], field: str, message: str
) -> None:
    f = write_ndjson(tmp_path / "bad.ndjson", patient("ok", "9434765870"), resource)
    with pytest.raises(DirectoryError) as info:
        load_directory([f], as_of=TODAY)
    p = info.value.problems[0]
    assert p.file == str(f)
    assert p.record in ("line 2", "Patient/p1")
    assert p.field == field
    assert message in p.message
    assert str(f) in str(info.value)


def test_malformed_json_line_is_reported_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "d.ndjson"
    f.write_text(json.dumps(patient("p1", "9434765919")) + "\n{not json\n")
    with pytest.raises(DirectoryError) as info:
        load_directory([f], as_of=TODAY)
    assert info.value.problems[0].record == "line 2"
    assert "not valid JSON" in info.value.problems[0].message


def test_missing_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(DirectoryError, match="cannot read the file"):
        load_directory([tmp_path / "absent.ndjson"], as_of=TODAY)
    (tmp_path / "x.xml").write_text("<x/>")
    with pytest.raises(DirectoryError, match="unknown file type"):
        load_directory([tmp_path / "x.xml"], as_of=TODAY)


def test_identical_duplicate_is_dropped_conflicting_one_refused(tmp_path: Path) -> None:
    same = write_ndjson(
        tmp_path / "a.ndjson", patient("p1", "9434765919"), patient("p1", "9434765919")
    )
    assert len(load_directory([same], as_of=TODAY)) == 1
    other = patient("p1", "9434765919", name=[{"family": "Jones", "given": ["Jane"]}])
    conflict = write_ndjson(tmp_path / "b.ndjson", patient("p1", "9434765919"), other)
    with pytest.raises(DirectoryError, match="conflicting duplicate of Patient/p1"):
        load_directory([conflict], as_of=TODAY)


def test_one_nhs_number_or_ods_code_on_two_entries_is_refused(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "n.ndjson", patient("p1", "9434765919"), patient("p2", "9434765919")
    )
    with pytest.raises(DirectoryError, match="NHS number is also on Patient/p1"):
        load_directory([f], as_of=TODAY)
    org = {"resourceType": "Organization", "identifier": [{"system": ODS, "value": "B1"}]}
    f = write_ndjson(tmp_path / "o.ndjson", {**org, "id": "o1"}, {**org, "id": "o2"})
    with pytest.raises(DirectoryError, match="ODS code B1 is also on"):
        load_directory([f], as_of=TODAY)


def test_unresolved_reference_is_a_warning_not_an_error(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "d.ndjson",
        patient("p1", "9434765919", generalPractitioner=[{"reference": "Organization/absent"}]),
    )
    d = load_directory([f], as_of=TODAY)
    assert len(d) == 1
    assert "Organization/absent is not in the directory" in d.warnings[0]


CSV_HEADER = (
    "id,kind,nhs_number,ods_code,title,given,family,name,email,fax,phone,"
    "previous_email,address,postcode,previous_address,previous_postcode,gp,"
    "contact_of,organization,practitioner,relationship\n"
)


def test_csv_format(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text(
        CSV_HEADER + "O1,organisation,,B82005,,,,Leeds Road Practice,leeds@nhs.net,0113 496 0000,,,"
        "1 Leeds Road|Leeds,LS1 4AP,,,,,,,\n"
        + "D1,practitioner,,,Dr,Alice,Jones,,alice.jones@nhs.net,,,,,,,,,,O1,,\n"
        + "P1,patient,943 476 5919,,Mrs,Jane,Smith,,jane@example.org;j.smith@example.org,,,"
        "jane.old@example.org,12 High Street|Leeds,LS1 1AA,3 Park Lane|Leeds,LS6 2AB,D1;B82005,"
        ",,,\n" + "C1,contact,,,Mr,John,Smith,,john@example.org,,,,,,,,,9434765919,,,Husband\n"
    )
    g = Guard.load(directory=f, as_of=TODAY)
    d = g.directory
    assert len(d) == 4
    jane = d.entry(d.find("9434765919")[0])
    assert [e.address for e in jane.emails if e.current] == [
        "jane@example.org",
        "j.smith@example.org",
    ]
    assert {d.entry(i).id for i in jane.gps} == {"D1", "O1"}
    assert {d.entry(i).id for i in jane.contacts} == {"C1"}
    assert (
        g.check_letter(
            addressee="Mrs J Smith", address="3 Park Lane, Leeds LS6 2AB", patient="P1"
        ).action
        is Action.HOLD
    )
    assert g.check_fax("0113 496 0000", intended="D1").action is Action.ALLOW


@pytest.mark.parametrize(
    ("content", "where", "field", "message"),
    [
        ("id,kind,emial\nP1,patient,x\n", "header", "emial", "unknown column"),
        ("kind\npatient\n", "header", "id", "required column"),
        ("id,kind\nP1,alien\n", "line 2", "kind", "unknown kind"),
        ("id,kind\n,patient\n", "line 2", "id", "needs an id"),
        ("id,kind\nC1,contact\n", "line 2", "contact_of", "must name the patient"),
        ("id,kind\nP1,patient,extra\n", "line 2", "", "more cells"),
    ],
)
def test_csv_errors(tmp_path: Path, content: str, where: str, field: str, message: str) -> None:
    f = tmp_path / "d.csv"
    f.write_text(content)
    with pytest.raises(DirectoryError) as info:
        load_directory([f], as_of=TODAY)
    p = info.value.problems[0]
    assert (p.file, p.record, p.field) == (str(f), where, field)
    assert message in p.message


def test_failed_reload_keeps_the_previous_directory(tmp_path: Path) -> None:
    f = write_ndjson(
        tmp_path / "d.ndjson",
        patient("p1", "9434765919", telecom=[{"system": "email", "value": "jane@example.org"}]),
    )
    g = Guard.load(directory=f, as_of=TODAY)
    before = g.directory
    write_ndjson(f, patient("p1", "9434765918"))  # invalid NHS number
    with pytest.raises(DirectoryError):
        g.reload()
    assert g.directory is before
    assert g.check_email(["jane@example.org"]).action is Action.ALLOW


def test_snapshot_round_trip_and_rebuild_on_change(tmp_path: Path) -> None:
    snap = tmp_path / "var" / "directory.sgd"
    src = tmp_path / "d.json"
    src.write_bytes(DEMO.read_bytes())
    d1 = load_or_build([src], snap, as_of=TODAY)
    assert snap.exists()
    d2 = load_or_build([src], snap, as_of=TODAY)  # mapped from the snapshot
    assert d2.keep is not None
    assert d1.keep is None
    assert [d1.entry(i) for i in range(len(d1))] == [d2.entry(i) for i in range(len(d2))]
    assert d2.near_emails("jane.smiht@gmail.com")[0].address == "jane.smith@gmail.com"
    # a change to the source invalidates the snapshot
    doc = json.loads(src.read_text())
    doc["entry"] = doc["entry"][:3]
    src.write_text(json.dumps(doc))
    os.utime(src, ns=(0, 10**18))
    d3 = load_or_build([src], snap, as_of=TODAY)
    assert len(d3) == 3
    assert d3.keep is None
    assert len(load_snapshot(snap)[0]) == 3


def test_damaged_snapshot_is_rebuilt(tmp_path: Path) -> None:
    snap = tmp_path / "directory.sgd"
    d = load_directory([DEMO], as_of=TODAY)
    save_snapshot(d, snap, {"source": {}})
    snap.write_bytes(snap.read_bytes()[:200])
    rebuilt = load_or_build([DEMO], snap, as_of=TODAY)
    assert len(rebuilt) == len(d)
    assert len(load_snapshot(snap)[0]) == len(d)  # rewritten whole


def test_a_snapshot_of_another_format_without_sources_says_how_to_rebuild(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With sources, an old snapshot is rebuilt; with none it cannot be, and
    the CLI says what to run instead of failing with a traceback."""
    from sendguard.cli import main
    from sendguard.core.directory.snapshot import MAGIC

    snap = tmp_path / "directory.sgd"
    save_snapshot(load_directory([DEMO], as_of=TODAY), snap, {"source": {}})
    snap.write_bytes(b"sendguard-directory 1\n" + snap.read_bytes()[len(MAGIC) :])
    cfg = tmp_path / "sendguard.toml"
    cfg.write_text(f'[directory]\nsnapshot = "{snap}"\n')
    with pytest.raises(SystemExit) as stop:
        main(["-c", str(cfg), "check", "fax", "0113 496 0000"])
    assert stop.value.code == 65
    err = capsys.readouterr().err
    assert "another version" in err
    assert f"--snapshot {snap}" in err
    assert "Traceback" not in err
    assert len(load_or_build([DEMO], snap, as_of=TODAY)) > 0  # with sources: rebuilt
