"""Reading messages: the quick path and the careful path agree on what checks see."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from sendguard.core.message import parse_message
from sendguard.core.models import Header
from sendguard.core.normalise.nhs import find_nhs_numbers


def _msg(headers: str, body: str = "Hello\r\n") -> bytes:
    return (headers.replace("\n", "\r\n") + "\r\n" + body).encode("utf-8")


def test_plain_message() -> None:
    p = parse_message(
        _msg(
            "From: Dr A <a@nhs.net>\nTo: Jane Smith <jane@x.org>, bob@y.org\n"
            "Cc: =?utf-8?q?Smith=2C_Jane?= <j2@x.org>\nBcc: c@z.org (Chris Jones)\n"
            "Subject: =?utf-8?b?UmVzdWx0cyDinJM=?= for\n you\n"
            "Message-ID: <m1@x>\nX-Sendguard-Patient: 9434765919, 9434765870\n"
            "Content-Type: text/plain; charset=utf-8\n",
            "NHS 943 476 5919\r\n",
        )
    )
    assert [(r.header, r.display_name, r.address) for r in p.recipients] == [
        (Header.TO, "Jane Smith", "jane@x.org"),
        (Header.TO, "", "bob@y.org"),
        (Header.CC, "Smith, Jane", "j2@x.org"),
        (Header.BCC, "Chris Jones", "c@z.org"),
    ]
    assert p.sender == "a@nhs.net"
    assert p.subject == "Results ✓ for you"
    assert p.message_id == "<m1@x>"
    assert p.patients == ("9434765919", "9434765870")
    assert p.texts == ("NHS 943 476 5919\r\n",)
    assert p.problems == ()


def test_raw_utf8_headers_and_comments() -> None:
    p = parse_message(
        _msg("From: jdöe@mächine.example\nTo: Märy Smith (home) <märy@exämple.net>\n")
    )
    assert [(r.display_name, r.address) for r in p.recipients] == [
        ("Märy Smith", "märy@exämple.net")
    ]
    assert p.sender == "jdöe@mächine.example"


def test_attachments_and_text_parts() -> None:
    m = EmailMessage()
    m["To"] = "jane@x.org"
    m["Subject"] = "letters"
    m.set_content("Résumé attached\n", charset="iso-8859-1", cte="quoted-printable")
    m.add_alternative("<p>Dear <b>Jane</b> &amp; family</p><script>x()</script>", subtype="html")
    m.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="Lettre-é 1.pdf")
    m.add_attachment("9434765919\n", filename="notes.txt")  # a text attachment is not text
    p = parse_message(m.as_bytes())
    assert p.attachment_names == ("Lettre-é 1.pdf", "notes.txt")
    assert p.texts[0] == "Résumé attached\n"
    assert " ".join(p.texts[1].split()) == "Dear Jane & family"
    assert p.problems == ()


def test_unknown_charset_is_read_as_utf8() -> None:
    p = parse_message(
        _msg("To: a@x.org\nContent-Type: text/plain; charset=x-nonsense\n", "caf\u00e9\r\n")
    )
    assert p.texts == ("café\r\n",)


def test_folded_boundary_takes_the_careful_path() -> None:
    raw = _msg(
        'To: a@x.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="simple\n'
        ' boundary"\n',
        "--simple boundary\r\n\r\nNHS 9434765919\r\n--simple boundary--\r\n",
    )
    p = parse_message(raw)
    assert [find_nhs_numbers(t) for t in p.texts] == [["9434765919"]]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"To: <<<>>>@@\r\n\r\n",
        b"Content-Type: multipart/mixed\r\n\r\nno boundary",
        b"Content-Type: text/plain; charset=\xff\r\n\r\n\xff\xfe",
    ],
)
def test_never_raises(raw: bytes) -> None:
    parse_message(raw)


def test_agrees_with_the_standard_reading_on_clean_mail() -> None:
    """Addresses, names and subject as the standard library's modern policy reads them."""
    raw = _msg(
        'To: "Smith, Jane" <jane@x.org>, =?iso-8859-1?q?Andr=E9?= <a@y.org>\n'
        "Cc: Bob <bob@y.org>\nSubject: =?utf-8?q?caf=C3=A9?= [secure]\n"
    )
    ref = BytesParser(policy=policy.default).parsebytes(raw)
    p = parse_message(raw)
    expected = [(a.display_name, a.addr_spec) for h in ("to", "cc") for a in ref[h].addresses]
    assert [(r.display_name, r.address) for r in p.recipients] == expected
    assert p.subject == str(ref["subject"])


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("943 476 5919", ["9434765919"]),
        ("943-476-5919 and 9434765870", ["9434765919", "9434765870"]),
        ("19434765919", []),
        ("1-943-476-5919", []),
        ("9434765919-1", []),
        ("letter-9434765919.pdf", ["9434765919"]),
        ("123 9434765919", ["9434765919"]),
    ],
)
def test_nhs_numbers_in_text(text: str, found: list[str]) -> None:
    assert find_nhs_numbers(text) == found


def test_a_trailing_comma_loses_no_recipient() -> None:
    p = parse_message(_msg("To: jane@x.org, bob@y.org,\nCc: undisclosed-recipients:;\n"))
    assert [r.address for r in p.recipients] == ["jane@x.org", "bob@y.org"]
    assert p.problems == ()


def test_a_header_without_a_readable_address_holds_and_hides_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A parser that gives up on a flawed header (as strict parsing does)
    must not hide the other headers' recipients, and the message is held."""
    from sendguard.core import message

    real = message._getaddresses

    def strict(value: str) -> list[tuple[str, str]]:
        return [("", "")] if "<b@y>" in value else real(value)

    monkeypatch.setattr(message, "_getaddresses", strict)
    p = parse_message(_msg("To: a@x <b@y>\nCc: carol@z.org\n"))
    assert [r.address for r in p.recipients] == ["carol@z.org"]
    assert p.problems == ("the to header has no address that can be read",)
