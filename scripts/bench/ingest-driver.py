#!/usr/bin/env python3
"""Drives a MONTI server's ingest API like a telephony integration would.

  ingest-driver.py roster URL AGENTS         create AGENTS agents in 60 teams at 6 sites
  ingest-driver.py events URL AGENTS RATE S  post RATE events per second for S seconds,
                                             in batches every 50 ms, since_ms = send time

Prints a JSON summary (events sent, achieved rate, POST round trip p50/p99) on stdout.
Only the standard library: it runs wherever python3 does.
"""
import http.client
import json
import random
import sys
import time
import urllib.parse

STATES = ["available", "ringing", "on_call", "on_hold", "wrap_up", "not_ready", "available"]
REASONS = ["break", "lunch", "training", "meeting"]


def connect(url):
    parsed = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)


def post(conn, path, body):
    conn.request("POST", path, body=json.dumps(body), headers={"content-type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise SystemExit(f"POST {path}: {response.status} {data[:300]!r}")
    return json.loads(data)


def roster(url, agents):
    conn = connect(url)
    body = {
        "sites": [{"name": f"Site {s}"} for s in range(6)],
        "teams": [{"name": f"Team {t}"} for t in range(60)],
        "reasons": [{"code": r, "label": r.title()} for r in REASONS],
        "agents": [
            {"external_id": f"bench-{a}", "name": f"Agent {a:05d}",
             "team": f"Team {a % 60}", "site": f"Site {a % 6}"}
            for a in range(agents)
        ],
    }
    result = post(conn, "/api/v1/roster", body)
    print(json.dumps({"roster": result}))


def events(url, agents, rate, seconds):
    conn = connect(url)
    per_batch = max(1, round(rate / 20))
    rng = random.Random(7)
    sent = 0
    trips = []
    start = time.monotonic()
    next_at = start
    n = 0
    while time.monotonic() - start < seconds:
        batch = []
        now_ms = int(time.time() * 1000)
        for _ in range(per_batch):
            n += 1
            state = rng.choice(STATES)
            event = {"event_id": f"bench-{start:.0f}-{n}", "agent": f"bench-{rng.randrange(agents)}",
                     "state": state, "since_ms": now_ms}
            if state == "not_ready":
                event["reason"] = rng.choice(REASONS)
            batch.append(event)
        t0 = time.monotonic()
        result = post(conn, "/api/v1/events", {"events": batch})
        trips.append((time.monotonic() - t0) * 1000)
        if result["refused"]:
            raise SystemExit(f"refused: {result['results'][:3]}")
        sent += len(batch)
        next_at += 0.05
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    elapsed = time.monotonic() - start
    trips.sort()
    print(json.dumps({
        "events_sent": sent,
        "events_per_second": round(sent / elapsed, 1),
        "post_ms_p50": round(trips[len(trips) // 2], 1),
        "post_ms_p99": round(trips[int(len(trips) * 0.99)], 1),
    }))


if __name__ == "__main__":
    if sys.argv[1] == "roster":
        roster(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "events":
        events(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    else:
        raise SystemExit(__doc__)
