#!/usr/bin/python3
"""SAV system tests of packed closed tickets (issue 8: Redis memory per closed ticket): a settled closed ticket's
timeline, pre-diagnosis, coverage, verdicts, quotes and notifications become one compressed value, packed:<T>.

Usage: /usr/bin/python3 tests/system/pack_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

- pack_lifecycle: a paid repair (quote, invoice, payment), a free repair under the legal guarantee (warranty
  claim), a cancelled ticket and a paid repair of a customer to be erased, with their notifications recorded; one
  closed ticket with an open complaint stays. Nothing is packed before intake.pack_after_days (2); at +3 days
  `savctl archive pack` packs the four: `ticket show` (text and --json), ticket list, customer show and product
  show print exactly what they printed before, coverage_facts of a later ticket of the same product answers the
  same, `savctl check` is consistent and counts the same notifications; bytes per ticket before and after (MEMORY
  USAGE of the ticket's own keys, at most 2 KiB packed; its dedup keys apart). Then what may still happen to a closed ticket: a complaint opened and
  resolved, a credit note on its invoice, the warranty claim approved and paid, the customer's erasure (every
  message pseudonymised, the packed ones too), each shown over the packed records, and packed again, whole, two
  days later; at +800 days archiving writes for an untouched packed ticket the very record (same digest) it would
  have written before packing. Roles: a front desk may not pack.
- pack_sent: the same kinds with every message really sent through the test SMTP server and SMSC (message ids
  and receipts stored): at +3 days the SMS whose delivery report may still come stay out of the packed value, at
  +8 days they go in; `ticket show` identical throughout; bytes per ticket of each kind.
- pack_crash: 200 closed tickets packed by intake's timer (every 100 ms, intake.pack_after_days = 0) while intake
  is SIGKILLed again and again and Redis is SIGKILLed and restarted twice: every ticket ends packed, never half
  (each one's keys are either all there or packed), `ticket show --json` of each is what it was, `savctl check`
  consistent; used_memory per ticket before and after, each measured on a Redis just restarted from its AOF.
Every test ends as in run.py: no service died on its own, all exit 0 on SIGTERM, no sanitizer report in a log.
"""

import json
import os
import random
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from archive_tests import (cancelled_tickets, check, check_consistent, committed_lines, archive_files,  # noqa: E402
                           drained, free_repair, paid_repair, set_clock, start_with_clock)
from billing_tests import Shop, collecting, raw, stock_up, sv  # noqa: E402
from fixtures import pmap  # noqa: E402

BULKY = ("timeline:", "prediag:", "coverage:", "verdict:", "verdicts:", "quote:", "quotes:", "notifs:")
TARGET = 2048


# ---------------------------------------------------------------- helpers

def show_json(cl, tid):
    r = cl.savctl("ticket", "show", tid, json_out=True)
    return r.stdout if r.returncode == 0 else "exit %d %s" % (r.returncode, r.stderr)


def show_text(cl, tid):
    r = cl.savctl("ticket", "show", tid)
    return r.stdout if r.returncode == 0 else "exit %d %s" % (r.returncode, r.stderr)


def views(cl, tids):
    """Everything a reader sees of the tickets: ticket show (JSON and text) of each."""
    return {t: (show_json(cl, t), show_text(cl, t)) for t in tids}


def own_keys(cl, tid):
    """The ticket's own keys as they are now (not its dedup keys, not its index entries)."""
    r = cl.redis()
    names = ["ticket:" + tid, "ticket:%s:complaints" % tid, "packed:" + tid] + [b + tid for b in BULKY]
    names += ["notif:" + n for n in r.lrange(cl.key("notifs:" + tid), 0, -1)]
    return [n for n in names if r.exists(cl.key(n))]


def own_bytes(cl, tid):
    r = cl.redis()
    return sum(r.memory_usage(cl.key(n), samples=0) or 0 for n in own_keys(cl, tid))


def dedup_bytes(cl, tid):
    """MEMORY USAGE of the dedup keys of the ticket's requests and events (they expire after redis.dedup_ttl_days)."""
    r = cl.redis()
    keys = [k for pat in ("seen:*:%s/*" % tid, "req:%s/*" % tid) for k in r.scan_iter(cl.key(pat), count=1000)]
    return sum(r.memory_usage(k, samples=0) or 0 for k in keys)


def packed(cl, tid):
    return bool(cl.redis().exists(cl.key("packed:" + tid)))


def pack(cl, res, want_packed=None, **kw):
    d = sv(cl, res, "archive", "pack", "--limit", "100000", **kw) or {}
    if want_packed is not None:
        res.check(d.get("packed") == want_packed and d.get("failed") == 0, "archive pack: %r (want %d packed)" % (
            d, want_packed))
    return d


def coverage_facts(cl, tid):
    return cl.redis().execute_command("FCALL_RO", "coverage_facts", 1, cl.key("ticket:" + tid), cl.key(""))


def same_views(res, before, after, when):
    for t in before:
        res.check(after[t][0] == before[t][0], "%s: ticket show --json differs %s:\n%s\n---\n%s" % (
            t, when, before[t][0][:1500], after[t][0][:1500]))
        res.check(after[t][1] == before[t][1], "%s: ticket show (text) differs %s" % (t, when))


def restarted_memory(cl):
    """(used_memory, used_memory_dataset) of a Redis just restarted from its AOF (so that neither counts the
    fragmentation left by what was deleted), the services reconnecting by themselves."""
    cl.kill_redis()
    cl._redis = None
    cl.start_redis()
    r = cl.redis()
    info = r.info("memory")
    return info["used_memory"], info["used_memory_dataset"]


def figures(cl, res, name, kinds, before_bytes):
    """Figures of bytes per ticket of each kind after packing; checks the 2 KiB target."""
    out = []
    for kind, tid in kinds:
        b = own_bytes(cl, tid)
        out.append("%s %d->%d (dedup keys %d until their TTL)" % (kind, before_bytes[tid], b, dedup_bytes(cl, tid)))
        res.check(b <= TARGET, "%s: %s ticket %s takes %d bytes packed, over %d: %s" % (name, kind, tid, b, TARGET,
                                                                                        own_keys(cl, tid)))
    res.fig(name + "_bytes", "; ".join(out))


# ---------------------------------------------------------------- 1. pack_lifecycle

@collecting
def test_pack_lifecycle(cl, res):
    clock = os.path.join(cl.dir, "clock-offset")
    set_clock(clock, 0)
    cl.write_config(cl.config, extra={"intake": [("scheduler_ms", "3600000")]})
    start_with_clock(cl, clock)
    stock_up(cl, res)
    shop = Shop(cl, res, "pk")
    d = sv(cl, res, "customer", "add", "--name", "Paule Packée", "--phone", "06 12 34 56 78", "--email",
           "paule@example.fr") or {}
    ca = d.get("id")
    d = sv(cl, res, "customer", "add", "--name", "Eric Effacé", "--phone", "06 98 76 54 32", "--email",
           "eric@example.fr", "--lang", "en") or {}
    ce = d.get("id")
    t_paid, inv = paid_repair(shop, ca)
    t_free = free_repair(shop, ca)
    t_can = shop.ticket(ca)
    t_erase, _ = paid_repair(shop, ce)
    for t in (t_paid, t_free, t_erase):
        sv(cl, res, "ticket", "pickup", t)
    sv(cl, res, "ticket", "cancel", t_can, "--reason", "annulé")
    t_keep, _ = paid_repair(shop, ca)
    sv(cl, res, "ticket", "pickup", t_keep)
    cmp_open = (sv(cl, res, "complaint", "open", t_keep, "--reason", "damaged", "--text", "Rayure") or {}).get("id")
    res.check(drained(cl), "outboxes not drained")
    serial_free = json.loads(show_json(cl, t_free)).get("serial")
    # A later ticket of the free repair's product: its coverage facts name the earlier one.
    d = sv(cl, res, "ticket", "open", "--customer", ca, "--serial", serial_free, "--kind", "repair", "--symptom",
           "fuit", "--centre", "PAR-01") or {}
    t_later = d.get("id")
    res.check(drained(cl), "outboxes not drained")
    # A bounced e-mail: it stays out of the packed value, where `notification list` and `retry` find it.
    r = cl.redis()
    bounced = [n for n in r.lrange(cl.key("notifs:" + t_paid), 0, -1) if ":email:" in n][0]
    r.hset(cl.key("notif:" + bounced), mapping={"status": "failed", "last_answer": "550 no such user"})
    r.zadd(cl.key("mail:sending:failed"), {bounced: int(time.time() * 1000)})
    due = [t_paid, t_free, t_can, t_erase]
    kinds = [("paid repair", t_erase), ("free repair", t_free), ("cancelled", t_can)]
    facts = coverage_facts(cl, t_later)
    digests = {t: r.execute_command("FCALL_RO", "archive_collect", 1, cl.key("ticket:" + t), cl.key(""), t,
                                    int(time.time() * 1000) + 10 ** 12)[1] for t in due}
    bytes0 = {t: own_bytes(cl, t) for t in due}
    counts0 = check_consistent(cl, res, "before packing")

    # Roles: packing is a manager's.
    cl.add_identity("desk-pk", "front_desk")
    time.sleep(1.5)
    res.check(raw(cl, "--identity", "desk-pk", "archive", "pack")[0] == harness.EXIT_FORBIDDEN, "front desk packed")

    # Not before intake.pack_after_days (2).
    pack(cl, res, want_packed=0)
    res.check(not any(packed(cl, t) for t in due), "packed before intake.pack_after_days")
    set_clock(clock, 3)
    before = views(cl, due + [t_keep])
    lists = {"list": sv(cl, res, "ticket", "list", "--limit", "1000"), "customer": sv(cl, res, "customer", "show", ca),
             "product": sv(cl, res, "product", "show", serial_free)}
    d = pack(cl, res, want_packed=len(due))
    res.fig("pack_run", "packed %s, %s bytes of records into %s, kept %s" % (
        d.get("packed"), d.get("payload_bytes"), d.get("packed_bytes"), d.get("kept_sample")))
    res.check([k.get("ticket") for k in d.get("kept_sample") or []] == [t_keep] and
              "complaint %s is open" % cmp_open in d["kept_sample"][0].get("why", ""), "kept: %r" % d.get("kept_sample"))
    res.check(all(packed(cl, t) for t in due) and not packed(cl, t_keep), "packed: %s" % [packed(cl, t) for t in due])
    res.check(pack(cl, res, want_packed=0).get("repacked") == 0, "a second run packed again")
    for t in due:
        left = [k for k in own_keys(cl, t) if k.startswith(("timeline:", "prediag:", "verdict", "quote", "notif:"))
                and k != "notif:" + bounced]
        res.check(not left, "%s: keys left after packing: %s" % (t, left))
    same_views(res, before, views(cl, due + [t_keep]), "after packing")
    res.check(sv(cl, res, "ticket", "list", "--limit", "1000") == lists["list"], "ticket list differs after packing")
    res.check(sv(cl, res, "customer", "show", ca) == lists["customer"], "customer show differs after packing")
    res.check(sv(cl, res, "product", "show", serial_free) == lists["product"], "product show differs after packing")
    res.check(coverage_facts(cl, t_later) == facts, "coverage_facts of %s differs after packing" % t_later)
    res.check(r.lrange(cl.key("notifs:" + t_paid), 0, -1) == [bounced], "messages left out of %s: %s" % (
        t_paid, r.lrange(cl.key("notifs:" + t_paid), 0, -1)))
    listed = sv(cl, res, "notification", "list", "--status", "failed") or {}
    res.check([x.get("id") for x in listed.get("notifications") or []] == [bounced], "notification list --status "
              "failed after packing: %r" % listed)
    counts1 = check_consistent(cl, res, "after packing")
    res.check(counts1.get("packed") == len(due) and counts1.get("notifications") == counts0.get("notifications"),
              "check counts after packing: %r (before: %r)" % (counts1, counts0))
    figures(cl, res, "recorded", kinds, bytes0)

    # What may still happen to a closed ticket, over its packed records.
    cmp_id = (sv(cl, res, "complaint", "open", t_paid, "--reason", "damaged", "--text", "Rayure au dos") or {}).get("id")
    res.check(drained(cl), "outboxes not drained")
    sv(cl, res, "invoice", "credit", inv, "--amount", 500, "--reason", "geste commercial")
    claim = cl.redis().get(cl.key("claim_for:" + t_free))
    res.check((sv(cl, res, "claim", "approve", claim) or {}).get("status") == "approved", "claim approve %s" % claim)
    res.check((sv(cl, res, "claim", "pay", claim) or {}).get("status") == "paid", "claim pay %s" % claim)
    old = json.loads(before[t_paid][0])
    now = json.loads(show_json(cl, t_paid))
    events = [e["event"] for e in now["timeline"][len(old["timeline"]):]]
    res.check(now["timeline"][:len(old["timeline"])] == old["timeline"] and
              events[:1] == ["complaint.opened"] and "credit.issued" in events, "timeline after the writes: %s" % events)
    res.check(now["notifications"][:len(old["notifications"])] == old["notifications"] and
              any(n["event"] == "complaint_acknowledged" for n in now["notifications"][len(old["notifications"]):]),
              "notifications after the complaint: %s" % [n["event"] for n in now["notifications"]])
    res.check([c.get("id") for c in now.get("complaints") or []] == [cmp_id], "complaints: %r" % now.get("complaints"))
    sv(cl, res, "complaint", "resolve", cmp_id, "--resolution", "repair", "--note", "repris")
    res.check(drained(cl), "outboxes not drained")
    check_consistent(cl, res, "after writes to packed tickets")

    # The customer's erasure reaches the messages of their packed ticket.
    d = sv(cl, res, "customer", "erase", ce) or {}
    res.check(d.get("notifications_erased", 0) > 0, "customer erase: %r" % d)
    er = json.loads(show_json(cl, t_erase))
    res.check(er.get("notifications") and all(not n.get("recipient") and not n.get("body") and not n.get("subject")
                                              for n in er["notifications"]),
              "erased customer's packed messages: %r" % [(n.get("recipient"), n.get("body", "")[:20])
                                                          for n in er.get("notifications", [])])
    res.check(er["timeline"][-1]["event"] == "customer.erased", "timeline after erasure: %s" % er["timeline"][-1])
    r = cl.redis()
    res.check(not packed(cl, t_erase) and all(
        not r.hget(cl.key("notif:" + nid), "recipient") for nid in r.lrange(cl.key("notifs:" + t_erase), 0, -1)),
        "%s after its customer's erasure: unpacked, its messages pseudonymised in Redis" % t_erase)

    # Two days later the tickets written to are packed again, whole; they show the same.
    set_clock(clock, 6)
    written = views(cl, due)
    d = pack(cl, res)
    # Packed again: the ticket with a complaint and a credit note; packed anew: the one unpacked by the erasure (a
    # claim's status is not the ticket's: the free repair was not written to).
    res.check(d.get("packed") == 2 and d.get("repacked") == 1 and d.get("failed") == 0, "packing again: %r" % d)
    res.check(all(packed(cl, t) for t in due) and not r.exists(cl.key("timeline:" + t_paid)),
              "not packed again: %s" % [packed(cl, t) for t in due])
    same_views(res, written, views(cl, due), "after packing again")
    check_consistent(cl, res, "after packing again")

    # Archiving a packed ticket writes the record it would have written unpacked.
    set_clock(clock, 800)
    d = sv(cl, res, "archive", "run", "--limit", "1000") or {}
    res.check(d.get("archived") == len(due) and d.get("failed") == 0, "archive run at +800: %r" % d)
    lines = {json.loads(l)["id"]: json.loads(l) for f in archive_files(cl) for l in committed_lines(f)}
    res.check(lines.get(t_can, {}).get("digest") == digests[t_can], "%s: archived digest %s, before packing %s" % (
        t_can, lines.get(t_can, {}).get("digest"), digests[t_can]))
    for t in due:
        rec, shown = lines.get(t, {}), json.loads(written[t][0])
        res.check([e.get("event") for e in rec.get("timeline", [])] == [e.get("event") for e in shown["timeline"]] and
                  [n.get("id") for n in rec.get("notifications", [])] == [n.get("id") for n in shown["notifications"]],
                  "%s: the archived record differs from the packed ticket" % t)
        res.check(not packed(cl, t) and not r.exists(cl.key("ticket:" + t)), "%s: left in Redis after archiving" % t)
    check_consistent(cl, res, "after archiving")
    res.check(drained(cl), "outboxes not drained")
    fixtures.check_drained(cl, res)


# ---------------------------------------------------------------- 2. pack_sent

@collecting
def test_pack_sent(cl, res):
    from notification_tests import SmtpPeer
    from sms_tests import PASSWORD, SmscPeer
    clock = os.path.join(cl.dir, "clock-offset")
    set_clock(clock, 0)
    smtp = SmtpPeer(cl, os.path.join(cl.dir, "smtp")).start()
    smsc = SmscPeer(cl, "pack").start("--receipts")
    try:
        cl.write_config(cl.config, extra={
            "intake": [("scheduler_ms", "3600000")],
            "notification": [("smtp_url", "smtp://127.0.0.1:%d" % smtp.port), ("smpp_host", "127.0.0.1"),
                             ("smpp_port", str(smsc.port)), ("smpp_password", cl.secret("smpp", PASSWORD)),
                             ("sms_quiet_hours", "off")]})
        start_with_clock(cl, clock)
        stock_up(cl, res)
        shop = Shop(cl, res, "ps")
        cid = (sv(cl, res, "customer", "add", "--name", "Simone Envoyée", "--phone", "06 11 22 33 44", "--email",
                  "simone@example.fr") or {}).get("id")
        t_paid, _ = paid_repair(shop, cid)
        t_free = free_repair(shop, cid)
        t_can = shop.ticket(cid)
        for t in (t_paid, t_free):
            sv(cl, res, "ticket", "pickup", t)
        sv(cl, res, "ticket", "cancel", t_can, "--reason", "annulé")
        res.check(drained(cl), "outboxes not drained")
        due = [t_paid, t_free, t_can]
        r = cl.redis()

        def all_sent():
            hs = [r.hgetall(cl.key("notif:" + n)) for t in due for n in r.lrange(cl.key("notifs:" + t), 0, -1)]
            return hs and all(h.get("status") == "delivered" or h.get("status") == "sent" and h.get("channel") == "email"
                              for h in hs)
        res.check(harness.wait_until(all_sent, 60, 0.2), "messages not all sent")
        sms = [r.hgetall(cl.key("notif:" + n)) for n in r.lrange(cl.key("notifs:" + t_paid), 0, -1)]
        res.check(any(h.get("message_ids") and any(k.startswith("receipt:") for k in h) for h in sms),
                  "no SMSC message ids and receipts stored")
        before = views(cl, due)
        bytes0 = {t: own_bytes(cl, t) for t in due}
        set_clock(clock, 3)
        pack(cl, res, want_packed=len(due))
        live = sum(r.llen(cl.key("notifs:" + t)) for t in due)
        res.fig("sms_left_out_at_3_days", live)
        same_views(res, before, views(cl, due), "after packing at +3 days")
        set_clock(clock, 8)
        d = pack(cl, res)
        res.check(d.get("repacked") == (len(due) if live else 0) and d.get("failed") == 0, "at +8 days: %r" % d)
        res.check(not any(r.exists(cl.key("notifs:" + t)) for t in due), "messages left out at +8 days")
        same_views(res, before, views(cl, due), "after packing at +8 days")
        check_consistent(cl, res, "after packing sent tickets")
        figures(cl, res, "sent", [("paid repair", t_paid), ("free repair", t_free), ("cancelled", t_can)], bytes0)
    finally:
        smtp.stop()
        smsc.stop()


# ---------------------------------------------------------------- 3. pack_crash

@collecting
def test_pack_crash(cl, res):
    n = 200
    cl.start_all()
    shop = Shop(cl, res, "pc")
    cid = shop.customer(name="Client Crash")
    tids = cancelled_tickets(cl, res, cid, range(n), "PC", "repair", "ne chauffe plus", 2)
    r = cl.redis()
    before = dict(zip(tids, pmap(lambda t: show_json(cl, t), tids)))
    check_consistent(cl, res, "before packing")
    mem0 = restarted_memory(cl)

    cl.write_config(cl.config, extra={"intake": [("scheduler_ms", "100"), ("pack_after_days", "0")]})
    code = cl.stop_service("intake")
    res.check(code == 0, "sav-intake exited %r on SIGTERM" % code)
    rnd = random.Random(8)
    count = lambda: sum(1 for _ in cl.redis().scan_iter(cl.key("packed:*"), count=1000))  # noqa: E731
    kills = during = redis_kills = 0
    progress = []
    for k in range(16):
        done = count()
        if done >= len(tids):
            break
        p = cl.start_service("intake")
        target = done + rnd.randint(1, 25)
        deadline = time.monotonic() + (rnd.uniform(0.2, 1.2) if k % 3 == 2 else 30)
        while time.monotonic() < deadline and p.poll() is None and count() < min(target, len(tids)):
            time.sleep(0.002)
        if k in (4, 9):
            cl.kill_redis()  # Redis dies too: the AOF (appendfsync always) has every packing call or none of it
            redis_kills += 1
        cl.kill_service("intake")
        kills += 1
        if k in (4, 9):
            cl._redis = None
            cl.start_redis()
            r = cl.redis()
        after = count()
        progress.append(after)
        during += done < after < len(tids)
    cl.start_service("intake")
    cl.wait_service("intake")
    harness.wait_until(lambda: count() >= len(tids), 60, 0.2)
    res.fig("kills", "%d intake, %d Redis, %d while packing" % (kills, redis_kills, during))
    res.fig("packed_after_each_kill", progress)
    res.check(count() == len(tids), "%d of %d packed" % (count(), len(tids)))
    half = [t for t in tids if packed(cl, t) == any(r.exists(cl.key(b + t)) for b in ("timeline:", "prediag:"))]
    res.check(not half, "tickets half packed: %s" % half[:5])
    after = dict(zip(tids, pmap(lambda t: show_json(cl, t), tids)))
    differ = [t for t in tids if after[t] != before[t]]
    res.check(not differ, "%d ticket(s) show differently after packing: %s" % (len(differ), differ[:5]))
    mem1 = restarted_memory(cl)
    res.fig("memory_per_ticket", "used_memory %d -> %d, used_memory_dataset %d -> %d (Redis restarted from its AOF "
            "before each: no fragmentation)" % (mem0[0] // n, mem1[0] // n, mem0[1] // n, mem1[1] // n))
    counts = check_consistent(cl, res, "after packing under SIGKILL")
    res.check(counts.get("packed") == len(tids), "check counts %r" % counts)
    rc, doc, _ = check(cl)
    res.fig("check", "exit %d, %s packed, %s bytes of values for %s of records" % (
        rc, (doc or {}).get("counts", {}).get("packed"), (doc or {}).get("counts", {}).get("packed_bytes"),
        (doc or {}).get("counts", {}).get("packed_payload_bytes")))
    res.check(drained(cl), "outboxes not drained")


TESTS = [
    ("pack_lifecycle", test_pack_lifecycle),
    ("pack_sent", test_pack_sent),
    ("pack_crash", test_pack_crash),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
