"""A real feed reader against a running `posthorn serve`.

Usage: feedparser_check.py BASE_URL
Checks that Python's feedparser reads the RSS and Atom feeds without complaint
(bozo false), that titles, dates (+09:00) and full text come back right, and that
a conditional second request gets 304.
"""
import datetime
import json
import sys
import urllib.request

import feedparser

base = sys.argv[1].rstrip("/")
failures = []
passed = 0


def check(cond, what):
    global passed
    print(("ok   " if cond else "FAIL ") + what)
    if cond:
        passed += 1
    else:
        failures.append(what)


# The sample site's posts, as written in posts/ (dates in Asia/Seoul).
expected = {
    "겨울의 문턱에서": datetime.datetime(2026, 11, 19, 22, 0, tzinfo=datetime.timezone.utc),
    "느리게 읽기에 대하여": datetime.datetime(2026, 11, 2, 12, 30, tzinfo=datetime.timezone.utc),
    "Walking in Seoul, & why I stopped taking the bus": datetime.datetime(2026, 10, 17, 23, 0, tzinfo=datetime.timezone.utc),
}

for name in ("feed.xml", "atom.xml"):
    url = f"{base}/{name}"
    d = feedparser.parse(url)
    check(d.get("status") == 200, f"{name}: HTTP 200")
    check(not d.bozo, f"{name}: bozo is false ({d.get('bozo_exception')!r})")
    check(d.feed.get("title") == "느린 편지", f"{name}: feed title")
    titles = [e.title for e in d.entries]
    check(titles == list(expected), f"{name}: titles newest first: {titles}")
    for e in d.entries:
        when = datetime.datetime(*e.published_parsed[:6], tzinfo=datetime.timezone.utc)
        check(when == expected.get(e.title), f"{name}: {e.title}: published {when.isoformat()}")
        content = e.content[0].value if "content" in e else ""
        check(len(content) > len(e.get("summary", "")), f"{name}: {e.title}: full text, not only the summary")
        check(e.link.startswith("https://essays.example.com/posts/"), f"{name}: {e.title}: absolute link")
    raw = urllib.request.urlopen(url).read().decode("utf-8")
    check("+0900" in raw or "+09:00" in raw, f"{name}: dates carry +09:00")
    again = feedparser.parse(url, etag=d.get("etag"), modified=d.get("modified"))
    check(again.get("status") == 304, f"{name}: conditional GET gets 304 (got {again.get('status')})")

feed = json.load(urllib.request.urlopen(f"{base}/feed.json"))
check(feed["version"] == "https://jsonfeed.org/version/1.1", "feed.json: version 1.1")
check([i["title"] for i in feed["items"]] == list(expected), "feed.json: titles")

print(f"feedparser: {passed} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
