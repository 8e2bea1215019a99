#!/usr/bin/python3
# make_fixtures.py - sign the dkimpy fixtures of test_dkim_verify with
# Debian's python3-dkim (an implementation independent of libopendkim).
# Run once from this directory: /usr/bin/python3 make_fixtures.py
# The keys are rsa2048.pem and ed25519.pem; their records are in keys.txt
# under the selectors pyrsa and pyed of example.net.
#
# SPDX-License-Identifier: ISC
import base64
import subprocess

import dkim

MSG = (b"From: Alice Example <alice@example.net>\r\n"
       b"To: bob@example.org\r\n"
       b"Subject: dkimpy fixture\r\n"
       b"  folded subject line\r\n"
       b"Date: Mon, 6 Jan 2025 10:00:00 +0000\r\n"
       b"Message-ID: <fixture-1@example.net>\r\n"
       b"\r\n"
       b"Hello Bob,\r\n"
       b"\r\n"
       b"this  message   was signed by dkimpy.  \r\n"
       b"\r\n"
       b"\r\n")

HDRS = [b"from", b"to", b"subject", b"date", b"message-id"]


def rsa_key():
    with open("rsa2048.pem", "rb") as f:
        return f.read()


def ed_key():
    der = subprocess.run(["openssl", "pkey", "-in", "ed25519.pem",
                          "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return base64.b64encode(der[-32:])


def sign(msg, sel, key, alg, canon, length=False):
    sig = dkim.sign(msg, sel, b"example.net", key,
                    canonicalize=canon, signature_algorithm=alg,
                    include_headers=HDRS, length=length)
    return sig + msg


def write(name, data):
    with open(name, "wb") as f:
        f.write(data)


rr = (b"relaxed", b"relaxed")
ss = (b"simple", b"simple")
write("py-rsa-relaxed.eml", sign(MSG, b"pyrsa", rsa_key(), b"rsa-sha256", rr))
write("py-rsa-simple.eml", sign(MSG, b"pyrsa", rsa_key(), b"rsa-sha256", ss))
write("py-ed25519.eml",
      sign(MSG, b"pyed", ed_key(), b"ed25519-sha256", rr))
# l= covers the body as signed; a footer appended afterwards is unsigned
write("py-rsa-length.eml",
      sign(MSG, b"pyrsa", rsa_key(), b"rsa-sha256", rr, length=True) +
      b"-- \r\nappended footer\r\n")
# two signatures: ed25519 on top of rsa
one = sign(MSG, b"pyrsa", rsa_key(), b"rsa-sha256", rr)
write("py-dual.eml", sign(one, b"pyed", ed_key(), b"ed25519-sha256", rr))
