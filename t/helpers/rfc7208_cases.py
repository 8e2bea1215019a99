#!/usr/bin/python3
#
# rfc7208_cases.py - turn the openspf.org RFC 7208 test suite (YAML, one
# document per scenario) into the JSON that t/helpers/zone_dns.pl serves
# and t/integration/20_spf_rfc7208.t runs.
#
# The suite's zone data is written for test drivers that answer DNS
# lookups themselves; it relies on a few conventions that this script
# makes explicit so that a real DNS server can serve it (the Perl side
# has no YAML module, and the conventions belong in one place):
#
#   - "SPF" (type 99) records are also published as TXT records, unless
#     the name has an explicit TXT entry (the suite's header comment: the
#     "auto-magic duplication of SPF to TXT records"). Generated TXT
#     records come after every explicit entry of the name, so that they
#     sit behind a TIMEOUT marker like in the reference driver.
#   - "TXT: NONE" is no record at all; it only stops the duplication
#     (and so it is left out of the JSON).
#   - A bare "TIMEOUT" entry: a query for a type none of whose entries
#     came before the marker is never answered; one whose entries came
#     before it gets those entries. "TYPE: TIMEOUT" times out that type.
#   - A name with no entries exists (NODATA); a name that is not listed
#     does not (NXDOMAIN). Names are case-insensitive, without the root
#     dot.
#   - A TXT/SPF value is one character-string, or a list of them (glued
#     together by SPF, RFC 7208 3.3). A string longer than 255 octets is
#     split into 255-octet pieces, as a zone file compiler would do.
#     Strings are sent UTF-8 encoded, as the reference driver does; the
#     JSON carries them as hex so that no layer recodes them.
#
# Usage: rfc7208_cases.py SUITE.yml [OUT.json]   (stdout without OUT)
#
# SPDX-License-Identifier: ISC
#

import json
import sys

import yaml

TEXT_TYPES = ("TXT", "SPF")
NAME_TYPES = ("PTR", "CNAME")
ADDR_TYPES = ("A", "AAAA")


def norm_name(name):
    """norm_name - lower case, no root dot: the key of the zone."""
    name = str(name)
    if name.endswith(".") and name != ".":
        name = name[:-1]
    return name.lower()


def text_strings(value):
    """text_strings - the character-strings of one TXT/SPF value, hex."""
    if isinstance(value, str):
        value = [value]
    out = []
    for s in value:
        raw = str(s).encode("utf-8")
        if len(raw) == 0:
            out.append("")
            continue
        for i in range(0, len(raw), 255):
            out.append(raw[i:i + 255].hex())
    return out


def convert_entry(rtype, value):
    """convert_entry - one "TYPE: value" entry to the JSON entry form."""
    if value == "TIMEOUT":
        return {"type": rtype, "timeout": True}
    if rtype in TEXT_TYPES:
        return {"type": rtype, "strings": text_strings(value)}
    if rtype in ADDR_TYPES:
        return {"type": rtype, "address": str(value)}
    if rtype in NAME_TYPES:
        return {"type": rtype, "target": str(value)}
    if rtype == "MX":
        pref, exchange = value
        return {"type": "MX", "preference": int(pref),
                "exchange": str(exchange)}
    raise ValueError("unsupported record type %r" % rtype)


def convert_zone(zonedata):
    """convert_zone - the scenario's zone data, duplication applied."""
    zone = {}
    for name, entries in (zonedata or {}).items():
        out = []
        generated = []
        has_txt = False
        for entry in entries or []:
            if entry == "TIMEOUT":
                out.append({"type": "TIMEOUT"})
                continue
            if not isinstance(entry, dict) or len(entry) != 1:
                raise ValueError("%s: bad entry %r" % (name, entry))
            (rtype, value), = entry.items()
            rtype = str(rtype).upper()
            if rtype == "TXT":
                has_txt = True
            if value == "NONE":
                continue
            out.append(convert_entry(rtype, value))
            if rtype == "SPF" and value not in ("NONE", "TIMEOUT"):
                generated.append(convert_entry("TXT", value))
        if not has_txt:
            out.extend(generated)
        key = norm_name(name)
        # two spellings of one name: their entries add up
        zone.setdefault(key, []).extend(out)
    return zone


def as_list(result):
    return [str(r) for r in result] if isinstance(result, list) \
        else [str(result)]


def convert_test(name, t):
    """convert_test - one test case; the suite's host= is the client."""
    mailfrom = t.get("mailfrom")
    case = {
        "name": str(name),
        "description": str(t.get("description", "")).strip(),
        "spec": str(t.get("spec", "")),
        "host": str(t["host"]),
        "helo": str(t.get("helo", "")),
        "mailfrom": "" if mailfrom is None else str(mailfrom),
        # RFC 7208 2.4: with a null sender the module checks
        # postmaster@helo, still as the MAIL FROM identity
        "identity": "mailfrom",
        "results": as_list(t["result"]),
    }
    if "explanation" in t:
        case["explanation"] = str(t["explanation"])
    return case


def convert(path):
    scenarios = []
    with open(path, "rb") as fp:
        for doc in yaml.safe_load_all(fp):
            if not doc:
                continue
            scenarios.append({
                "description": str(doc["description"]),
                "zone": convert_zone(doc.get("zonedata")),
                "tests": [convert_test(n, t)
                          for n, t in (doc.get("tests") or {}).items()],
            })
    return {"source": path, "scenarios": scenarios}


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write("usage: rfc7208_cases.py SUITE.yml [OUT.json]\n")
        return 2
    data = json.dumps(convert(argv[1]), indent=1, sort_keys=True)
    if len(argv) == 3:
        with open(argv[2], "w", encoding="ascii") as fp:
            fp.write(data + "\n")
    else:
        sys.stdout.write(data + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
