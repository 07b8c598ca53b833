"""Verifies the DKIM signature of .eml files with dkimpy.

Usage: dkim_verify.py DNS_TXT_RECORD FILE.eml...
The TXT record (v=DKIM1; k=…; p=…) is what the selector would publish in DNS.
"""
import sys

import dkim

record = sys.argv[1].encode()
passed = failed = 0


def dns(name, timeout=5):
    return record


for path in sys.argv[2:]:
    message = open(path, "rb").read()
    ok = dkim.verify(message, dnsfunc=dns)
    signature = next(l for l in message.split(b"\r\n") if l.lower().startswith(b"dkim-signature"))
    headers = message.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n ", " ").replace("\r\n\t", " ")
    # An issue's one-click headers must be under the signature (Gmail's rule).
    covered = "list-unsubscribe-post:" not in headers.lower() or (
        "h=from:to:subject:date:message-id:mime-version:list-id:list-unsubscribe:list-unsubscribe-post"
        in headers.replace(" ", "").lower()
    )
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
