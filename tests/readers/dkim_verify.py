"""Verifies the DKIM signature of .eml files with dkimpy.

Usage: dkim_verify.py DNS_TXT_RECORD FILE.eml...
The TXT record (v=DKIM1; k=…; p=…) is what the selector would publish in DNS;
for two signatures, SELECTOR=RECORD||SELECTOR=RECORD. Every signature must verify.
"""
import sys

import dkim

# One record, or several as SELECTOR=RECORD||SELECTOR=RECORD (dual signing).
records = {}
for part in sys.argv[1].split("||"):
    selector, sep, rec = part.partition("=") if "||" in sys.argv[1] else ("", "", part)
    records[selector] = (rec if sep else part).encode()
passed = failed = 0


def dns(name, timeout=5):
    selector = name.decode().split("._domainkey", 1)[0] if isinstance(name, bytes) else name.split("._domainkey", 1)[0]
    return records.get(selector, records.get("", b""))


for path in sys.argv[2:]:
    message = open(path, "rb").read()
    ok = dkim.verify(message, dnsfunc=dns)
    signature = next(l for l in message.split(b"\r\n") if l.lower().startswith(b"dkim-signature"))
    headers = message.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n ", " ").replace("\r\n\t", " ")
    # An issue's one-click headers must be under every signature (Gmail's rule).
    signed = [
        set(h.strip().lower() for h in tag.split("=", 1)[1].split(":"))
        for line in headers.split("\r\n") if line.lower().startswith("dkim-signature:")
        for tag in line.split(":", 1)[1].split(";") if tag.strip().startswith("h=")
    ]
    required = {"from", "to", "subject", "date", "message-id", "mime-version", "list-id",
                "list-unsubscribe", "list-unsubscribe-post"}
    covered = "list-unsubscribe-post:" not in headers.lower() or (
        bool(signed) and all(required <= h for h in signed))
    # Every signature verifies (two with dual signing).
    count = len(signed)
    ok = ok and all(dkim.DKIM(message).verify(idx=i, dnsfunc=dns) for i in range(count))
    # The check can fail: a message altered after signing must not verify.
    tampered = message.replace(b"\r\n\r\n", b"\r\n\r\nX", 1)
    rejects_tampering = not dkim.verify(tampered, dnsfunc=dns)
    good = ok and covered and rejects_tampering
    print(("ok   " if good else "FAIL ") + path + ("" if covered else " (List-Unsubscribe-Post not covered)")
          + ("" if rejects_tampering else " (a tampered copy verified!)"))
    passed += good
    failed += not good
print(f"dkim: {passed} passed, {failed} failed")
sys.exit(1 if failed or not passed else 0)
