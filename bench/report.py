#!/usr/bin/env python3
"""Markdown report of one bench/run.sh run, or the index of all of them.

    report.py FACTS RESULTS.tsv MEMORY.tsv COLDSTART.txt [PROFILE.txt [GOBENCH.txt]]   # one run
    report.py --index DIR                                  # DIR/*.md, newest first

Ratios are taken within each round (same moment, same machine state) and the
median over rounds is reported; a target without nginx in a round gets none.
"""
import csv
import os
import statistics
import sys

WORKLOADS = {
    "tiny": "GET /, ~30-byte response, keep-alive",
    "64k": "GET 64 KiB response, keep-alive",
    "1m": "GET 1 MiB response, keep-alive",
    "upload": "POST 1 MiB body, tiny response",
    "close": "GET /, new client connection per request",
    "h2": "HTTPS + HTTP/2 at the front (h2load), HTTP/1.1 to the app",
    "h3": "HTTP/3 over QUIC at the front (benchtool h3), HTTP/1.1 to the app; ratios against Caddy",
    "tls": "new TLS connection per request, full handshake (benchtool tls); req/s is connections/s",
    "tls_resumed": "new TLS connection per request, resumed with a session ticket; req/s is connections/s",
}
# The peer each workload's ratios are taken against: nginx, except for
# HTTP/3, which of the peers only Caddy serves.
BASE = {"h3": "caddy"}
ORDER = ["direct", "nginx", "haproxy", "caddy", "gatehouse", "baseline"]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=1):
    return "–" if x is None else f"{x:,.{digits}f}"


def ratio(x):
    return "–" if x is None else f"{x:.2f}×"


def load_results(path):
    rows = list(csv.DictReader(open(path), delimiter="\t"))
    by = {}  # (workload, target) -> list of rows
    rounds = {}  # (round, workload) -> {target: row}
    for r in rows:
        by.setdefault((r["workload"], r["target"]), []).append(r)
        rounds.setdefault((r["round"], r["workload"]), {})[r["target"]] = r
    return by, rounds


def round_ratios(rounds, workload, target, field):
    base = BASE.get(workload, "nginx")
    out = []
    for (rnd, w), ts in rounds.items():
        if w != workload or target not in ts or base not in ts:
            continue
        a, b = num(ts[target][field]), num(ts[base][field])
        if a is not None and b:
            out.append(a / b)
    return med(out)


def targets_table(by, rounds, memory, cold):
    """The goal table of issue 21 (round two) for Gatehouse, each with this run's figure."""
    r = lambda w, f, t="gatehouse": round_ratios(rounds, w, t, f)
    mem = {}
    for row in csv.DictReader(open(memory), delimiter="\t"):
        if row["target"] == "gatehouse":
            mem[row["key"]] = num(row["value"])
    c = dict(l.split(" ", 1) for l in open(cold).read().splitlines() if " " in l)
    rows = []

    def add(target, value, ok):
        rows.append(f"| {target} | {value} | {'–' if ok is None else ('met' if ok else 'not met')} |")

    def check(x, good):
        return None if x is None else good(x)

    x = r("tiny", "cpu_us"); add("tiny: CPU per request ≤ 1.0× nginx", ratio(x), check(x, lambda v: v <= 1.0))
    x = r("tiny", "rps"); add("tiny: req/s ≥ 1.0× nginx", ratio(x), check(x, lambda v: v >= 1.0))
    x = r("tiny", "p99_ms"); add("tiny: p99 ≤ nginx's", ratio(x), check(x, lambda v: v <= 1.0))
    for w in ("64k", "1m", "upload"):
        x = r(w, "rps"); add(f"{w}: req/s ≥ 1.0× nginx", ratio(x), check(x, lambda v: v >= 1.0))
    x = r("close", "cpu_us"); add("new connection per request: CPU ≤ 1.1× nginx", ratio(x), check(x, lambda v: v <= 1.1))
    x = r("h2", "cpu_us"); add("HTTPS + HTTP/2: CPU per request ≤ 1.0× nginx", ratio(x), check(x, lambda v: v <= 1.0))
    x, y = r("h3", "rps"), r("h3", "cpu_us")
    add("HTTP/3 against Caddy: req/s ≥ 1.0×, CPU ≤ 1.0×", f"{ratio(x)} / {ratio(y)}",
        None if x is None or y is None else x >= 1.0 and y <= 1.0)
    for w, label in (("tls", "full handshake"), ("tls_resumed", "resumed")):
        x, y = r(w, "rps"), r(w, "cpu_us")
        share = mem.get(f"tls_{'full' if w == 'tls' else 'resumed'}_resumed_share")
        note = f" ({share:.0%} resumed)" if share is not None else ""
        add(f"new TLS connections per second ≥ 1.0× nginx ({label}; CPU per connection second)",
            f"{ratio(x)} / {ratio(y)}{note}", check(x, lambda v: v >= 1.0))
    x = mem.get("kib_per_idle_conn")
    add("≤ 2 KiB RSS per idle keep-alive connection", fmt(x, 2) + " KiB" if x is not None else "–", check(x, lambda v: v <= 2))
    x = mem.get("rss_idle_kib")
    add("idle RSS ≤ 12 MiB (Gatehouse and its keeper)", fmt(x / 1024) + " MiB" if x is not None else "–",
        check(x, lambda v: v <= 12 * 1024))
    g, n = num(c.get("gatehouse_exec_to_listen_ms")), num(c.get("nginx_exec_to_listen_ms"))
    x = g / n if g is not None and n else None
    add("exec to listening ≤ nginx's (outside launcher)", ratio(x), check(x, lambda v: v <= 1.0))
    for key, label in (("gatehouse_cold_extra_ms", "cold start"), ("gatehouse_restart_extra_ms", "restart after kill -9"),
                       ("gatehouse_socket_activation_cold_extra_ms", "cold start, socket activation")):
        x = num(c.get(key))
        add(f"{label}: ≤ 2 ms beyond the app's own (outside launcher)", fmt(x, 2) + " ms" if x is not None else "–",
            check(x, lambda v: v <= 2))
    a, b = mem.get("stream_rss_before_kib"), mem.get("stream_rss_peak_kib")
    x = None if a is None or b is None else (b - a) / 1024
    add("flat RSS while streaming 1 GiB (growth ≤ 2 MiB)", fmt(x) + " MiB" if x is not None else "–", check(x, lambda v: v <= 2))
    return ["### Goals of round two (Gatehouse, this run; ratios are medians of per-round ratios)", "",
            "| goal | this run | |", "|---|---:|---|", *rows, ""]


def one(facts, results, memory, cold, profile=None, gobench=None):
    lines = []
    f = dict(l.split(": ", 1) for l in open(facts).read().splitlines() if ": " in l)
    lines.append(f"## Run of {f.get('date', '?')} — commit {f.get('commit', '?')}")
    lines.append("")
    for k, v in f.items():
        if k not in ("date", "commit"):
            lines.append(f"- {k}: {v}")
    lines.append("- the machine was shared with other work while this ran (see the load average); "
                 "compare the ratios of one run, not absolute figures across runs")
    lines.append("")
    by, rounds = load_results(results)
    workloads = [w for w in WORKLOADS if any(k[0] == w for k in by)]
    targets = [t for t in ORDER if any(k[1] == t for k in by)]

    proxies = [t for t in targets if t not in ("direct", "nginx")]
    if "nginx" in targets and proxies:
        lines.append("### Ratios to nginx (median of per-round ratios)")
        lines.append("")
        lines.append("req/s × nginx (higher is better) / CPU per request × nginx (lower is better)")
        lines.append("")
        lines.append("| workload | " + " | ".join(proxies) + " |")
        lines.append("|---|" + "---:|" * len(proxies))
        for w in workloads:
            cells = []
            for t in proxies:
                if (w, t) not in by:
                    cells.append("–")
                    continue
                cells.append(f"{ratio(round_ratios(rounds, w, t, 'rps'))} / "
                             f"{ratio(round_ratios(rounds, w, t, 'cpu_us'))}")
            label = w if w not in BASE else f"{w} (× {BASE[w]})"
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")

    if "nginx" in targets and "gatehouse" in targets:
        lines.extend(targets_table(by, rounds, memory, cold))

    lines.append("### Per workload (medians over rounds)")
    lines.append("")
    lines.append("CPU µs/req: user+system time of the front door's processes (for `direct`: the "
                 "backend's own) per completed request. Latency: wrk's p50/p99; for h2, h2load's mean "
                 "in the p50 column; for h3, benchtool's; for tls and tls_resumed, connect to answer. "
                 "The × columns of h3 are against Caddy.")
    lines.append("")
    for w in workloads:
        lines.append(f"**{w}** — {WORKLOADS[w]}")
        lines.append("")
        lines.append("| target | req/s | × nginx | CPU µs/req | × nginx | p50 ms | p99 ms | errors |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for t in targets:
            rs = by.get((w, t))
            if not rs:
                continue
            errs = sum(int(num(r["errors"]) or 0) for r in rs)
            lines.append(
                f"| {t} | {fmt(med(num(r['rps']) for r in rs), 0)} | "
                f"{ratio(round_ratios(rounds, w, t, 'rps')) if t != 'nginx' else ''} | "
                f"{fmt(med(num(r['cpu_us']) for r in rs))} | "
                f"{ratio(round_ratios(rounds, w, t, 'cpu_us')) if t not in ('nginx', 'direct') else ''} | "
                f"{fmt(med(num(r['p50_ms']) for r in rs), 2)} | {fmt(med(num(r['p99_ms']) for r in rs), 2)} | {errs} |")
        lines.append("")

    mem = {}
    for r in csv.DictReader(open(memory), delimiter="\t"):
        mem.setdefault(r["target"], {})[r["key"]] = num(r["value"])
    if mem:
        lines.append("### Memory")
        lines.append("")
        lines.append("RSS of the front door's processes (nginx: master and worker; Gatehouse: itself and "
                     "its keeper, not the app); PSS splits the pages they share instead of counting them in each. Idle: after start and one request, 2 s after the last start, before any load. "
                     "Per idle connection: growth with the idle keep-alive connections open, after the "
                     "load rounds. Streaming: peak while one client downloads the large response.")
        lines.append("")
        lines.append("| target | idle RSS MiB | idle PSS MiB | KiB per idle keep-alive conn | RSS before stream MiB | "
                     "peak RSS streaming MiB | stream MiB/s | CPU ms per GiB streamed |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for t in [t for t in ORDER if t in mem]:
            m = mem[t]
            mib = lambda k: None if m.get(k) is None else m[k] / 1024
            lines.append(f"| {t} | {fmt(mib('rss_idle_kib'))} | {fmt(mib('pss_idle_kib'))} | {fmt(m.get('kib_per_idle_conn'), 2)} | "
                         f"{fmt(mib('stream_rss_before_kib'))} | {fmt(mib('stream_rss_peak_kib'))} | "
                         f"{fmt(m.get('stream_mib_s'), 0)} | {fmt(m.get('stream_cpu_ms_per_gib'), 0)} |")
        lines.append("")

    shares = [t for t in ORDER if t in mem and mem[t].get("tls_resumed_resumed_share") is not None]
    if shares:
        lines.append("### TLS session resumption")
        lines.append("")
        lines.append("Share of benchtool tls's handshakes that resumed (ConnectionState().DidResume): "
                     "without a client session cache (should be 0) and with one (tickets on: near 1).")
        lines.append("")
        lines.append("| target | resumed, no client cache | resumed, with client cache |")
        lines.append("|---|---:|---:|")
        for t in shares:
            lines.append(f"| {t} | {fmt(mem[t].get('tls_full_resumed_share'), 3)} | "
                         f"{fmt(mem[t].get('tls_resumed_resumed_share'), 3)} |")
        lines.append("")

    c = dict(l.split(" ", 1) for l in open(cold).read().splitlines() if " " in l)
    if c:
        lines.append("### Cold start and restart")
        lines.append("")
        lines.append("As an outside launcher sees it. The app alone: exec, connect every 100 µs until "
                     "the port accepts, then GET / on that connection; exec to its answer. Gatehouse: "
                     "started with NOTIFY_SOCKET, as systemd starts a Type=notify service, the first "
                     "request (which starts the app) sent once it says READY=1; from sending it to its answer. Restart: from kill -9 of the "
                     "app to the answer of a request sent right after on a new connection; the app "
                     "alone is killed with -9, waited for and exec'd again, as a launcher restarts it. "
                     "Extra: the median of each round's difference to the app alone.")
        lines.append("")
        lines.append("| app | app alone, exec to first answer ms | app alone, restart ms | gatehouse | "
                     "cold start ms | extra ms | restart after kill -9 ms | extra ms |")
        lines.append("|---|---:|---:|---|---:|---:|---:|---:|")
        labels = [k[: -len("_cold_ms")] for k in c if k.endswith("_cold_ms")]
        for l in labels:
            slow = l.startswith("slow_")
            app = "testapp, sleeps before it listens" if slow else "testapp"
            own = c.get(("slow_" if slow else "") + "app_first_answer_ms", "–")
            own_rs = c.get(("slow_" if slow else "") + "app_restart_ms", "–")
            lines.append(f"| {app} | {own} | {own_rs} | {l.removeprefix('slow_')} | {c.get(l + '_cold_ms')} | "
                         f"{c.get(l + '_cold_extra_ms')} | {c.get(l + '_restart_ms')} | {c.get(l + '_restart_extra_ms')} |")
        lines.append("")
    starts = [k[: -len("_exec_to_listen_ms")] for k in c if k.endswith("_exec_to_listen_ms")]
    if starts:
        lines.append("### Start-up, as an outside launcher sees it")
        lines.append("")
        lines.append("Exec, then connect every 100 µs until the port accepts (exec to listening), then "
                     "GET / on that connection (exec to first answer; for the front doors the app is "
                     "already up, except Gatehouse's, which it starts on this request). Medians.")
        lines.append("")
        lines.append("| server | exec to listening ms | × nginx | exec to first answer ms |")
        lines.append("|---|---:|---:|---:|")
        base = num(c.get("nginx_exec_to_listen_ms"))
        for t in [t for t in ORDER if t in starts]:
            x = num(c.get(t + "_exec_to_listen_ms"))
            rel = ratio(x / base) if x is not None and base else "–"
            lines.append(f"| {t} | {c.get(t + '_exec_to_listen_ms')} | {rel} | {c.get(t + '_exec_to_first_answer_ms')} |")
        lines.append("")
    prof = open(profile).read().strip() if profile and os.path.exists(profile) else ""
    if prof:
        lines.append("### Where the CPU goes (tiny workload, perf)")
        lines.append("")
        lines.append("```")
        lines.append(prof)
        lines.append("```")
        lines.append("")
    gb = open(gobench).read().strip() if gobench and os.path.exists(gobench) else ""
    if gb:
        lines.append("### Go benchmarks (go test -bench -benchmem, one process: client, proxy and app)")
        lines.append("")
        lines.append("```")
        lines.append(gb)
        lines.append("```")
        lines.append("")
    return "\n".join(lines)


def index(d):
    out = ["# Benchmark report", "",
           "Written by `bench/run.sh` (how to read it: bench/NOTES.md). Each run's report is in "
           "bench/reports/; the newest comes first. Ratios within one run are what to compare: "
           "the machine is shared and absolute figures drift.", ""]
    for name in sorted((n for n in os.listdir(d) if n.endswith(".md")), reverse=True):
        out.append(open(os.path.join(d, name)).read().rstrip())
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--index"]:
        print(index(sys.argv[2]))
    else:
        print(one(*sys.argv[1:7]))
