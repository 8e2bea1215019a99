#!/usr/bin/python3
# dkim_verify.py - verify every DKIM-Signature of a message with dkimpy
# (Debian's python3-dkim; ed25519 through python3-nacl), an implementation
# independent of Postern's, looking the keys up in one DNS server.
#
#   dkim_verify.py --dns 127.0.0.1:PORT FILE
#
# FILE holds one message (CRLF or LF line ends). For each DKIM-Signature,
# top to bottom, one line on stdout:
#
#   pass|fail d=DOMAIN s=SELECTOR a=ALGORITHM
#
# and, for a failure, the reason on stderr. Exit status: 0 when there is
# at least one signature and all pass, 1 otherwise, 2 on usage errors.
#
# SPDX-License-Identifier: ISC

import argparse
import re
import sys

import dkim
import dkim.util
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdatatype


def txt_lookup(server, port):
    """A dkimpy dnsfunc asking only SERVER:PORT (TCP when truncated)."""
    def lookup(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode('ascii')
        q = dns.message.make_query(name, dns.rdatatype.TXT)
        try:
            r = dns.query.udp(q, server, port=port, timeout=timeout)
            if r.flags & dns.flags.TC:
                r = dns.query.tcp(q, server, port=port, timeout=timeout)
        except dns.exception.Timeout as e:
            raise dkim.DnsTimeoutError(str(e))
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                # the strings of one record, joined (RFC 6376 3.6.2.2)
                return b''.join(list(rrset.items)[0].strings)
        return None
    return lookup


def signature_tags(value):
    """d=, s=, a= of one DKIM-Signature value (bytes); '?' if unreadable."""
    try:
        tags = dkim.util.parse_tag_value(value)
    except Exception:
        return ('?', '?', '?')
    return tuple(re.sub(rb'\s+', b'', tags.get(k, b'?')).decode(
        'ascii', 'replace') for k in (b'd', b's', b'a'))


def main():
    ap = argparse.ArgumentParser(
        description='verify every DKIM-Signature with dkimpy')
    ap.add_argument('--dns', required=True, metavar='ADDR:PORT')
    ap.add_argument('file')
    args = ap.parse_args()
    server, _, port = args.dns.rpartition(':')
    if not server or not port.isdigit():
        ap.error('--dns wants ADDR:PORT')
    with open(args.file, 'rb') as fh:
        msg = fh.read()

    headers, _ = dkim.rfc822_parse(msg)
    sigs = [v for (k, v) in headers if k.lower() == b'dkim-signature']
    if not sigs:
        print('no DKIM-Signature', file=sys.stderr)
        return 1
    lookup = txt_lookup(server, int(port))
    all_pass = True
    for idx, value in enumerate(sigs):
        d, s, a = signature_tags(value)
        try:
            v = dkim.DKIM(msg, minkey=1024)
            ok = v.verify(idx=idx, dnsfunc=lookup)
            why = 'signature or body hash mismatch'
        except dkim.DKIMException as e:
            ok = False
            why = str(e)
        print('%s d=%s s=%s a=%s' % ('pass' if ok else 'fail', d, s, a))
        if not ok:
            all_pass = False
            print('signature %d (d=%s s=%s): %s' % (idx, d, s, why),
                  file=sys.stderr)
    return 0 if all_pass else 1


if __name__ == '__main__':
    sys.exit(main())
