#!/usr/bin/python3
"""SAV system tests of backups and archiving (issue 9): a backup of the running Redis restored into a fresh one and
checked by `savctl check`, and closed tickets archived out of Redis into one compressed file per month.

Usage: /usr/bin/python3 tests/system/archive_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

- backup_restore: tickets through their whole lifecycle (chargeable repairs invoiced, paid and collected, a free
  repair, a cancellation, a complaint, a business's unpaid invoice, tickets still open), three of them archived,
  and `savctl check` consistent; then tools/sav-backup.sh (with the archive files) while the services run and new
  tickets keep being opened. Each copy (the RDB snapshot, then the AOF) goes through tools/sav-restore.sh into a
  fresh directory, a fresh redis-server with the backup's ACL file starts on it, the services are pointed at it
  and at the restored archive: `savctl check` exits 0 with the counts of a complete data set, every ticket
  acknowledged before the backup began is there, the lifecycle tickets show exactly as before, the archived ones
  are found in the archive. Then keys are deleted in the restored copy (a timeline, a notification, an invoice)
  and its archive files too: the check exits 2 naming each of them.
- archive_lifecycle: tickets closed or cancelled at several dates (sav-intake's clock moved through
  SAV_CLOCK_OFFSET_FILE), some that must stay (an open complaint, an unpaid invoice, an open ticket).
  `savctl archive run` at +800 days archives those closed before the cutoff into the file of their month, no
  other; Redis memory drops; `ticket show` says where an archived ticket is; `archive search` finds each one by
  ticket, customer, serial and month, with the same timeline and notifications as before; invoices stay, the
  product keeps its guarantee facts; an erased customer's archived messages show no contact; roles; at +1200 the
  rest; `savctl check` consistent before and after each step.
- archive_crash: the archiving timer (every 100 ms) of a sav-intake at +800 days SIGKILLed again and again while it
  archives: no ticket lost, none twice in `archive search`, `savctl check` consistent; the lines written twice
  are counted (none: the writer finds what a crash left committed and not removed). Then what a crash in the
  middle of an append leaves is ignored by the check and search, and cut off by the next append.
Every test ends as in run.py: no service died on its own, all exit 0 on SIGTERM, no sanitizer report in a log.
"""

import collections
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from billing_tests import PART, SIREN, Shop, collecting, raw, stock_up, sv, tstate  # noqa: E402
from fixtures import DAY_MS, pmap  # noqa: E402
from harness import HarnessError  # noqa: E402

TOOLS = os.path.join(harness.REPO_ROOT, "tools")


# ---------------------------------------------------------------- helpers

def check(cl, identity=None):
    """savctl --json check -> (exit code, document or None, stderr): the document also when it exits 2."""
    r = cl.savctl("check", "--timeout", "120", json_out=True, identity=identity, timeout=150)
    try:
        doc = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        doc = None
    return r.returncode, doc, r.stderr.strip()


def check_consistent(cl, res, when):
    rc, doc, err = check(cl)
    ok = res.check(rc == 0 and doc and doc.get("consistent") is True and doc.get("complete") is True,
                   "savctl check %s: exit %d %s %s" % (when, rc, err, (doc or {}).get("problems")))
    return (doc or {}).get("counts", {}) if ok else {}


def free_repair(shop, cid):
    """A repair under the legal guarantee (delivered 100 days ago, a manufacturing defect), done: ready."""
    tid = shop.ticket(cid, delivered=fixtures.today(-100).isoformat())
    d = sv(shop.cl, shop.res, "diagnose", tid, "--cause", "manufacturing", "--action", "replace_parts", "--part", PART,
           "--labour", "30") or {}
    shop.res.check(d.get("state") == "in_diagnosis", "free repair %s: diagnose %r" % (tid, d))
    sv(shop.cl, shop.res, "repair", "start", tid)
    sv(shop.cl, shop.res, "repair", "done", tid)
    return tid


def paid_repair(shop, cid):
    """A chargeable repair, invoiced and paid: ready for pickup. Returns (ticket, invoice)."""
    tid, inv = shop.invoiced(cid)
    total = (sv(shop.cl, shop.res, "invoice", "show", inv) or {}).get("total_cents")
    sv(shop.cl, shop.res, "payment", "record", inv, "--amount", total, "--method", "card")
    return tid, inv


def drained(cl, timeout=30):
    ok = harness.wait_until(lambda: fixtures.outboxes_empty(cl), timeout, 0.05)
    return bool(ok)


def archived(cl):
    try:
        return cl.redis().hgetall(cl.key("archived"))
    except Exception:  # Redis restarting
        return {}


def committed_lines(path):
    """The lines of a month's file up to its committed length (its .idx), read with Python's own gzip."""
    idx = path[:-len(".jsonl.gz")] + ".idx"
    with open(idx) as f:
        ends = [int(x) for x in f.read().split("\n")[:-1] if x]
    with open(path, "rb") as f:
        data = f.read(ends[-1] if ends else 0)
    return [l for l in gzip.decompress(data).decode("utf-8").split("\n") if l] if data else []


def archive_files(cl):
    d = os.path.join(cl.dir, "archive")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".jsonl.gz")) if os.path.isdir(d) else []


def cancelled_tickets(cl, res, cid, numbers, tag, kind, symptom, messages):
    """Opens a ticket of kind for customer cid for each of numbers (a product each, serial SN-<tag>-<number>) and
    cancels it, in parallel; returns their ids once the outboxes are drained and each has at least `messages`
    notifications."""
    def cancelled(i):
        sn = "SN-%s-%04d" % (tag, i)
        if raw(cl, "product", "add", "--serial", sn, "--model", "WM-7000", "--customer", cid, "--delivered",
               "2019-01-01")[0] != 0:
            return None
        rc, d, err = raw(cl, "ticket", "open", "--customer", cid, "--serial", sn, "--kind", kind,
                         "--symptom", symptom, "--centre", "PAR-01")
        if rc != 0 or not d:
            res.check(False, "ticket open %s: %s" % (sn, err))
            return None
        if raw(cl, "ticket", "cancel", d["id"], "--reason", "annulé")[0] != 0:
            res.check(False, "ticket cancel %s" % d["id"])
        return d["id"]
    numbers = list(numbers)
    tids = [t for t in pmap(cancelled, numbers) if t]
    res.check(len(tids) == len(numbers), "%d of %d tickets opened and cancelled" % (len(tids), len(numbers)))
    res.check(drained(cl, 60), "outboxes not drained")
    r = cl.redis()
    harness.wait_until(lambda: all(r.llen(cl.key("notifs:" + t)) >= messages for t in tids), 30, 0.2)
    return tids


def ticket_keys(cl, tid):
    """Every key of a ticket that archiving takes out of Redis, as they are now."""
    r = cl.redis()
    names = ["ticket:" + tid, "ticket:%s:complaints" % tid, "timeline:" + tid, "prediag:" + tid, "coverage:" + tid,
             "verdict:" + tid, "verdicts:" + tid, "quote:" + tid, "quotes:" + tid, "notifs:" + tid]
    names += ["notif:" + n for n in r.lrange(cl.key("notifs:" + tid), 0, -1)]
    names += ["complaint:" + c for c in r.lrange(cl.key("ticket:%s:complaints" % tid), 0, -1)]
    return [n for n in names if r.exists(cl.key(n))]


def redis_bytes(cl, tid):
    """MEMORY USAGE summed over the ticket's keys (not its index entries)."""
    r = cl.redis()
    return sum(r.memory_usage(cl.key(n), samples=0) or 0 for n in ticket_keys(cl, tid))


def used_memory(cl):
    r = cl.redis()
    r.execute_command("MEMORY", "PURGE")
    return r.info("memory")["used_memory"]


def comparable(show):
    """ticket show --json without what archiving may not keep the same way."""
    return {k: show.get(k) for k in ("id", "state", "outcome", "kind", "customer_id", "serial", "timeline")}


def restart_intake(cl, res, env):
    code = cl.stop_service("intake")
    res.check(code == 0, "sav-intake exited %r on SIGTERM (want 0)" % code)
    cl.start_service("intake", env)
    cl.wait_service("intake")


def start_with_clock(cl, clock):
    """Starts Redis and the services, sav-intake's clock moved by the file clock (set_clock)."""
    cl.start_redis()
    for s in harness.SERVICES:
        cl.start_service(s, env={"SAV_CLOCK_OFFSET_FILE": clock} if s == "intake" else None)
    cl.wait_ready()


def set_clock(path, days):
    """Moves sav-intake's clock (SAV_CLOCK_OFFSET_FILE, read again within 200 ms)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % (days * DAY_MS))
    os.replace(tmp, path)
    time.sleep(0.6)


def month_of(days):
    return fixtures.today(days).strftime("%Y-%m")


# ---------------------------------------------------------------- 1. backup_restore

def start_restored_redis(cl, res, backup, mode):
    """tools/sav-restore.sh into a fresh directory (and the archive files into another), then a fresh redis-server
    on it with the backup's ACL file, as the harness starts one (AOF appendfsync always); the services are stopped,
    pointed at both and started again. Returns the restored archive directory."""
    new = os.path.join(cl.dir, "restored-" + mode)
    new_archive = os.path.join(cl.dir, "restored-%s-archive" % mode)
    r = subprocess.run([os.path.join(TOOLS, "sav-restore.sh"), "--" + mode, backup, new, "--archive", new_archive],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise HarnessError("sav-restore.sh --%s: exit %d %s %s" % (mode, r.returncode, r.stdout, r.stderr))
    said = [l for l in r.stdout.splitlines() if "keys from the snapshot" in l]
    if said:
        res.fig("restore_%s_said" % mode, said[0])
    codes = cl.stop_all()
    res.check(all(c == 0 for c in codes.values()), "services exit codes before the switch: %s" % codes)
    cl._kill(cl.redis_proc, harness.signal.SIGTERM)
    port = harness.free_ports(1)[0]
    acl = os.path.join(cl.dir, "restored-%s.acl" % mode)
    shutil.copy(os.path.join(backup, "users.acl"), acl)
    argv = ["redis-server", "--dir", new, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--maxmemory-policy", "noeviction", "--bind", "127.0.0.1", "--port", str(port), "--daemonize", "no",
            "--aclfile", acl, "--acllog-max-len", "1000"]
    cl.redis_proc = cl._spawn(argv, "redis-%s.log" % mode)
    cl.redis_port = port
    if cl._redis is not None:
        cl._redis.close()
    cl._redis = None
    if not harness.wait_until(lambda: _pong(cl), 30, 0.05):
        raise HarnessError("the restored redis-server did not answer:\n%s" % harness.tail_file(
            os.path.join(cl.dir, "redis-%s.log" % mode)))
    cl.write_config(cl.config, extra={"intake": [("archive_dir", new_archive)]})
    for s in harness.SERVICES:
        cl.start_service(s)
    cl.wait_ready(30)
    return new_archive


def _pong(cl):
    try:
        return cl.redis().ping()
    except Exception:
        cl._redis = None
        return False


def opener(cl, shop, cid, stop, acked):
    """Opens tickets until stop is set; appends (monotonic time of the answer, ticket id) for each acknowledged."""
    n = 0
    while not stop.is_set():
        n += 1
        sn = "SN-BKL-%04d" % n
        rc, _, _ = raw(cl, "product", "add", "--serial", sn, "--model", "WM-7000", "--customer", cid, "--delivered",
                       "2019-01-01")
        if rc != 0:
            continue
        rc, d, _ = raw(cl, "ticket", "open", "--customer", cid, "--serial", sn, "--kind", "repair", "--symptom",
                       "bruit", "--centre", "PAR-01")
        if rc == 0 and d and d.get("id"):
            acked.append((time.monotonic(), d["id"]))


@collecting
def test_backup_restore(cl, res):
    cl.start_all()
    stock_up(cl, res)
    shop = Shop(cl, res, "bk")
    jeanne = shop.customer(name="Jeanne Martin")
    paul = shop.customer(name="Paul Durand")
    garage = shop.customer(SIREN, name="Garage Lefèvre SARL")
    t_paid, inv_paid = paid_repair(shop, jeanne)
    sv(cl, res, "ticket", "pickup", t_paid)
    t_free = free_repair(shop, paul)
    sv(cl, res, "ticket", "pickup", t_free)
    t_cancel = shop.ticket(paul)
    sv(cl, res, "ticket", "cancel", t_cancel, "--reason", "le client renonce")
    t_biz, inv_biz = shop.invoiced(garage)
    sv(cl, res, "ticket", "pickup", t_biz)  # a business pays later: closed with its invoice unpaid
    cmp_id = (sv(cl, res, "complaint", "open", t_paid, "--reason", "extra_costs", "--text", "Trop cher") or {}).get(
        "id")
    sv(cl, res, "complaint", "resolve", cmp_id, "--resolution", "goodwill_credit", "--amount", "1000", "--note",
       "geste")
    t_open = shop.ticket(jeanne)
    t_quote = shop.ticket(paul)
    shop.diagnose(t_quote)
    lifecycle = [t_paid, t_free, t_cancel, t_biz, t_open, t_quote]
    states = {t: tstate(cl, t) for t in lifecycle}
    res.check(list(states.values()) == ["closed", "closed", "cancelled", "closed", "in_diagnosis", "awaiting_approval"],
              "lifecycle states %s" % states)
    res.check(drained(cl), "outboxes not drained after the lifecycle")
    shown = {t: fixtures.show(cl, t) for t in lifecycle}
    check_consistent(cl, res, "after the lifecycle")
    # Three are archived (sav-intake's clock at +800 days): a restore must find them in the archive's backup.
    restart_intake(cl, res, {"SAV_CLOCK_OFFSET_MS": str(800 * DAY_MS)})
    d = sv(cl, res, "archive", "run") or {}  # the timer may have done it as intake started
    gone = [t_paid, t_free, t_cancel]
    res.check(sorted(archived(cl)) == sorted(gone), "archived %s, want %s (archive run: %r)" % (
        sorted(archived(cl)), gone, d))
    restart_intake(cl, res, None)
    before = check_consistent(cl, res, "before the backup")
    res.fig("before", "%s tickets, %s archived, %s notifications" % (before.get("tickets"), before.get("archived"),
                                                                    before.get("notifications")))

    # The backup, while tickets keep being opened.
    loader = shop.customer(name="Charge Continue")
    stop, acked = threading.Event(), []
    th = threading.Thread(target=opener, args=(cl, shop, loader, stop, acked), daemon=True)
    th.start()
    harness.wait_until(lambda: len(acked) >= 5, 30, 0.05)
    backup = os.path.join(cl.dir, "backup")
    t_backup = time.monotonic()
    env = dict(os.environ, REDISCLI_AUTH=cl.redis_admin[1])
    r = subprocess.run([os.path.join(TOOLS, "sav-backup.sh"), "-p", str(cl.redis_port), "-a",
                        os.path.join(cl.dir, "archive"), backup], capture_output=True, text=True, timeout=300, env=env,
                       stdin=subprocess.DEVNULL)
    t_done = time.monotonic()
    time.sleep(0.5)
    stop.set()
    th.join(60)
    if not res.check(r.returncode == 0, "sav-backup.sh: exit %d %s %s" % (r.returncode, r.stdout, r.stderr)):
        return
    acked_before = [t for when, t in acked if when < t_backup]
    res.fig("opened_during_backup", "%d before, %d during, %d after" % (
        len(acked_before), len([1 for w, _ in acked if t_backup <= w < t_done]),
        len([1 for w, _ in acked if w >= t_done])))
    sizes = {}
    for root, _, files in os.walk(backup):
        for f in files:
            sizes[os.path.relpath(os.path.join(root, f), backup)] = os.path.getsize(os.path.join(root, f))
    res.fig("backup_files", {k: v for k, v in sorted(sizes.items()) if not k.endswith(".txt")})
    res.check("dump.rdb" in sizes and any(k.startswith("aof/") and k.endswith(".manifest") for k in sizes)
              and "users.acl" in sizes and any(k.startswith("archive/") and k.endswith(".jsonl.gz") for k in sizes),
              "the backup lacks a file: %s" % sorted(sizes))
    res.check(drained(cl), "outboxes not drained after the load")
    live = check_consistent(cl, res, "on the live data after the backup")

    for mode in ("rdb", "aof"):
        new_archive = start_restored_redis(cl, res, backup, mode)
        counts = check_consistent(cl, res, "on the %s restore" % mode)
        res.fig("restore_" + mode, "%s tickets %s, %s archived in %s file(s), %s notifications, invoices %s" % (
            counts.get("tickets"), counts.get("states"), counts.get("archived"), counts.get("archive_files"),
            counts.get("notifications"), counts.get("invoices")))
        res.check(counts.get("archived") == 3 and counts.get("archive_lines") == 3, "%s restore: archive counts %r" % (
            mode, counts))
        rr = cl.redis()
        missing = [t for t in acked_before + lifecycle if t not in gone and rr.zscore(cl.key("tickets"), t) is None]
        res.check(not missing, "%s restore: tickets acknowledged before the backup are missing: %s" % (
            mode, missing[:5]))
        res.check(before.get("tickets", 0) + len(acked_before) <= counts.get("tickets", -1) <= live.get("tickets", 0),
                  "%s restore: %s tickets, want between %d and %s" % (mode, counts.get("tickets"),
                                                                     before.get("tickets", 0) + len(acked_before),
                                                                     live.get("tickets")))
        for t in lifecycle:
            if t not in gone:
                res.check(fixtures.show(cl, t) == shown[t], "%s restore: ticket show %s differs" % (mode, t))
                continue
            found = (sv(cl, res, "archive", "search", "--ticket", t) or {}).get("tickets") or [{}]
            res.check([e.get("event") for e in found[0].get("timeline") or []] ==
                      [e.get("event") for e in shown[t]["timeline"]], "%s restore: archived %s differs" % (mode, t))
        res.check(counts.get("invoices") == before.get("invoices"), "%s restore: invoices %s, want %s" % (
            mode, counts.get("invoices"), before.get("invoices")))

    # The restored copy loses keys, and its archive files: the check names each one.
    rr = cl.redis()
    nid = rr.lrange(cl.key("notifs:" + t_quote), 0, 0)[0]
    for k in ("timeline:" + t_open, "notif:" + nid, "invoice:" + inv_biz):
        rr.delete(cl.key(k))
    for f in os.listdir(new_archive):
        os.unlink(os.path.join(new_archive, f))
    rc, doc, err = check(cl)
    problems = (doc or {}).get("problems") or []
    res.fig("after_deletes", "exit %d, %d problem(s)" % (rc, len(problems)))
    res.check(rc == harness.EXIT_REJECTED and doc and doc.get("consistent") is False,
              "check after deleting keys: exit %d %s, want 2" % (rc, err))
    wants = ["timeline:%s is missing" % t_open, "notif:%s (listed in notifs:%s) is missing" % (nid, t_quote),
             "invoice:%s is missing" % inv_biz] + ["%s is recorded as archived in" % t for t in gone]
    for want in wants:
        res.check(any(want in p for p in problems), "check does not report %r: %s" % (want, problems))
    text = cl.savctl("check", "--timeout", "120", timeout=150)
    res.check(text.returncode == 2 and "INCONSISTENT: 6 problem(s)" in text.stdout and
              ("timeline:%s is missing" % t_open) in text.stdout, "savctl check (text): exit %d %s" % (
                  text.returncode, text.stdout[-400:]))


# ---------------------------------------------------------------- 2. archive_lifecycle

@collecting
def test_archive_lifecycle(cl, res):
    clock = os.path.join(cl.dir, "clock-offset")
    set_clock(clock, 0)
    cl.write_config(cl.config, extra={"intake": [("scheduler_ms", "3600000")]})
    start_with_clock(cl, clock)
    stock_up(cl, res)
    shop = Shop(cl, res, "ar")
    ca, cb, ce = (shop.customer(name=n) for n in ("Alice Archive", "Bruno Archive", "Emma Effacée"))
    garage = shop.customer(SIREN, name="Garage Archive SARL")
    groups = collections.OrderedDict((k, []) for k in ("A", "B", "C", "D", "keep"))
    # A: closed today (two paid repairs, one for the customer who will be erased, a free repair, a cancellation).
    ta1, inv_a1 = paid_repair(shop, ca)
    te, _ = paid_repair(shop, ce)
    ta3 = free_repair(shop, cb)
    ta4 = shop.ticket(cb)
    for t in (ta1, te, ta3):
        sv(cl, res, "ticket", "pickup", t)
    sv(cl, res, "ticket", "cancel", ta4, "--reason", "annulé")
    groups["A"] = [ta1, te, ta3, ta4]
    # Stay whatever their age: an open complaint, an unpaid invoice, an open ticket.
    tk1, _ = paid_repair(shop, ca)
    sv(cl, res, "ticket", "pickup", tk1)
    cmp_open = (sv(cl, res, "complaint", "open", tk1, "--reason", "damaged", "--text", "Rayure") or {}).get("id")
    tk2, _ = shop.invoiced(garage)
    sv(cl, res, "ticket", "pickup", tk2)
    tk3 = shop.ticket(ca)
    groups["keep"] = [tk1, tk2, tk3]
    # B waits for pickup 40 days, C 75 days (one cancelled then), D 400 days (flagged unclaimed first).
    tb1, _ = paid_repair(shop, cb)
    tb2, _ = paid_repair(shop, ca)
    tc1, _ = paid_repair(shop, cb)
    tc2 = shop.ticket(ca)
    td1, _ = paid_repair(shop, ca)
    res.check(drained(cl), "outboxes not drained")
    for days, tids, step in ((40, [tb1, tb2], "pickup"), (75, [tc1], "pickup"), (75, [tc2], "cancel"),
                             (400, [td1], "pickup")):
        set_clock(clock, days)
        for t in tids:
            if step == "pickup":
                sv(cl, res, "ticket", "pickup", t)
            else:
                sv(cl, res, "ticket", "cancel", t, "--reason", "trop long")
    groups["B"], groups["C"], groups["D"] = [tb1, tb2], [tc1, tc2], [td1]
    res.check(drained(cl), "outboxes not drained after the pickups")
    states = {t: tstate(cl, t) for g in groups.values() for t in g}
    res.check([states[t] for t in groups["keep"]] == ["closed", "closed", "in_diagnosis"],
              "the keepers' states: %s" % [states[t] for t in groups["keep"]])
    due = groups["A"] + groups["B"]
    res.check(all(states[t] in ("closed", "cancelled") for t in due + groups["C"] + groups["D"]),
              "states before archiving: %s" % states)
    shown = {t: fixtures.show(cl, t) for t in due + groups["C"] + groups["D"]}
    bytes_redis = {t: redis_bytes(cl, t) for t in shown}
    check_consistent(cl, res, "before archiving")

    # At +800 days the cutoff is +70: A and B go, C (+75), D (+400) and the keepers stay.
    set_clock(clock, 800)
    mem0 = used_memory(cl)
    d = sv(cl, res, "archive", "run", "--limit", "1000") or {}
    mem1 = used_memory(cl)
    res.fig("run_800", "archived %s kept %s files %s" % (d.get("archived"), d.get("kept"), d.get("files")))
    res.check(d.get("archived") == len(due) and d.get("failed") == 0, "archive run at +800: %r" % d)
    want_files = collections.Counter(month_of(0) for _ in groups["A"])
    want_files.update(month_of(40) for _ in groups["B"])
    res.check(d.get("files") == dict(want_files), "files %r, want %r" % (d.get("files"), dict(want_files)))
    kept = {k.get("ticket"): k.get("why") for k in d.get("kept_sample") or []}
    res.check(set(kept) == {tk1, tk2}, "kept %r" % kept)
    res.check("complaint %s is open" % cmp_open in kept.get(tk1, "") and "unpaid" in kept.get(tk2, ""),
              "why the keepers stay: %r" % kept)
    rec = archived(cl)
    res.check(sorted(rec) == sorted(due), "archived %s, want %s" % (sorted(rec), sorted(due)))
    files = archive_files(cl)
    lines = [l for f in files for l in committed_lines(f)]
    gz_bytes = sum(os.path.getsize(f) for f in files)
    res.check(len(lines) == len(due), "%d lines in %s, want %d" % (len(lines), files, len(due)))
    res.fig("tickets_archived", len(rec))
    res.fig("bytes_per_ticket", "redis %d (its keys, MEMORY USAGE), used_memory -%d, compressed %d, json %d" % (
        sum(bytes_redis[t] for t in due) // len(due), (mem0 - mem1) // len(due), gz_bytes // len(due),
        sum(len(l) for l in lines) // len(due)))
    res.check(mem1 < mem0, "used_memory %d -> %d: no drop" % (mem0, mem1))
    r = cl.redis()
    left_behind = (r.memory_usage(cl.key("archived"), samples=0) +
                   sum(r.memory_usage(cl.key("product:%s:past" % shown[t]["serial"]), samples=0) for t in due))
    res.fig("redis_bytes_left_per_archived_ticket", left_behind // len(due))
    for t in due:
        left = ticket_keys(cl, t)
        res.check(not left, "%s: keys left in Redis %s" % (t, left))
        in_index = [i for i in ("tickets", "state:closed", "state:cancelled") if r.zscore(cl.key(i), t) is not None]
        res.check(not in_index, "%s still in %s" % (t, in_index))
    for t in groups["C"] + groups["D"] + groups["keep"]:
        res.check(r.exists(cl.key("ticket:" + t)), "%s left Redis too early" % t)
    res.check(r.exists(cl.key("invoice:" + inv_a1)) and r.get(cl.key("invoice_for:%s:repair" % ta1)) == inv_a1,
              "the invoice of an archived ticket left Redis")
    inv = sv(cl, res, "invoice", "show", inv_a1) or {}
    res.check(inv.get("ticket") == ta1, "invoice show %s: %r" % (inv_a1, inv))
    ps = sv(cl, res, "product", "show", shown[ta1]["serial"]) or {}
    res.check([x.get("id") for x in ps.get("archived_tickets") or []] == [ta1] and
              ps["archived_tickets"][0].get("basis") == "none", "product show: archived_tickets %r" % ps.get(
                  "archived_tickets"))
    rc, _, err = raw(cl, "ticket", "show", ta1)
    path = os.path.join(cl.dir, "archive", month_of(0) + ".jsonl.gz")
    res.check(rc == harness.EXIT_NOT_FOUND and "is archived" in err and path in err, "ticket show %s: %d %s" % (
        ta1, rc, err))
    res.fig("ticket_show_archived", err[:120])

    # Each archived ticket is found, by ticket, customer, serial and month, as it was.
    for t in due:
        s = sv(cl, res, "archive", "search", "--ticket", t) or {}
        found = s.get("tickets") or []
        if not res.check(len(found) == 1 and found[0].get("id") == t and found[0].get("confirmed") is True,
                         "archive search --ticket %s: %r" % (t, s)):
            continue
        rec = found[0]
        res.check([e.get("event") for e in rec.get("timeline")] == [e.get("event") for e in shown[t]["timeline"]],
                  "%s: archived timeline differs" % t)
        res.check(sorted(n.get("id") for n in rec.get("notifications")) ==
                  sorted(n.get("id") for n in shown[t]["notifications"]), "%s: archived notifications differ" % t)
        res.check(rec.get("state") == shown[t]["state"] and rec["ticket"].get("serial") == shown[t]["serial"],
                  "%s: archived ticket %r" % (t, rec.get("ticket")))
    res.check(sv(cl, res, "archive", "search", "--ticket", tc1, want=harness.EXIT_NOT_FOUND) == {},
              "archive search of a ticket still in Redis")
    s = sv(cl, res, "archive", "search", "--customer", ca) or {}
    res.check(sorted(x["id"] for x in s.get("tickets") or []) ==
              sorted(t for t in due if shown[t]["customer_id"] == ca),
              "archive search --customer %s: %s" % (ca, [x["id"] for x in s.get("tickets") or []]))
    s = sv(cl, res, "archive", "search", "--serial", shown[tb1]["serial"]) or {}
    res.check([x["id"] for x in s.get("tickets") or []] == [tb1], "archive search --serial: %r" % s.get("tickets"))
    s = sv(cl, res, "archive", "search", "--from", month_of(0), "--to", month_of(0)) or {}
    want_a = sorted(t for t in due if t in groups["A"] or month_of(40) == month_of(0))
    res.check(sorted(x["id"] for x in s.get("tickets") or []) == want_a, "archive search of %s: %s" % (
        month_of(0), [x["id"] for x in s.get("tickets") or []]))
    text = cl.savctl("archive", "search", "--ticket", ta1)
    res.check(text.returncode == 0 and "Ticket     %s" % ta1 in text.stdout and "Timeline" in text.stdout and
              "Archived   %s" % path in text.stdout, "archive search --ticket (text): %s" % text.stdout[-300:])
    sv(cl, res, "archive", "search", "--from", "2026-13", want=harness.EXIT_REJECTED)

    # Roles: the front desk searches; archiving and the check are a manager's.
    cl.add_identity("desk-ar", "front_desk")
    cl.add_identity("boss-ar", "manager")
    time.sleep(1.5)
    res.check(raw(cl, "--identity", "desk-ar", "archive", "search", "--ticket", ta1)[0] == 0, "front desk search")
    res.check(raw(cl, "--identity", "desk-ar", "archive", "run")[0] == harness.EXIT_FORBIDDEN, "front desk ran archive")
    res.check(check(cl, identity="desk-ar")[0] == harness.EXIT_FORBIDDEN, "front desk ran check")
    res.check(check(cl, identity="boss-ar")[0] == 0, "a manager's check")

    # Erasing a customer whose tickets are archived: their messages show no contact in a search either.
    sv(cl, res, "customer", "erase", ce)
    s = sv(cl, res, "archive", "search", "--customer", ce) or {}
    notes = [n for x in s.get("tickets") or [] for n in x.get("notifications") or []]
    res.check(notes and all(not n.get("recipient") and not n.get("body") for n in notes) and
              all(x.get("customer", {}).get("name") == "(effacé)" for x in s["tickets"]),
              "search after erasure: %r" % [(n.get("recipient"), (n.get("body") or "")[:20]) for n in notes])
    check_consistent(cl, res, "after archiving at +800")

    # At +1200 (cutoff +470) C and D go too; the keepers stay.
    set_clock(clock, 1200)
    d = sv(cl, res, "archive", "run") or {}
    res.check(d.get("archived") == 3 and set(archived(cl)) == set(due + groups["C"] + groups["D"]),
              "archive run at +1200: %r" % d)
    res.check(set(k.get("ticket") for k in d.get("kept_sample") or []) == {tk1, tk2}, "kept %r" % d.get(
        "kept_sample"))
    again = sv(cl, res, "archive", "run") or {}
    res.check(again.get("archived") == 0, "a second run archived %r" % again)
    counts = check_consistent(cl, res, "after archiving at +1200")
    res.fig("check_after", "tickets %s archived %s files %s lines %s" % (
        counts.get("tickets"), counts.get("archived"), counts.get("archive_files"), counts.get("archive_lines")))
    res.check(counts.get("archived") == 9 and counts.get("tickets") == 3 and counts.get("archive_lines") == 9,
              "counts after: %r" % counts)
    res.check(drained(cl), "outboxes not drained")
    fixtures.check_drained(cl, res)


# ---------------------------------------------------------------- 3. archive_crash

@collecting
def test_archive_crash(cl, res):
    n = 240
    cl.start_all()
    shop = Shop(cl, res, "ak")
    cid = shop.customer(name="Client Crash")
    tids = cancelled_tickets(cl, res, cid, range(n), "AK", "installation", "pose", 1)
    check_consistent(cl, res, "before archiving")
    mem0 = used_memory(cl)
    per_ticket = sum(redis_bytes(cl, t) for t in tids[:20]) // 20

    # The timer archives every 100 ms; SIGKILLs land while it does.
    cl.write_config(cl.config, extra={"intake": [("scheduler_ms", "100")]})
    env = {"SAV_CLOCK_OFFSET_MS": str(800 * DAY_MS)}
    code = cl.stop_service("intake")
    res.check(code == 0, "sav-intake exited %r on SIGTERM" % code)
    rnd = random.Random(9)
    kills = during = 0
    progress = []
    r = cl.redis()
    for k in range(15):
        before = r.hlen(cl.key("archived"))
        if before >= len(tids):
            break
        p = cl.start_service("intake", env)
        # In turn: as soon as removals begin (the rest of a committed chunk still in Redis), a few removals later,
        # or at a random instant after the start (reading the tickets, writing the file).
        target = before + (1 if k % 3 == 0 else rnd.randint(2, 60))
        deadline = time.monotonic() + (rnd.uniform(0.2, 1.5) if k % 3 == 2 else 30)
        while time.monotonic() < deadline and p.poll() is None and r.hlen(cl.key("archived")) < min(target, len(tids)):
            time.sleep(0.002)
        cl.kill_service("intake")
        kills += 1
        after = r.hlen(cl.key("archived"))
        progress.append(after)
        during += before < after < len(tids)  # killed while it was archiving
    cl.start_service("intake", env)
    cl.wait_service("intake")
    harness.wait_until(lambda: len(archived(cl)) >= len(tids), 60, 0.2)
    res.fig("kills", "%d, %d while archiving" % (kills, during))
    res.fig("archived_after_each_kill", progress)
    rec = archived(cl)
    res.check(sorted(rec) == sorted(tids), "%d of %d archived; missing %s" % (
        len(set(rec) & set(tids)), len(tids), sorted(set(tids) - set(rec))[:5]))
    r = cl.redis()
    left = [t for t in tids if r.exists(cl.key("ticket:" + t))]
    res.check(not left, "tickets still in Redis: %s" % left[:5])

    files = archive_files(cl)
    per_id = collections.Counter(json.loads(l)["id"] for f in files for l in committed_lines(f))
    res.check(set(per_id) == set(tids), "the files hold %d tickets of %d" % (len(set(per_id) & set(tids)), len(tids)))
    dup = sum(v - 1 for v in per_id.values())
    res.fig("file_lines", sum(per_id.values()))
    res.fig("duplicate_lines", dup)
    found, more = [], False
    for f in files:
        month = os.path.basename(f)[:7]
        s = sv(cl, res, "archive", "search", "--from", month, "--to", month, "--limit", "1000") or {}
        found += [x["id"] for x in s.get("tickets") or []]
        res.check(all(x.get("confirmed") for x in s.get("tickets") or []), "search %s: unconfirmed records" % month)
        more |= bool(s.get("more"))
    c = collections.Counter(found)
    res.check((sorted(c) == sorted(tids) or (more and set(c) < set(tids))) and max(c.values() or [0]) == 1,
              "archive search: %d distinct of %d, shown twice: %s" % (
                  len(c), len(tids), [k for k, v in c.items() if v > 1][:5]))
    res.fig("search_by_month", "%d records, %s" % (len(found), "more: the reply is full" if more else "all"))
    one = pmap(lambda t: raw(cl, "archive", "search", "--ticket", t), tids)
    res.check(all(rc == 0 and [x.get("id") for x in (d or {}).get("tickets") or []] == [t]
                  for t, (rc, d, _) in zip(tids, one)),
              "archive search --ticket: not exactly one record each: %s" % [
                  (t, rc, len((d or {}).get("tickets") or [])) for t, (rc, d, _) in zip(tids, one)
                  if rc != 0 or len((d or {}).get("tickets") or []) != 1][:5])
    with open(os.path.join(cl.dir, "intake.log"), errors="replace") as f:
        logged = [json.loads(l).get("msg", "") for l in f if l.startswith("{")]
    res.fig("uncommitted_tails_cut", sum("uncommitted bytes" in m for m in logged))
    res.fig("records_found_written_before_a_kill", sum(int(m.split(": ")[1].split()[0]) for m in logged
                                                       if "committed before a crash, not written again" in m))
    mem1 = used_memory(cl)
    gz = sum(os.path.getsize(f) for f in files)
    res.fig("bytes_per_ticket", "redis %d (its keys), used_memory -%d, compressed %d" % (
        per_ticket, (mem0 - mem1) // len(tids), gz // len(tids)))
    counts = check_consistent(cl, res, "after the crashes")
    res.check(counts.get("archived") == len(tids) and counts.get("archive_duplicate_lines") == dup,
              "check counts %r" % counts)

    # What a crash in the middle of an append leaves (part of a gzip member, part of an index line) is ignored by
    # readers and cut off by the next append to that month's file.
    code = cl.stop_service("intake")
    res.check(code == 0, "sav-intake exited %r on SIGTERM" % code)
    cl.start_service("intake")
    cl.wait_service("intake")
    last = (cancelled_tickets(cl, res, cid, [n], "AK", "installation", "pose", 1) or [None])[0]
    month = fixtures.today().strftime("%Y-%m")
    path = os.path.join(cl.dir, "archive", month + ".jsonl.gz")
    with open(path, "ab") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03cut by a crash")
    with open(path[:-len(".jsonl.gz")] + ".idx", "a") as f:
        f.write("99")
    counts = check_consistent(cl, res, "with a cut append at the end of %s" % path)
    res.check(counts.get("archive_uncommitted_bytes") == 24, "uncommitted bytes %r" % counts.get(
        "archive_uncommitted_bytes"))
    res.check(raw(cl, "archive", "search", "--ticket", tids[0])[0] == 0, "search with a cut append")
    code = cl.stop_service("intake")
    cl.start_service("intake", env)
    cl.wait_service("intake")
    res.check(harness.wait_until(lambda: last in archived(cl), 20, 0.1), "%s not archived after the cut" % last)
    with open(os.path.join(cl.dir, "intake.log"), errors="replace") as f:
        cut = sum("24 uncommitted bytes" in line for line in f)
    res.check(cut == 1, "the cut append was not cut off (%d log lines)" % cut)
    counts = check_consistent(cl, res, "after the next append")
    res.check(counts.get("archive_uncommitted_bytes") == 0 and counts.get("archived") == len(tids) + 1,
              "counts after the cut: %r" % counts)
    res.check(len(committed_lines(path)) == len(tids) + 1 + dup, "lines of %s" % path)
    res.check(drained(cl), "outboxes not drained")


TESTS = [
    ("backup_restore", test_backup_restore),
    ("archive_lifecycle", test_archive_lifecycle),
    ("archive_crash", test_archive_crash),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
