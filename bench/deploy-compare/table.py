#!/usr/bin/env python3
"""The result table of bench/deploy-compare.sh, from what each setup left in
its dir: report.json (cutover-loadtest --json), rss_max_kib (the sampler's
maximum), debris.txt (containers the broken deploy left behind).

    table.py OUT_DIR STARTUP_MS SETUP...
"""
import json
import os
import statistics
import sys

NAMES = {
    "a": "a: `cutover deploy`",
    "b": "b: compose + Caddy restart (the report)",
    "c": "c: compose + `caddy reload`",
    "d": "d: compose + `nginx -s reload`",
    "e": "e: compose + HAProxy seamless reload",
}


def read(path, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return default


def secs(ms):
    return f"{ms / 1000:.2f} s"


def failed_requests(http):
    parts = [f"{code}×{n}" for code, n in sorted(http["non_2xx"].items())]
    if http["connection_errors"]:
        parts.append(f"conn×{http['connection_errors']}")
    if http["timeouts"]:
        parts.append(f"timeout×{http['timeouts']}")
    total = sum(http["non_2xx"].values()) + http["connection_errors"] + http["timeouts"]
    return f"{total} ({', '.join(parts)})" if parts else "0"


def kept(r):
    """Whether the data survived the deploys: the Redis counter never went
    back, and OAuth states issued by one version were redeemed by another."""
    c = r["continuity"]
    counter = "ok" if c["ok"] else f"went back {len(c['violations'])}×"
    o = r["oauth"]
    if not o["supported"]:
        return f"{counter}; OAuth –"
    extra = []
    if o["refused"]:
        extra.append(f"{o['refused']} refused")
    if o["second_use_accepted"]:
        extra.append(f"{o['second_use_accepted']} replays accepted")
    if o["errors"]:
        extra.append(f"{o['errors']} unanswered")
    tail = f" ({', '.join(extra)})" if extra else ""
    return f"{counter}; {o['accepted']}/{o['issued']}{tail}"


def row(out, setup, startup_ms):
    d = os.path.join(out, setup)
    name = NAMES.get(setup, setup)
    raw = read(os.path.join(d, "report.json"))
    if raw is None:
        why = (read(os.path.join(d, "not-measured.txt"), "") or "no report.json").strip()
        return f"| {name} | not measured: {why} |" + " – |" * 10, []
    r = json.loads(raw)
    http, ws = r["http"], r["websocket"]
    rate = http["sent"] / (r["duration_ms"] / 1000) if r["duration_ms"] else 0
    codes = ", ".join(f"{c}×{n}" for c, n in sorted(ws["close_codes"].items())) or "–"
    deploys = r["deploys"]
    good = [x for x in deploys if not x["expected_failure"] and x["exit_code"] == 0]
    ok = sum(1 for x in deploys if x["ok"])
    if good:
        totals = [x["total_ms"] for x in good]
        med, mx = statistics.median(totals), max(totals)
        dur = f"{secs(med)} / {secs(mx)}"
        over = f"{secs(med - startup_ms)} / {secs(mx - startup_ms)}" if startup_ms else "–"
    else:
        dur = over = "–"
    rss = (read(os.path.join(d, "rss_max_kib"), "") or "").strip()
    rss = f"{int(rss) / 1024:.1f} MiB" if rss.isdigit() and int(rss) > 0 else "–"
    debris = read(os.path.join(d, "debris.txt"))
    if debris is None:
        debris = "– (no broken deploy ran)"
    else:
        lines = [l.split(" ", 1) for l in debris.splitlines() if l.strip()]
        debris = "none" if not lines else f"{len(lines)}: " + ", ".join(
            f"`{l[0]}` {l[1] if len(l) > 1 else ''}".strip() for l in lines
        )
    cuts = str(ws["cuts"])
    if ws["connect_errors"]:
        cuts += f" (+{ws['connect_errors']} connects failed)"
    line = (
        f"| {name} | {rate:.0f} | {failed_requests(http)} | {cuts} | {codes} "
        f"| {http['longest_gap_ms']:.0f} ms | {kept(r)} | {ok}/{len(deploys)} | {dur} | {over} | {rss} | {debris} |"
    )
    notes = [f"{setup}: {f}" for f in r.get("failures", [])]
    notes += [f"{setup} (warning): {w}" for w in r.get("warnings", [])]
    return line, notes


def main():
    out, startup_ms, setups = sys.argv[1], float(sys.argv[2] or 0), sys.argv[3:]
    print(
        "| setup | req/s | failed requests (non-2xx, connection errors, timeouts) "
        "| WebSockets cut | close codes seen | longest gap "
        "| Redis counter; OAuth states accepted / issued | deploys ok "
        "| deploy duration median / max | overhead beyond app start-up, median / max "
        "| proxy RSS max | broken deploy left behind |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    notes = []
    for s in setups:
        line, n = row(out, s, startup_ms)
        print(line)
        notes += n
    if notes:
        print()
        print("What the harness flagged (its `failures` and `warnings`, per setup):")
        print()
        for n in notes:
            print(f"- {n}")


if __name__ == "__main__":
    main()
