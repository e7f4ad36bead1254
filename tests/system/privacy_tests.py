#!/usr/bin/python3
"""SAV system tests of personal data (issue 7): `savctl customer erase` (RGPD right to erasure, as
pseudonymisation) and phone numbers and e-mail addresses kept out of the logs.

Usage: /usr/bin/python3 tests/system/privacy_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

- customer_erase: three customers with a phone and an e-mail, served by a real SMTP server that is down at first
  (their e-mails wait in the queue). Jeanne's chargeable repair goes to the end (quote, invoice, payment, pickup);
  Paul's ticket is still open; a business's repair is closed with its invoice unpaid. Erasing Paul and the
  business is refused with the reason (open ticket, unpaid invoice) and changes nothing in Redis. Erasing Jeanne:
  her record keeps no name, phone or e-mail and no consent; every message sent or due to her keeps no recipient,
  subject or text, and those still queued are withdrawn (status erased) and never reach the SMTP server when it
  comes up; her invoice keeps the name it was issued to and its legal mentions (export); each of her tickets'
  timelines records the erasure and who did it; a STOP from her old number finds no one; a search by her old
  name finds nothing; the same request again is a replay; a second erasure changes nothing. Other customers'
  messages go out as usual.
- no_personal_data_in_logs: after that flow, with e-mails and SMS really sent (SMTP and SMSC peers) and a STOP
  received, no service log contains any customer's phone number (E.164 or national) or e-mail address.
Every test ends as in run.py: no service died on its own, all exit 0 on SIGTERM, no sanitizer report in a log.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from billing_tests import SIREN, Shop, raw, stock_up, sv  # noqa: E402
from fixtures import Result  # noqa: E402
from notification_tests import SmtpPeer  # noqa: E402
from sms_tests import SmscPeer  # noqa: E402

PEOPLE = {
    "jeanne": ("Jeanne Martin-Erasure", "06 31 41 59 26", "+33631415926", "jeanne.erasure@example.fr", None),
    "paul": ("Paul Durand", "06 27 18 28 18", "+33627182818", "paul.durand@example.fr", None),
    "garage": ("Garage Lefèvre SARL", "06 16 18 03 39", "+33616180339", "compta@garage-lefevre.example", SIREN),
}


def add_people(cl, res):
    ids = {}
    for key, (name, phone, _, email, business) in PEOPLE.items():
        args = ["customer", "add", "--name", name, "--phone", phone, "--email", email, "--consent",
                "sms,email,marketing"]
        if business:
            args += ["--business", business]
        d = sv(cl, res, *args) or {}
        ids[key] = d.get("id")
    if not all(ids.values()):
        raise harness.HarnessError("customers not registered: %s" % ids)
    return ids


def keys_of(cl, cid, tids):
    """What an erasure would change, for before/after comparisons: the customer's record and indexes, their
    tickets and timelines (DUMP), and the recipient, subject and text of their messages (the senders keep updating
    a queued message's attempts meanwhile)."""
    r = cl.redis()
    names = ["customer:" + cid, "customer:%s:tickets" % cid, "customer:%s:products" % cid]
    for tid in tids:
        names += ["ticket:" + tid, "timeline:" + tid, "notifs:" + tid]
    out = {n: r.dump(cl.key(n)) for n in names}
    for tid in tids:
        for n in r.lrange(cl.key("notifs:" + tid), 0, -1):
            out["notif:" + n] = r.hmget(cl.key("notif:" + n), "recipient", "subject", "body", "erased_at")
    return out


def notifs_of(cl, tids):
    r = cl.redis()
    out = {}
    for tid in tids:
        for n in r.lrange(cl.key("notifs:" + tid), 0, -1):
            out[n] = r.hgetall(cl.key("notif:" + n))
    return out


def test_customer_erase(cl):
    res = Result()
    smtp_port = harness.free_ports(1)[0]
    cl.write_config(cl.config, extra={"notification": [
        ("smtp_url", "smtp://127.0.0.1:%d" % smtp_port), ("smtp_timeout_ms", "1000"), ("mail_retry_max_ms", "300"),
        ("mail_domain", "sav-test.example")]})
    cl.start_all()
    smtp = None
    try:
        stock_up(cl, res)
        ids = add_people(cl, res)
        shop = Shop(cl, res, "er")
        # Jeanne: a chargeable repair to the end; the business: repaired and closed, invoice unpaid; Paul: open.
        tj, inv_j = shop.invoiced(ids["jeanne"])
        total = (sv(cl, res, "invoice", "show", inv_j) or {}).get("total_cents")
        sv(cl, res, "payment", "record", inv_j, "--amount", total, "--method", "card")
        sv(cl, res, "ticket", "pickup", tj)
        tg, inv_g = shop.invoiced(ids["garage"])
        sv(cl, res, "ticket", "pickup", tg)
        tp = shop.ticket(ids["paul"])
        r = cl.redis()
        for who, tid, want in (("jeanne", tj, "closed"), ("garage", tg, "closed"), ("paul", tp, "in_diagnosis")):
            res.check(r.hget(cl.key("ticket:" + tid), "state") == want, "%s's ticket %s is %s, want %s" % (
                who, tid, r.hget(cl.key("ticket:" + tid), "state"), want))
        queued_j = {k for k, v in notifs_of(cl, [tj]).items() if v.get("status") == "queued"}
        res.fig("jeanne_emails_queued", len(queued_j))
        res.check(queued_j, "none of Jeanne's e-mails waits in the queue: the withdrawal is not exercised")

        # Refused: an open ticket, an unpaid invoice. Nothing changes.
        for who, tid, why in (("paul", tp, "open tickets"), ("garage", tg, "unpaid invoices")):
            before = keys_of(cl, ids[who], [tid])
            rc, _, err = raw(cl, "customer", "erase", ids[who])
            res.check(rc == harness.EXIT_REJECTED and why in err and (tid in err or inv_g in err),
                      "erase %s: exit %d %r, want 2 naming %s" % (who, rc, err, why))
            res.fig("refused_" + who, err.split(": ", 2)[-1][:100])
            res.check(keys_of(cl, ids[who], [tid]) == before, "a refused erasure of %s changed Redis" % who)

        # Jeanne is erased.
        # The right to erasure is a manager's (or an admin's) act, recorded under their identity.
        cl.add_identity("dpo-01", "manager")
        cl.add_identity("desk1", "front_desk")
        time.sleep(1.5)  # the services read the authorised clients file again within a second
        rc, _, err = raw(cl, "--identity", "desk1", "customer", "erase", ids["jeanne"])
        res.check(rc == harness.EXIT_FORBIDDEN, "a front desk identity erased a customer: exit %d %r" % (rc, err))
        d = sv(cl, res, "--identity", "dpo-01", "customer", "erase", ids["jeanne"], "--request-id", "erase-jeanne") or {}
        res.fig("erase", d)
        res.check(d.get("replayed") is False and d.get("tickets") == 1 and d.get("notifications_erased", 0) >= 4,
                  "customer erase: %r" % d)
        again = sv(cl, res, "customer", "erase", ids["jeanne"], "--request-id", "erase-jeanne") or {}
        res.check(again.get("replayed") is True and again.get("notifications_erased") == d.get("notifications_erased"),
                  "the same erase request again: %r, want a replay of the first answer" % again)
        name, phone, e164, email, _ = PEOPLE["jeanne"]
        c = r.hgetall(cl.key("customer:" + ids["jeanne"]))
        res.check(c.get("name") == "(effacé)" and "phone" not in c and "email" not in c and
                  c.get("consent_sms") == c.get("consent_email") == c.get("consent_marketing") == "0" and
                  c.get("erased_by") == "dpo-01" and c.get("erased_at"), "Jeanne's record after erasure: %r" % c)
        shown = sv(cl, res, "customer", "show", ids["jeanne"]) or {}
        text = repr(shown)
        res.check(name not in text and e164 not in text and email not in text, "customer show still shows her: %s" %
                  text[:300])
        ns = notifs_of(cl, [tj])
        res.fig("jeanne_notifications", len(ns))
        kept = {k: v for k, v in ns.items() if v.get("recipient") or v.get("body") or v.get("subject")}
        res.check(not kept, "messages that keep her contact or text: %s" % sorted(kept)[:3])
        withdrawn = {k for k, v in ns.items() if v.get("status") == "erased"}
        res.check(queued_j <= withdrawn, "queued e-mails not withdrawn: %s" % sorted(queued_j - withdrawn))
        res.check(not any(r.zscore(cl.key("mail:queue"), k) is not None or r.zscore(cl.key("sms:queue"), k) is not None
                          for k in ns), "an erased message is still in a send queue")
        show_t = sv(cl, res, "ticket", "show", tj) or {}
        res.check(name not in repr(show_t) and e164 not in repr(show_t) and email not in repr(show_t),
                  "ticket show %s still shows her" % tj)
        entries = fixtures.timeline_entries(show_t, "customer.erased")
        res.check(len(entries) == 1 and entries[0].get("actor") == "dpo-01",
                  "timeline of %s: erasure entries %s, want one by dpo-01" % (tj, entries))
        export = cl.savctl("invoice", "export", inv_j)
        res.check(export.returncode == 0 and name in export.stdout and inv_j in export.stdout,
                  "invoice export %s no longer shows the name it was issued to (a legal mention): exit %d" % (
                      inv_j, export.returncode))
        found = sv(cl, res, "customer", "list", "--search", "Jeanne") or {}
        res.check(not [x for x in found.get("customers") or [] if x.get("id") == ids["jeanne"]],
                  "a search by her old name still finds her")
        res.check(not r.sismember(cl.key("customers:phone:" + e164), ids["jeanne"]),
                  "her old number still leads to her (a STOP would find her)")
        before = keys_of(cl, ids["jeanne"], [tj])
        again2 = sv(cl, res, "customer", "erase", ids["jeanne"]) or {}
        res.check(again2.get("already_erased") is True and again2.get("replayed") is False,
                  "a second erasure (a new request): %r, want already_erased" % again2)
        res.check(keys_of(cl, ids["jeanne"], [tj]) == before, "a second erasure changed Redis")

        # The SMTP server comes up: the others' e-mails go, none of hers.
        smtp = SmtpPeer(cl, os.path.join(cl.dir, "smtp"), port=smtp_port).start()
        others = {k for k, v in notifs_of(cl, [tg, tp]).items() if v.get("channel") == "email"}
        harness.wait_until(lambda: all(notifs_of(cl, [tg, tp])[k].get("status") == "sent" for k in others), 20, 0.2)
        time.sleep(1)
        rcpts = [env.get("rcpt_tos") for _, _, env in smtp.messages()]
        res.fig("emails_sent_after", len(rcpts))
        res.check(rcpts and not [x for x in rcpts if email in (x or [])], "an e-mail went to the erased customer")
        res.check(all(v.get("status") == "sent" for k, v in notifs_of(cl, [tg, tp]).items() if k in others),
                  "the other customers' e-mails did not go")
        return res
    finally:
        if smtp:
            smtp.stop()


def test_no_personal_data_in_logs(cl):
    res = Result()
    smtp = SmtpPeer(cl, os.path.join(cl.dir, "smtp")).start()
    smsc = SmscPeer(cl, "logs")
    cl.write_config(cl.config, extra={"notification": [
        ("smtp_url", "smtp://127.0.0.1:%d" % smtp.port), ("mail_domain", "sav-test.example"),
        ("smpp_host", "127.0.0.1"), ("smpp_port", str(smsc.port)), ("smpp_password", cl.secret("smpp", "secret")),
        ("sms_quiet_hours", "off")]})
    try:
        smsc.start("--receipts", "--mo-stop", PEOPLE["paul"][2], "--fail-dest", PEOPLE["garage"][2])
        cl.start_all()
        stock_up(cl, res)
        ids = add_people(cl, res)
        shop = Shop(cl, res, "lg")
        for who in ids:
            tid = shop.ticket(ids[who])
            shop.diagnose(tid)
        sv(cl, res, "customer", "add", "--name", "Mauvais Numéro", "--phone", "abc", want=2)
        harness.wait_until(lambda: len(smtp.messages()) >= 6, 20, 0.2)
        time.sleep(1.5)
        res.fig("emails", len(smtp.messages()))
        res.fig("sms_submits", len(smsc.submits()))
        leaks = []
        for s in harness.SERVICES:
            with open(os.path.join(cl.dir, s + ".log"), errors="replace") as f:
                log = f.read()
            for key, (_, typed, e164, email, _) in PEOPLE.items():
                for value in (typed, typed.replace(" ", ""), e164, e164.lstrip("+"), email):
                    if value in log:
                        leaks.append((s, key, value))
        res.check(len(smtp.messages()) >= 6 and smsc.submits(), "the messages did not really go: nothing checked")
        res.check(not leaks, "personal data in the logs: %s" % leaks[:5])
        return res
    finally:
        smtp.stop()
        smsc.stop()


TESTS = [
    ("customer_erase", test_customer_erase),
    ("no_personal_data_in_logs", test_no_personal_data_in_logs),
]


if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
