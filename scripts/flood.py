#!/usr/bin/env python3
"""Floods the backend's public routes from one client, as an attacker on the network would, and
reports what got through: requests per second answered vs refused (429), the rows each table
holds afterwards, and the backend's memory. Usage: scripts/flood.sh [seconds per route]."""
import http.client
import json
import os
import sqlite3
import sys
import threading
import time

PORT, PID, DB, SECONDS = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
WORKERS = 8
GUID = "00112233445566778899aabbccddeeff"
ROUTES = {
    "POST /api/sign-in/challenge": {},
    "POST /api/unlock/challenge": {},
    # An unknown card with a fresh challenge each time: refused, and each refusal audited.
    "POST /api/sign-in": {"challenge": "/api/sign-in/challenge", "guid": GUID, "signature": "MAYCAQECAQE="},
    "POST /api/unlock/start": {"challenge": "/api/unlock/challenge", "guid": GUID, "signature": "MAYCAQECAQE="},
    "POST /api/unlock/code": {"attempt_id": "nope", "code": "12345678"},
}


def rss_kib():
    with open(f"/proc/{PID}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def flood(route, body):
    method, path = route.split(" ", 1)
    counts, stop, peak = {}, time.time() + SECONDS, [0]
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        headers = {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{PORT}"}
        while time.time() < stop:
            try:
                fields = dict(body)
                if "challenge" in fields:
                    conn.request("POST", fields.pop("challenge"), "{}", headers)
                    issued = conn.getresponse()
                    answer = issued.read()
                    fields["challenge_id"] = json.loads(answer).get("challenge_id", "x") if issued.status == 200 else "x"
                conn.request(method, path, json.dumps(fields), headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except Exception as e:
                if os.environ.get("FLOOD_DEBUG"):
                    print(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
                status = "error"
            with lock:
                counts[status] = counts.get(status, 0) + 1

    def sample():
        while time.time() < stop:
            peak[0] = max(peak[0], rss_kib())
            time.sleep(0.2)

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)] + [threading.Thread(target=sample)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts, peak[0]


def tables():
    db = sqlite3.connect(DB)
    names = ["challenges", "sessions", "unlock_attempts", "mail_outbox", "audit_log", "one_time_codes"]
    sizes = {name: db.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0] for name in names}
    db.close()
    return sizes


print(f"{SECONDS:.0f} s per route, {WORKERS} connections from one address; backend RSS at start {rss_kib() // 1024} MiB")
print("| route | answered (by status) | refused (429, or the connection closed after one) | answered per s | peak RSS MiB |")
print("|---|---|---|---|---|")
for route, body in ROUTES.items():
    counts, peak = flood(route, body)
    # The backend does not read the body of a request it refuses, so it closes that connection.
    refused = counts.get(429, 0) + counts.get("error", 0)
    answered = sum(v for k, v in counts.items() if k not in (429, "error"))
    by_status = " ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str) if k not in (429, "error"))
    print(f"| {route} | {answered} ({by_status}) | {refused} | {answered / SECONDS:.1f} | {peak // 1024} |")
print()
print("Rows afterwards:", ", ".join(f"{k} {v}" for k, v in tables().items()))
