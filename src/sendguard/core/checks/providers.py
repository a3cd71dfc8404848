"""Email domains of common mail providers, for the domain-typo check.

`TYPO_TARGETS` are the big webmail and UK ISP domains, most used first: a
typed domain one or two slips from one of these is almost surely a slip.
`REAL_DOMAINS` are further real provider domains that must never be
"corrected" even though they sit close to a target (cox.net is not gmx.net).
Admins add their own through the rule's `extra_known_domains`; every domain
in the directory counts as real too.
"""

from __future__ import annotations

__all__ = ["REAL_DOMAINS", "TYPO_TARGETS"]

TYPO_TARGETS: tuple[str, ...] = (
    "nhs.net",
    "gmail.com",
    "hotmail.com",
    "hotmail.co.uk",
    "yahoo.co.uk",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "btinternet.com",
    "live.co.uk",
    "live.com",
    "googlemail.com",
    "aol.com",
    "sky.com",
    "virginmedia.com",
    "ntlworld.com",
    "talktalk.net",
    "blueyonder.co.uk",
    "msn.com",
    "me.com",
    "outlook.co.uk",
    "ymail.com",
    "protonmail.com",
    "tiscali.co.uk",
    "aol.co.uk",
)

REAL_DOMAINS: tuple[str, ...] = (
    # UK providers and former ISPs
    "btopenworld.com", "bt.com", "virgin.net", "tesco.net", "plus.com", "freeserve.co.uk",
    "lineone.net", "o2.co.uk", "orange.net", "wanadoo.co.uk", "madasafish.com", "supanet.com",
    "onetel.com", "eclipse.co.uk", "zen.co.uk", "talk21.com", "fsmail.net", "uwclub.net",
    "postmaster.co.uk", "waitrose.com", "gn.apc.org", "mac.com", "rocketmail.com",
    "yahoo.fr", "yahoo.de", "yahoo.es", "yahoo.it", "yahoo.ie", "yahoo.in", "yahoo.ca",
    "yahoo.com.au", "hotmail.fr", "hotmail.de", "hotmail.it", "hotmail.es", "live.fr",
    "live.ie", "live.de", "outlook.fr", "outlook.de", "outlook.ie", "windowslive.com",
    "proton.me", "pm.me", "protonmail.ch", "tutanota.com", "tuta.io", "fastmail.com",
    "fastmail.fm", "hushmail.com", "zoho.com", "zohomail.eu", "mail.com", "email.com",
    "gmx.com", "gmx.co.uk", "gmx.net", "gmx.de", "web.de", "t-online.de", "aim.com",
    # International and US providers
    "comcast.net", "verizon.net", "att.net", "sbcglobal.net", "bellsouth.net", "cox.net",
    "charter.net", "earthlink.net", "optonline.net", "juno.com", "netzero.net", "netzero.com",
    "rediffmail.com", "lycos.com", "excite.com", "inbox.com", "qq.com", "163.com", "126.com",
    "sina.com", "naver.com", "hanmail.net", "libero.it", "virgilio.it", "orange.fr", "free.fr",
    "laposte.net", "sfr.fr", "bigpond.com", "bigpond.net.au", "optusnet.com.au", "shaw.ca", "rogers.com", "sympatico.ca", "telus.net", "eircom.net",
    "yandex.com", "yandex.ru", "mail.ru",
    # Public sector
    "nhs.uk", "gov.uk", "gov.scot", "gov.wales", "police.uk", "nhs.scot", "hscni.net",
)
