"""Issue 3 system tests: the ticket lifecycle, input validation, records and queries, the timers of intake on
an injected clock (SAV_CLOCK_OFFSET_MS), preventive maintenance visits, and the first requests after a Redis
restart and while it loads its AOF.

Each test asserts exact values and the sentences operators and customers read. When a service misbehaves the
test asserts the correct behaviour and fails, naming the command, what it printed and what was expected.
"""

import collections
import json
import os
import subprocess
import time

import redis

import harness
from fixtures import (DAY_MS, DIAGNOSIS_KINDS, KINDS, NO_DIAGNOSIS_KINDS, SIREN, Customer, Result, add_customer,
                      add_days, add_months, add_product, check_drained, check_event_notifs, load_catalog,
                      notifs_of, open_args, open_ticket, outboxes_empty, run, show, spoken_date,
                      timeline_entries, timeline_steps, today, wait_drained, wait_notifs)

CENTRE_IDS = ("PAR-01", "LYO-01", "REP-BDX-07")
OUTCOME_LABEL = {"fr": "réparé", "en": "repaired"}


def centres():
    return {c["id"]: c for c in load_catalog()["centres"]}


class Audit:
    """The notifications every ticket of a test must end with: {tid: (routes, [event, ...])}; checked once
    every outbox is drained: each event exactly once per route, nothing else."""

    def __init__(self):
        self.want = collections.OrderedDict()

    def expect(self, tid, routes, *events):
        if tid:
            self.want.setdefault(tid, (routes, []))[1].extend(events)

    def check(self, cl, res):
        res.check(wait_drained(cl, 20), "outboxes not drained within 20 s")
        total = 0
        for tid, (routes, events) in self.want.items():
            data = show(cl, tid)
            got = collections.Counter((n.get("event"), n.get("channel")) for n in data.get("notifications") or [])
            want = collections.Counter((e, ch) for e in events for ch in routes)
            total += sum(got.values())
            res.check(got == want, "%s: notifications %s, want exactly %s" % (
                tid, sorted(got.items()), sorted(want.items())))
            llen = cl.redis().llen(cl.key("notifs:" + tid))
            res.check(llen == sum(want.values()), "%s: LLEN notifs = %d, want %d" % (tid, llen, sum(want.values())))
        res.fig("notifications", total)
        check_drained(cl, res)


# ---------------------------------------------------------------- 1. lifecycle_transitions

def test_lifecycle_transitions(cl):
    """Every transition reachable from savctl, for each kind, and every refusal reachable from savctl, with the
    state, outcome, timeline (event, state, actor) and customer notifications of each step; a repeated request
    id replays the step without a second timeline entry or notification."""
    res = Result()
    cl.start_all()
    cat = centres()
    audit = Audit()
    customers = [
        Customer("Jeanne Martin", "fr", "06 12 34 56 78", "+33612345678", "jeanne.martin@example.fr"),
        Customer("Chris Doe", "en", email="chris.doe@example.com"),
        Customer("Garage Dupont SARL", "fr", "+33 4 72 00 00 01", "+33472000001", business=SIREN),
        Customer("Sam Carter", "en", "+44 7700 900123", "+447700900123", "sam.carter@example.org", consent="none"),
    ]
    for c in customers:
        add_customer(cl, res, c)
    if any(c.id is None for c in customers):
        return res
    steps_checked = refusals = replays = 0

    def step(tid, args, state, previous, rid):
        """A step with a request id, then the same request id again: replayed, nothing more."""
        nonlocal replays
        d1 = run(cl, res, *(args + ["--request-id", rid]))
        res.check(d1 == {"id": tid, "state": state, "previous_state": previous, "replayed": False},
                  "savctl %s: reply %r, want state %s from %s, replayed false" % (" ".join(args), d1, state, previous))
        d2 = run(cl, res, *(args + ["--request-id", rid]))
        res.check(d2 is not None and d2.get("id") == tid and d2.get("state") == state and d2.get("replayed") is True,
                  "savctl %s again with request id %s: reply %r, want state %s, replayed true" % (
                      " ".join(args), rid, d2, state))
        replays += 1

    def refuse(tid, args, sentence):
        nonlocal refusals
        run(cl, res, *args, want=2, err_has="%s: %s" % (tid, sentence))
        refusals += 1

    def refuse_all_final(tid, state):
        sentence = "the ticket is %s: no further step is possible" % state
        refuse(tid, ["ticket", "cancel", tid, "--reason", "trop tard"], sentence)
        refuse(tid, ["ticket", "pickup", tid], sentence)
        refuse(tid, ["repair", "start", tid], sentence)
        refuse(tid, ["repair", "done", tid], sentence)

    def received_then_pipeline(tid, kind, routes, faults):
        """Waits for the pipeline (ticket_received notified); checks the state and the pre-diagnosis entry."""
        wait_notifs(cl, tid, len(routes))
        data = show(cl, tid)
        s1 = "in_diagnosis" if kind in DIAGNOSIS_KINDS else "received"
        res.check(data["state"] == s1, "%s (%s): state %r after the pre-diagnosis, want %r" % (
            tid, kind, data["state"], s1))
        pre = timeline_entries(data, "prediagnosis.done")
        detail = ("no diagnosis for %s" % kind if kind in NO_DIAGNOSIS_KINDS else
                  faults[0] if faults else "no known fault code: technician diagnosis needed")
        res.check(len(pre) == 1 and pre[0].get("state") == s1 and pre[0].get("actor") == "diagnostics"
                  and pre[0].get("detail") == detail,
                  "%s (%s): prediagnosis.done entries %r, want one in state %s with detail %r" % (
                      tid, kind, pre, s1, detail))
        check_event_notifs(res, tid, data, "ticket_received", routes)
        return s1

    reopened = {}
    for k, kind in enumerate(KINDS):
        c = customers[k % len(customers)]
        centre = CENTRE_IDS[k % len(CENTRE_IDS)]
        routes = c.routes()
        model = ["WM-7000", "DW-450", "OV-900", "FR-300", "BO-24"][k]
        faults = ["E21"] if kind == "repair" else []
        serial_a, serial_b = "LC-%d-A" % k, "LC-%d-B" % k
        add_product(cl, res, serial_a, model, c.id, today(-200))
        add_product(cl, res, serial_b, model, c.id, today(-900))

        # A: the whole path. received -> (in_diagnosis) -> in_repair -> ready -> closed.
        a = open_ticket(cl, res, *open_args(c.id, serial_a, kind, "Symptôme %s" % kind, "drop_off", centre, faults))
        if not a:
            continue
        audit.expect(a, routes, "ticket_received", "repair_started", "ready_for_pickup")
        s1 = received_then_pipeline(a, kind, routes, faults)
        refuse(a, ["repair", "done", a], "repair.done is not possible while the ticket is %s" % s1)
        refuse(a, ["ticket", "pickup", a], "pickup is not possible while the ticket is %s" % s1)
        step(a, ["repair", "start", a], "in_repair", s1, "rs-%s" % a)
        wait_notifs(cl, a, 2 * len(routes))
        check_event_notifs(res, a, show(cl, a), "repair_started", routes, contains=(a, model), lang=c.lang)
        refuse(a, ["ticket", "pickup", a], "pickup is not possible while the ticket is in_repair")
        refuse(a, ["ticket", "cancel", a, "--reason", "changement d'avis"],
               "the ticket is in_repair: it can no longer be cancelled once repair has started")
        refuse(a, ["repair", "start", a], "repair.start is not possible while the ticket is in_repair")
        if kind == "repair":
            run(cl, res, *open_args(c.id, serial_a, "repair", "Encore en panne"), want=2,
                err_has="product %s already has an open repair ticket %s" % (serial_a, a))
        note = "Pièce remplacée, appareil testé"
        step(a, ["repair", "done", a, "--note", note], "ready", "in_repair", "rd-%s" % a)
        wait_notifs(cl, a, 3 * len(routes))
        data = show(cl, a)
        res.check(data["outcome"] == "repaired", "%s: outcome %r after repair done, want repaired" % (
            a, data["outcome"]))
        check_event_notifs(res, a, data, "ready_for_pickup", routes, lang=c.lang,
                           contains=(cat[centre]["name"], cat[centre]["address"], OUTCOME_LABEL[c.lang]))
        for n in notifs_of(data, "ready_for_pickup").get("email", []):
            res.check(note in n.get("body", ""), "%s: ready_for_pickup e-mail lacks the technician's note %r" % (
                a, note))
        refuse(a, ["ticket", "cancel", a, "--reason", "trop long"],
               "the ticket is ready: it can no longer be cancelled once repair has started")
        refuse(a, ["repair", "done", a], "repair.done is not possible while the ticket is ready")
        step(a, ["ticket", "pickup", a], "closed", "ready", "pk-%s" % a)
        refuse_all_final(a, "closed")
        data = show(cl, a)
        # Operator steps are recorded as the identity that ran them (savctl acts as admin here).
        me = cl.identity
        want_steps = [("ticket.received", "received", me), ("prediagnosis.done", s1, "diagnostics"),
                      ("coverage.estimated", s1, "billing"), ("repair.start", "in_repair", me),
                      ("repair.done", "ready", me), ("pickup", "closed", me)]
        res.check(timeline_steps(data) == want_steps, "%s (%s): timeline %s, want %s" % (
            a, kind, timeline_steps(data), want_steps))
        res.check(data["state"] == "closed" and data["outcome"] == "repaired",
                  "%s: state/outcome %r/%r at the end, want closed/repaired" % (a, data["state"], data["outcome"]))
        done = timeline_entries(data, "repair.done")
        res.check(len(done) == 1 and done[0].get("detail") == note, "%s: repair.done entries %r, want one with %r" % (
            a, done, note))
        pk = timeline_entries(data, "pickup")
        res.check(len(pk) == 1 and pk[0].get("detail") == "collected by the customer",
                  "%s: pickup entries %r" % (a, pk))
        recorded = timeline_entries(data, "notification.recorded")
        res.check([e.get("state") for e in recorded] == [s1, "in_repair", "ready"],
                  "%s: notification.recorded entries in states %s, want [%s, in_repair, ready]" % (
                      a, [e.get("state") for e in recorded], s1))
        steps_checked += 1
        if kind == "repair":
            # Closing the repair ticket frees the product for a new one.
            reopened["closed"] = open_ticket(cl, res, *open_args(c.id, serial_a, "repair", "Nouvelle panne"))
            audit.expect(reopened["closed"], routes, "ticket_received")

        # B: cancelled before repair starts: from in_diagnosis (kinds with diagnosis) or received (the others).
        b = open_ticket(cl, res, *open_args(c.id, serial_b, kind, "À annuler", "on_site", centre))
        if not b:
            continue
        audit.expect(b, routes, "ticket_received", "ticket_cancelled")
        s1 = received_then_pipeline(b, kind, routes, [])
        reason = "Le client a trouvé la solution dans la notice"
        step(b, ["ticket", "cancel", b, "--reason", reason], "cancelled", s1, "cx-%s" % b)
        wait_notifs(cl, b, 2 * len(routes))
        data = show(cl, b)
        res.check(data["state"] == "cancelled" and data["outcome"] == "cancelled",
                  "%s: state/outcome %r/%r after cancel, want cancelled/cancelled" % (b, data["state"],
                                                                                     data["outcome"]))
        check_event_notifs(res, b, data, "ticket_cancelled", routes, lang=c.lang, contains=(b,))
        for n in notifs_of(data, "ticket_cancelled").get("email", []):
            res.check(reason in n.get("body", ""), "%s: ticket_cancelled e-mail lacks the reason %r" % (b, reason))
        cx = timeline_entries(data, "cancel")
        res.check(len(cx) == 1 and (cx[0].get("state"), cx[0].get("actor"), cx[0].get("detail")) ==
                  ("cancelled", cl.identity, reason), "%s: cancel entries %r" % (b, cx))
        refuse_all_final(b, "cancelled")
        if kind == "repair":
            reopened["cancelled"] = open_ticket(cl, res, *open_args(c.id, serial_b, "repair", "Nouvelle panne"))
            audit.expect(reopened["cancelled"], routes, "ticket_received")
        steps_checked += 1

    # C: kinds with diagnosis cancelled from received: diagnostics is down, so the ticket stays received.
    code = cl.stop_service("diagnostics")
    res.check(code == 0, "sav-diagnostics exited %r on SIGTERM, want 0" % code)
    late = {}
    for k, kind in enumerate(DIAGNOSIS_KINDS):
        c = customers[k]
        serial = "LC-C-%d" % k
        add_product(cl, res, serial, "WM-7000", c.id, today(-30))
        t = open_ticket(cl, res, *open_args(c.id, serial, kind, "Annulé avant diagnostic", faults=["E21"]))
        if t:
            step(t, ["ticket", "cancel", t, "--reason", "Erreur de saisie"], "cancelled", "received", "cx-%s" % t)
            late[t] = c
    cl.start_service("diagnostics")
    cl.wait_service("diagnostics")
    res.check(wait_drained(cl, 20), "outboxes not drained within 20 s after diagnostics came back")
    for t, c in late.items():
        data = show(cl, t)
        res.check(data["state"] == "cancelled" and data["outcome"] == "cancelled",
                  "%s: state/outcome %r/%r after a late pre-diagnosis, want cancelled/cancelled" % (
                      t, data["state"], data["outcome"]))
        check_event_notifs(res, t, data, "ticket_cancelled", c.routes())
        events = [n.get("event") for n in data.get("notifications") or []]
        after = [e for e in events[events.index("ticket_cancelled"):] if e != "ticket_cancelled"] \
            if "ticket_cancelled" in events else ["?"]
        res.check(not after,
                  "%s: cancelled while received (diagnostics down), then diagnostics came back: notifications in "
                  "order %s; after the cancellation notice the customer must get nothing more, yet the late "
                  "pre-diagnosis/coverage made notification send %s (\"a technician will examine it\")" % (
                      t, events, after))
        refuse_all_final(t, "cancelled")
    audit.check(cl, res)
    res.fig("kinds", len(KINDS))
    res.fig("paths", steps_checked)
    res.fig("refusals", refusals)
    res.fig("replays", replays)
    return res


# ---------------------------------------------------------------- 2. validations

def test_validations(cl):
    """Every refusal of customer add/update, product add, ticket open and contract add names its reason, exits
    2 (3 for an unknown record) and creates nothing: counts in Redis do not move and ids are not consumed."""
    res = Result()
    cl.start_all()
    r = cl.redis()
    c1 = Customer("Élodie Martin", "fr", "06 11 22 33 44", "+33611223344", "elodie@example.fr")
    c2 = Customer("Bob O'Brien", "en", email="bob@example.com")
    for c in (c1, c2):
        add_customer(cl, res, c)
    if not (c1.id and c2.id):
        return res
    add_product(cl, res, "VAL-1", "WM-7000", c1.id, today(-100))
    add_product(cl, res, "VAL-2", "DW-450", c2.id, today(-100))
    n = 0

    def refused(args, want, sentence, counts):
        """Runs a command that must be refused; checks exit code, sentence and that counts did not move."""
        nonlocal n
        before = {k: f() for k, f in counts.items()}
        run(cl, res, *args, want=want, err_has=sentence)
        after = {k: f() for k, f in counts.items()}
        res.check(before == after, "savctl %s changed %s -> %s" % (" ".join(args), before, after))
        n += 1

    customers = {"ZCARD customers": lambda: r.zcard(cl.key("customers")),
                 "seq:customer": lambda: r.get(cl.key("seq:customer"))}
    base = ["customer", "add", "--name", "Zoé Lambert"]
    for args, sentence in [
        (["--phone", "06 12"], 'phone number "06 12" is neither French (10 digits starting with 0) nor '
                               'international (+ or 00)'),
        (["--phone", "abc"], "phone number contains 'a': only digits, spaces, dots, dashes, brackets and a "
                             "leading + are allowed"),
        (["--phone", "+33 0 12"], 'phone number "+33 0 12" is not a valid international number'),
        (["--phone", "+33 6 12 34 56 78 9"], 'French number "+33 6 12 34 56 78 9" must have 9 digits after +33'),
        (["--email", "zoe.example.fr"], 'e-mail address "zoe.example.fr" must have exactly one @'),
        (["--email", "zoe@"], 'e-mail address "zoe@" has no valid domain'),
        (["--lang", "de"], 'language must be one of: fr, en (got "de")'),
        (["--business", "732829321"], "company id 732829321 fails its check digit (SIREN/SIRET Luhn key)"),
        (["--business", "73282932000075"], "company id 73282932000075 fails its check digit"),
        (["--business", "12345"], 'company id "12345" must be a SIREN (9 digits) or SIRET (14 digits)'),
        (["--consent", "sms,fax"], 'consent must list sms, email, marketing (or be none), got "fax"'),
    ]:
        refused(base + args, 2, sentence, customers)
    d = run(cl, res, *(base + ["--phone", "06 12 34 56 78", "--business", SIREN]))
    res.check(d == {"id": "C-000003", "replayed": False},
              "the first valid customer add after the refusals answered %r, want C-000003 (no number consumed)" % d)
    refused(["customer", "update", c1.id, "--phone", "12ab"], 2, "phone number contains 'a'", customers)
    refused(["customer", "update", c1.id, "--lang", "es"], 2, 'language must be one of: fr, en (got "es")', customers)
    refused(["customer", "update", "C-999999", "--name", "Personne"], 3, "no customer C-999999", customers)
    refused(["customer", "update", c1.id], 2, "nothing to update", customers)
    shown = run(cl, res, "customer", "show", c1.id) or {}
    res.check((shown.get("phone"), shown.get("lang"), shown.get("updated_at")) ==
              ("+33611223344", "fr", shown.get("created_at")),
              "customer %s changed by refused updates: %r" % (c1.id, shown))

    def products(serial):
        return {"EXISTS product:" + serial: lambda: r.exists(cl.key("product:" + serial)),
                "SCARD C1 products": lambda: r.scard(cl.key("customer:%s:products" % c1.id)),
                "SCARD C2 products": lambda: r.scard(cl.key("customer:%s:products" % c2.id))}
    prod = ["product", "add", "--serial", "VAL-3", "--model", "WM-7000", "--customer", c1.id,
            "--delivered", today(-10).isoformat()]
    refused(["product", "add", "--serial", "VAL-3", "--model", "XX-1", "--customer", c1.id, "--delivered",
             today(-10).isoformat()], 2, 'model "XX-1" is not in the catalog', products("VAL-3"))
    refused(["product", "add", "--serial", "VAL-3", "--model", "WM-7000", "--customer", "C-999999", "--delivered",
             today(-10).isoformat()], 3, "no customer C-999999", products("VAL-3"))
    refused(["product", "add", "--serial", "VAL-1", "--model", "DW-450", "--customer", c2.id, "--delivered",
             today(-10).isoformat()], 2, "serial VAL-1 is already registered to %s" % c1.id, products("VAL-1"))
    refused(prod[:-1] + [today(1).isoformat()], 2, "delivery date: in the future", products("VAL-3"))
    refused(prod[:-1] + ["2025-02-29"], 2, "delivery date", products("VAL-3"))
    refused(prod[:7] + ["Élodie"] + prod[8:], 2, '"Élodie" is not a customer id (C-NNNNNN)', products("VAL-3"))
    owner = r.hget(cl.key("product:VAL-1"), "owner")
    res.check(owner == c1.id, "product VAL-1 owner %r after a refused duplicate, want %s" % (owner, c1.id))
    add_product(cl, res, "VAL-3", "WM-7000", c1.id, today())  # delivered today is fine

    tickets = {"ZCARD tickets": lambda: r.zcard(cl.key("tickets")),
               "open_repair VAL-1": lambda: r.get(cl.key("product:VAL-1:open_repair"))}
    refused(open_args(c2.id, "VAL-1"), 2, "product VAL-1 belongs to %s, not %s" % (c1.id, c2.id), tickets)
    refused(open_args(c1.id, "VAL-1", centre="NOPE-99"), 2, 'service centre "NOPE-99" is not in the catalog', tickets)
    refused(open_args("C-999999", "VAL-1"), 3, "no customer C-999999", tickets)
    refused(open_args(c1.id, "NOPE-1"), 3, "no product with serial NOPE-1", tickets)
    refused(open_args(c1.id, "VAL-1", requested_on=today(1)), 2, "request date %s is in the future" % today(1),
            tickets)
    refused(open_args(c1.id, "VAL-1", kind="cleaning"), 2, "kind must be one of", tickets)
    t1 = open_ticket(cl, res, *open_args(c1.id, "VAL-1", faults=["E21"]))
    tickets["open_repair VAL-1"] = lambda: r.get(cl.key("product:VAL-1:open_repair"))
    refused(open_args(c1.id, "VAL-1", symptom="Toujours en panne"), 2,
            "product VAL-1 already has an open repair ticket %s" % t1, tickets)
    # Other kinds are not limited to one at a time.
    t2 = open_ticket(cl, res, *open_args(c1.id, "VAL-1", kind="assistance", symptom="Question sur le programme"))
    res.check(t1 and t2 and r.zcard(cl.key("tickets")) == 2, "ZCARD tickets = %d, want 2" % r.zcard(cl.key("tickets")))

    contracts = {"EXISTS contract:K-000001": lambda: r.exists(cl.key("contract:K-000001")),
                 "ZCARD maintenance:due": lambda: r.zcard(cl.key("maintenance:due")),
                 "LLEN VAL-2 contracts": lambda: r.llen(cl.key("product:VAL-2:contracts")),
                 "seq:contract": lambda: r.get(cl.key("seq:contract"))}
    start, end = today(-30), add_months(today(-30), 24)
    kadd = ["contract", "add", "VAL-2", "--type", "maintenance", "--start", start.isoformat(), "--end"]
    refused(kadd + [add_days(start, -1).isoformat(), "--every", "6"], 2,
            "the contract must end after it starts (%s .. %s)" % (start, add_days(start, -1)), contracts)
    refused(kadd + [end.isoformat()], 2, "a maintenance contract needs --every MONTHS", contracts)
    refused(["contract", "add", "VAL-2", "--type", "extended_warranty", "--start", start.isoformat(), "--end",
             end.isoformat(), "--every", "6"], 2, "--every is for maintenance contracts", contracts)
    refused(kadd + [end.isoformat(), "--every", "6", "--visits", "5"], 2,
            "5 visit(s) every 6 months do not fit between %s and %s" % (start, end), contracts)
    refused(["contract", "add", "VAL-2", "--type", "lifetime", "--start", start.isoformat(), "--end", end.isoformat()],
            2, "type must be one of: extended_warranty, maintenance", contracts)
    refused(["contract", "add", "NOPE-2", "--type", "extended_warranty", "--start", start.isoformat(), "--end",
             end.isoformat()], 3, "no product with serial NOPE-2", contracts)
    refused(["contract", "add", "VAL-2", "--type", "extended_warranty", "--start", start.isoformat(), "--end",
             end.isoformat(), "--covers", "parts,teleportation"], 2, "covers must be one of", contracts)
    d = run(cl, res, "contract", "add", "VAL-2", "--type", "extended_warranty", "--start", start.isoformat(),
            "--end", end.isoformat())
    res.check(d == {"id": "K-000001", "replayed": False},
              "the first valid contract add answered %r, want K-000001 (no number consumed)" % d)

    # Lifecycle commands on records that do not exist or are not ids.
    refused(["ticket", "cancel", "T-2026-999999", "--reason", "x"], 3, "no ticket T-2026-999999", tickets)
    refused(["repair", "start", "T-2026-999999"], 3, "no ticket T-2026-999999", tickets)
    refused(["ticket", "pickup", "T-26-1"], 2, '"T-26-1" is not a ticket id (expected T-YYYY-NNNNNN)', tickets)
    res.fig("refusals", n)
    res.fig("customers", r.zcard(cl.key("customers")))
    res.fig("tickets", r.zcard(cl.key("tickets")))
    res.check(wait_drained(cl, 20), "outboxes not drained within 20 s")
    check_drained(cl, res)
    return res


# ---------------------------------------------------------------- 3. records_and_queries

def test_records_and_queries(cl):
    """customer show/update/list, product show (warranty from the catalog, ownership history, contracts, tickets),
    product transfer, ticket list and its filters, catalog show, and catalog load of a new model."""
    res = Result()
    cl.start_all()
    cat = load_catalog()
    models = {m["id"]: m for m in cat["models"]}
    ca = Customer("Jeanne Martin", "fr", "06 12 34 56 78", "+33612345678", "jeanne.martin@example.fr")
    cb = Customer("Chris Doe", "en", email="chris.doe@example.com")
    cc = Customer("Garage Dupont SARL", "fr", "04 72 00 00 01", "+33472000001", business=SIREN,
                  consent="sms,email,marketing")
    cd = Customer("jeanne dupont", "fr", email="j.dupont@example.fr")
    for c in (ca, cb, cc, cd):
        add_customer(cl, res, c)
    if not all(c.id for c in (ca, cb, cc, cd)):
        return res
    # Phone numbers as people write them are stored in E.164.
    phones = [("0033 6 12 34 56 78", "+33612345678"), ("+33 (0)6 12 34 56 78", "+33612345678"),
              ("06-12-34-56-78", "+33612345678"), ("+32 470 12 34 56", "+32470123456")]
    for i, (given, e164) in enumerate(phones):
        d = run(cl, res, "customer", "add", "--name", "Format %d" % i, "--phone", given, "--consent", "none") or {}
        shown = run(cl, res, "customer", "show", d.get("id", "C-000000")) or {}
        res.check(shown.get("phone") == e164, "customer add --phone %r: stored %r, want %r" % (
            given, shown.get("phone"), e164))
    ce = Customer("Élodie Lefèvre", "fr", email="elodie@example.fr")
    add_customer(cl, res, ce)
    d1, d2 = today(-400), today(-1000)
    add_product(cl, res, "RQ-WM-1", "WM-7000", ca.id, d1, bought_at="Darty Paris 12e")
    add_product(cl, res, "RQ-FR-1", "FR-300", ca.id, d2, second_hand=True)
    add_product(cl, res, "RQ-DW-1", "DW-450", cb.id, d1)
    add_product(cl, res, "RQ-OV-1", "OV-900", cc.id, today(-20))
    add_product(cl, res, "RQ-BO-1", "BO-24", cb.id, today(-20))

    # customer show: the record, products (sorted by serial) and tickets.
    d = run(cl, res, "customer", "show", cc.id) or {}
    want = {"id": cc.id, "name": "Garage Dupont SARL", "phone": "+33472000001", "email": None, "lang": "fr",
            "type": "business", "company_id": SIREN, "consent_sms": True, "consent_email": True,
            "consent_marketing": True}
    res.check({k: d.get(k) for k in want} == want, "customer show %s: %r, want %r" % (
        cc.id, {k: d.get(k) for k in want}, want))

    # Tickets for the lists (created in this order; lists are newest first).
    t = {}
    t["a1"] = open_ticket(cl, res, *open_args(ca.id, "RQ-WM-1", faults=["E21"]))
    t["b1"] = open_ticket(cl, res, *open_args(cb.id, "RQ-DW-1", centre="LYO-01", requested_on=today(-40)))
    t["c1"] = open_ticket(cl, res, *open_args(cc.id, "RQ-OV-1", kind="installation", centre="REP-BDX-07",
                                                channel="on_site"))
    t["a2"] = open_ticket(cl, res, *open_args(ca.id, "RQ-FR-1", kind="assistance", centre="LYO-01",
                                                requested_on=today(-40)))
    t["b2"] = open_ticket(cl, res, *open_args(cb.id, "RQ-BO-1", kind="commissioning", channel="on_site"))
    if not all(t.values()):
        return res
    for tid in t.values():
        wait_notifs(cl, tid, 1)
    run(cl, res, "ticket", "cancel", t["a2"], "--reason", "Résolu par téléphone")

    d = run(cl, res, "customer", "show", ca.id) or {}
    res.check([p.get("serial") for p in d.get("products", [])] == ["RQ-FR-1", "RQ-WM-1"],
              "customer show %s products %r, want RQ-FR-1, RQ-WM-1" % (ca.id, [p.get("serial") for p in
                                                                           d.get("products", [])]))
    prod = {p.get("serial"): p for p in d.get("products", [])}
    res.check(prod.get("RQ-FR-1", {}).get("second_hand") is True and prod.get("RQ-WM-1", {}).get("bought_at") ==
              "Darty Paris 12e" and prod.get("RQ-WM-1", {}).get("delivered_on") == d1.isoformat(),
              "customer show %s products: %r" % (ca.id, d.get("products")))
    res.check([(x.get("id"), x.get("state")) for x in d.get("tickets", [])] ==
              [(t["a1"], "in_diagnosis"), (t["a2"], "cancelled")],
              "customer show %s tickets %r, want %s in_diagnosis, %s cancelled" % (
                  ca.id, [(x.get("id"), x.get("state")) for x in d.get("tickets", [])], t["a1"], t["a2"]))

    # customer update: the phone is normalised, consents replaced, other fields kept; messages follow.
    run(cl, res, "customer", "update", ca.id, "--phone", "07.11.22.33.44", "--consent", "email")
    d = run(cl, res, "customer", "show", ca.id) or {}
    want = {"name": "Jeanne Martin", "phone": "+33711223344", "email": "jeanne.martin@example.fr", "lang": "fr",
            "type": "consumer", "consent_sms": False, "consent_email": True, "consent_marketing": False}
    res.check({k: d.get(k) for k in want} == want, "customer show after update: %r, want %r" % (
        {k: d.get(k) for k in want}, want))
    res.check(d.get("updated_at") and d.get("updated_at") != d.get("created_at"),
              "customer update did not move updated_at: %r / %r" % (d.get("created_at"), d.get("updated_at")))
    run(cl, res, "customer", "update", cd.id, "--business", SIREN, "--lang", "en")
    run(cl, res, "customer", "update", cd.id, "--business", "")
    d = run(cl, res, "customer", "show", cd.id) or {}
    res.check((d.get("type"), d.get("company_id"), d.get("lang")) == ("consumer", None, "en"),
              "customer %s after --business SIREN then --business \"\": type %r company_id %r lang %r, want "
              "consumer/null/en" % (cd.id, d.get("type"), d.get("company_id"), d.get("lang")))
    step = run(cl, res, "repair", "start", t["a1"])
    if step:
        wait_notifs(cl, t["a1"], 2)
        a1 = show(cl, t["a1"])
        check_event_notifs(res, t["a1"], a1, "repair_started", {"email": ("jeanne.martin@example.fr", "recorded")})
        check_event_notifs(res, t["a1"], a1, "ticket_received", {"sms": ("+33612345678", "recorded"),
                                                                 "email": ("jeanne.martin@example.fr", "recorded")})

    # customer list --search: any case, part of the name; --limit: newest first.
    for search, want_ids in [("jeanne", [cd.id, ca.id]), ("DOE", [cb.id]), ("garage dupont", [cc.id]),
                             ("zzz", []), ("Lefèvre", [ce.id]), ("élodie", [ce.id])]:
        d = run(cl, res, "customer", "list", "--search", search) or {}
        got = [x.get("id") for x in d.get("customers", [])]
        res.check(got == want_ids and d.get("count") == len(want_ids),
                  "customer list --search %r: %s (count %r), want %s" % (search, got, d.get("count"), want_ids))
    d = run(cl, res, "customer", "list", "--limit", "2") or {}
    res.check([x.get("id") for x in d.get("customers", [])] == [ce.id, "C-%06d" % (int(ce.id[2:]) - 1)],
              "customer list --limit 2: %s, want the two newest" % [x.get("id") for x in d.get("customers", [])])

    # product show: warranty from the catalog, ownership, contracts, tickets; then a transfer.
    k1 = run(cl, res, "contract", "add", "RQ-WM-1", "--type", "extended_warranty", "--start",
             add_months(d1, 24).isoformat(), "--end", add_months(d1, 60).isoformat(), "--price", "8900")
    run(cl, res, "product", "transfer", "RQ-WM-1", "--to", cb.id, "--note", "revente entre particuliers")
    run(cl, res, "product", "transfer", "RQ-WM-1", "--to", cb.id, want=2,
        err_has="RQ-WM-1 already belongs to %s" % cb.id)
    run(cl, res, "product", "transfer", "RQ-WM-1", "--to", "C-999999", want=3, err_has="no customer C-999999")
    run(cl, res, "product", "transfer", "NOPE-3", "--to", ca.id, want=3, err_has="no product with serial NOPE-3")
    d = run(cl, res, "product", "show", "RQ-WM-1") or {}
    m = models["WM-7000"]
    res.check(d.get("owner") == cb.id and d.get("model") == "WM-7000" and d.get("delivered_on") == d1.isoformat(),
              "product show RQ-WM-1: owner %r model %r delivered %r" % (d.get("owner"), d.get("model"),
                                                                        d.get("delivered_on")))
    want_w = {"months": m["commercial_warranty_months"],
              "until": add_months(d1, m["commercial_warranty_months"]).isoformat()}
    res.check(d.get("commercial_warranty") == want_w, "product show RQ-WM-1 commercial_warranty %r, want %r" % (
        d.get("commercial_warranty"), want_w))
    res.check(d.get("parts_availability_years") == m["parts_availability_years"],
              "product show RQ-WM-1 parts_availability_years %r, want %r" % (d.get("parts_availability_years"),
                                                                             m["parts_availability_years"]))
    own = [{k: v for k, v in h.items() if k != "at"} for h in d.get("ownership", [])]
    want_own = [{"event": "registered", "to": ca.id},
                {"event": "transferred", "from": ca.id, "to": cb.id, "date": today().isoformat(),
                 "note": "revente entre particuliers"}]
    res.check(own == want_own, "product show RQ-WM-1 ownership %r, want %r" % (own, want_own))
    ks = d.get("contracts", [])
    res.check(len(ks) == 1 and k1 and ks[0].get("id") == k1.get("id") and
              (ks[0].get("type"), ks[0].get("start"), ks[0].get("end"), ks[0].get("covers"), ks[0].get("price_cents"))
              == ("extended_warranty", add_months(d1, 24).isoformat(), add_months(d1, 60).isoformat(),
                  "parts,labour,travel", 8900), "product show RQ-WM-1 contracts %r" % ks)
    res.check([x.get("id") for x in d.get("tickets", [])] == [t["a1"]],
              "product show RQ-WM-1 tickets %r, want [%s]" % ([x.get("id") for x in d.get("tickets", [])], t["a1"]))
    d = run(cl, res, "product", "show", "RQ-FR-1") or {}
    m = models["FR-300"]
    want_w = {"months": m["commercial_warranty_months"],
              "until": add_months(d2, m["commercial_warranty_months"]).isoformat()}
    res.check(d.get("commercial_warranty") == want_w and d.get("second_hand") is True,
              "product show RQ-FR-1 commercial_warranty %r second_hand %r, want %r, true" % (
                  d.get("commercial_warranty"), d.get("second_hand"), want_w))
    ca_products = [p.get("serial") for p in (run(cl, res, "customer", "show", ca.id) or {}).get("products", [])]
    cb_products = [p.get("serial") for p in (run(cl, res, "customer", "show", cb.id) or {}).get("products", [])]
    res.check(ca_products == ["RQ-FR-1"] and cb_products == ["RQ-BO-1", "RQ-DW-1", "RQ-WM-1"],
              "after the transfer: %s owns %s, %s owns %s" % (ca.id, ca_products, cb.id, cb_products))
    run(cl, res, *open_args(ca.id, "RQ-WM-1", kind="assistance"), want=2,
        err_has="product RQ-WM-1 belongs to %s, not %s" % (cb.id, ca.id))

    # ticket list: filters, newest first, --limit; overdue = open and past its SLA date (repair 15 days).
    order = [t["b2"], t["a2"], t["c1"], t["b1"], t["a1"]]
    for args, want_ids in [
        ([], order),
        (["--state", "in_diagnosis"], [t["b1"]]),
        (["--state", "in_repair"], [t["a1"]]),
        (["--state", "received"], [t["b2"], t["c1"]]),
        (["--state", "cancelled"], [t["a2"]]),
        (["--centre", "LYO-01"], [t["a2"], t["b1"]]),
        (["--centre", "REP-BDX-07"], [t["c1"]]),
        (["--centre", "PAR-01"], [t["b2"], t["a1"]]),
        (["--customer", ca.id], [t["a2"], t["a1"]]),
        (["--customer", cb.id], [t["b2"], t["b1"]]),
        (["--kind", "installation"], [t["c1"]]),
        (["--kind", "repair"], [t["b1"], t["a1"]]),
        (["--overdue"], [t["b1"]]),
        (["--limit", "2"], order[:2]),
        (["--centre", "LYO-01", "--state", "in_diagnosis"], [t["b1"]]),
        (["--customer", cb.id, "--kind", "commissioning"], [t["b2"]]),
        (["--unclaimed"], []),
    ]:
        d = run(cl, res, "ticket", "list", *args) or {}
        got = [x.get("id") for x in d.get("tickets", [])]
        res.check(got == want_ids and d.get("count") == len(want_ids) and d.get("today") == today().isoformat(),
                  "ticket list %s: %s (count %r, today %r), want %s" % (" ".join(args), got, d.get("count"),
                                                                       d.get("today"), want_ids))
    d = run(cl, res, "ticket", "list", "--overdue") or {}
    row = (d.get("tickets") or [{}])[0]
    want_row = {"id": t["b1"], "state": "in_diagnosis", "kind": "repair", "centre": "LYO-01", "customer_id": cb.id,
                "serial": "RQ-DW-1", "requested_on": today(-40).isoformat(),
                "sla_due_on": today(-25).isoformat()}
    res.check({k: row.get(k) for k in want_row} == want_row, "ticket list --overdue row %r, want %r" % (
        {k: row.get(k) for k in want_row}, want_row))
    run(cl, res, "ticket", "list", "--state", "bogus", want=2, err_has='unknown state "bogus"')
    run(cl, res, "ticket", "list", "--limit", "0", want=2, err_has="limit")

    # catalog show: the centres and models of deploy/local/catalog.json, version 1.
    d = run(cl, res, "catalog", "show") or {}
    got_c = [(c.get("id"), c.get("name"), c.get("address"), c.get("opening_hours")) for c in d.get("centres", [])]
    want_c = [(c["id"], c["name"], c["address"], c["opening_hours"]) for c in cat["centres"]]
    res.check(got_c == want_c, "catalog show centres %r, want %r" % (got_c, want_c))
    res.check([x.get("id") for x in d.get("models", [])] == [x["id"] for x in cat["models"]] and
              d.get("version") == 1, "catalog show: version %r models %r" % (
                  d.get("version"), [x.get("id") for x in d.get("models", [])]))
    res.fig("centres", len(got_c))

    # catalog load: a new model is usable at once by intake and by the whole pipeline.
    cat2 = json.loads(json.dumps(cat))
    cat2["models"].append({"id": "WM-9000", "name": "Lave-linge hublot 10 kg WM-9000", "family": "washing_machine",
                           "commercial_warranty_months": 36, "parts_availability_years": 12})
    path = os.path.join(cl.dir, "catalog-v2.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cat2, f, ensure_ascii=False)
    run(cl, res, "product", "add", "--serial", "RQ-NEW-0", "--model", "WM-9000", "--customer", ca.id,
        "--delivered", today(-10).isoformat(), want=2, err_has='model "WM-9000" is not in the catalog')
    d = run(cl, res, "catalog", "load", "--file", path)
    res.check(d == {"version": 2, "models": len(cat2["models"])}, "catalog load: %r, want version 2, %d models" % (
        d, len(cat2["models"])))
    t0 = time.monotonic()
    added = None
    while time.monotonic() - t0 < 5:
        p = cl.savctl("--json", "product", "add", "--serial", "RQ-NEW-1", "--model", "WM-9000", "--customer", ca.id,
                      "--delivered", today(-10).isoformat(), "--request-id", "rq-new-1")
        if p.returncode == 0:
            added = json.loads(p.stdout)
            break
        time.sleep(0.2)
    res.fig("new_model_usable_s", round(time.monotonic() - t0, 1))
    res.check(added and added.get("id") == "RQ-NEW-1", "product add with the new model WM-9000 still refused after "
              "5 s: %s" % (p.stderr.strip()))
    d = run(cl, res, "catalog", "show") or {}
    res.check(d.get("version") == 2 and "WM-9000" in [x.get("id") for x in d.get("models", [])],
              "catalog show after the load: version %r, models %r" % (d.get("version"),
                                                                      [x.get("id") for x in d.get("models", [])]))
    if added:
        d = run(cl, res, "product", "show", "RQ-NEW-1") or {}
        want_w = {"months": 36, "until": add_months(today(-10), 36).isoformat()}
        res.check(d.get("commercial_warranty") == want_w, "product show RQ-NEW-1 commercial_warranty %r, want %r" % (
            d.get("commercial_warranty"), want_w))
        tn = open_ticket(cl, res, *open_args(ca.id, "RQ-NEW-1", faults=["E21"]))
        if tn:
            wait_notifs(cl, tn, 1)
            data = show(cl, tn)
            pre, cov = data.get("prediagnosis") or {}, data.get("coverage") or {}
            res.check((pre.get("family"), pre.get("matched"), pre.get("fault_code"), cov.get("commercial_until")) ==
                      ("washing_machine", True, "E21", want_w["until"]),
                      "%s on the model WM-9000 published just before by catalog load: pre-diagnosis family %r matched "
                      "%r fault %r, coverage commercial_until %r; want washing_machine, true, E21, %s (intake accepted "
                      "the model; diagnostics and billing must not record a verdict from an older catalog)" % (
                          tn, pre.get("family"), pre.get("matched"), pre.get("fault_code"),
                          cov.get("commercial_until"), want_w["until"]))
    res.check(wait_drained(cl, 20), "outboxes not drained within 20 s")
    check_drained(cl, res)
    return res


# ---------------------------------------------------------------- 4. timers_with_clock

MEDIATOR = "Médiateur de test SAV-CM2C, 14 rue Saint-Jean, 75017 Paris, www.cm2c.net"


def restart_intake(cl, res, offset_days):
    """Restarts sav-intake with its clock offset by offset_days (SIGTERM must exit 0: no leak, no crash)."""
    code = cl.stop_service("intake")
    res.check(code == 0, "sav-intake exited %r on SIGTERM (want 0)" % code)
    env = {"SAV_CLOCK_OFFSET_MS": str(int(offset_days * DAY_MS))} if offset_days else None
    cl.start_service("intake", env)
    cl.wait_service("intake")


def snapshot(cl, tids, cids):
    """What the timers may change: per ticket the notification ids and timeline length, and each complaint."""
    r = cl.redis()
    out = {}
    for tid in tids:
        out[tid] = (tuple(r.lrange(cl.key("notifs:" + tid), 0, -1)), r.llen(cl.key("timeline:" + tid)),
                    r.hget(cl.key("ticket:" + tid), "unclaimed"), r.hget(cl.key("ticket:" + tid), "state"))
    for cid in cids:
        out[cid] = tuple(sorted(r.hgetall(cl.key("complaint:" + cid)).items()))
    return out


def settle(cl, seconds=1.2):
    """Lets the scheduler (200 ms) run several times and the relays deliver."""
    time.sleep(seconds)
    wait_drained(cl, 10)


def test_timers_with_clock(cl):
    """Pickup reminders (one per level, only the latest after a pause), the unclaimed flag (never disposed of),
    complaint escalation, the mediator for consumers only, complaint resolution: driven by restarting sav-intake
    with SAV_CLOCK_OFFSET_MS (8, 31, 400 days...); a restart with the same offset changes nothing."""
    res = Result()
    cl.write_config(cl.config, extra={"intake": [("scheduler_ms", "200"), ("pickup_reminder_days", "7,30,90"),
                                                 ("unclaimed_days", "365"), ("complaint_escalate_days", "3"),
                                                 ("mediator_after_days", "30"), ("mediator", MEDIATOR)]})
    cl.start_all()
    cat = centres()
    cf = Customer("Jeanne Martin", "fr", "06 12 34 56 78", "+33612345678", "jeanne.martin@example.fr")
    ce = Customer("Chris Doe", "en", email="chris.doe@example.com")
    cb = Customer("Garage Dupont SARL", "en", "+33472000001", email="contact@garage-dupont.fr", business=SIREN)
    for c in (cf, ce, cb):
        add_customer(cl, res, c)
    if not all(c.id for c in (cf, ce, cb)):
        return res
    for serial, c in (("TM-1", cf), ("TM-2", ce), ("TM-3", cf), ("TM-4", cf), ("TM-5", cb)):
        add_product(cl, res, serial, "WM-7000", c.id, today(-300))
    # R1 (fr, sms+email) and R2 (en, e-mail) wait for pickup at the desk; R3 was an on-site job: no reminders.
    r1 = open_ticket(cl, res, *open_args(cf.id, "TM-1", channel="drop_off", centre="LYO-01", faults=["E21"]))
    r2 = open_ticket(cl, res, *open_args(ce.id, "TM-2", channel="drop_off"))
    r3 = open_ticket(cl, res, *open_args(cf.id, "TM-3", channel="on_site"))
    k1 = open_ticket(cl, res, *open_args(cf.id, "TM-4"))
    k2 = open_ticket(cl, res, *open_args(cb.id, "TM-5"))
    tids = [r1, r2, r3, k1, k2]
    if not all(tids):
        return res
    routes = {r1: cf.routes(), r2: ce.routes(), r3: cf.routes(), k1: cf.routes(), k2: cb.routes()}
    for tid in tids:
        wait_notifs(cl, tid, len(routes[tid]))
    for tid in (r1, r2, r3):
        run(cl, res, "repair", "start", tid)
        run(cl, res, "repair", "done", tid)
    deadline = today(5)
    run(cl, res, "complaint", "open", k1, "--reason", "not_repaired", "--text", "x", "--notice-deadline",
        today(-1).isoformat(), want=2, err_has="the notice deadline %s is already past" % today(-1))
    run(cl, res, "complaint", "open", k1, "--reason", "too_slow", "--text", "x", want=2,
        err_has="reason must be one of")
    run(cl, res, "complaint", "open", "T-2026-999999", "--reason", "damaged", "--text", "x", want=3,
        err_has="no ticket T-2026-999999")
    c1 = run(cl, res, "complaint", "open", k1, "--reason", "not_repaired", "--text",
             "Mon lave-linge ne chauffe toujours pas.", "--notice-deadline", deadline.isoformat())
    c2 = run(cl, res, "complaint", "open", k2, "--reason", "extra_costs", "--text", "The quote was too high.",
             "--notice-deadline", deadline.isoformat())
    if not (c1 and c2):
        return res
    c1, c2 = c1.get("id"), c2.get("id")
    res.check((c1, c2) == ("CMP-000001", "CMP-000002"), "complaint ids %s, %s, want CMP-000001, CMP-000002" % (c1, c2))
    cids = [c1, c2]
    d = run(cl, res, "complaint", "show", c1) or {}
    want = {"id": c1, "ticket": k1, "status": "open", "reason": "not_repaired", "deadline": deadline.isoformat(),
            "customer_id": cf.id, "customer_type": "consumer", "text": "Mon lave-linge ne chauffe toujours pas."}
    res.check({k: d.get(k) for k in want} == want, "complaint show %s: %r, want %r" % (c1, d, want))
    d = run(cl, res, "complaint", "show", c2) or {}
    res.check(d.get("customer_type") == "business" and d.get("status") == "open",
              "complaint show %s: %r, want customer_type business, status open" % (c2, d))
    for tid, cid in ((k1, c1), (k2, c2)):
        wait_notifs(cl, tid, 2 * len(routes[tid]))
        data = show(cl, tid)
        lang = "fr" if tid == k1 else "en"
        check_event_notifs(res, tid, data, "complaint_acknowledged", routes[tid], contains=(cid,
                           spoken_date(deadline, lang)))
        opened = timeline_entries(data, "complaint.opened")
        res.check(len(opened) == 1 and (opened[0].get("actor"), opened[0].get("detail")) == (cl.identity, cid),
                  "%s: complaint.opened entries %r" % (tid, opened))
        res.check([x.get("id") for x in data.get("complaints", [])] == [cid],
                  "%s: ticket show complaints %r, want [%s]" % (tid, data.get("complaints"), cid))
    for tid in (r1, r2, r3):
        wait_notifs(cl, tid, 3 * len(routes[tid]))
    settle(cl, 0.5)
    base = snapshot(cl, tids, cids)

    def notif_ids(tid, event):
        return [n for n in cl.redis().lrange(cl.key("notifs:" + tid), 0, -1) if (":%s:" % event) in n]

    def reminders_are(level, days):
        """R1 and R2 have reminders 1..level (one notification per route each), R3 none."""
        ok = True
        for tid in (r1, r2):
            want = sorted("%s:pickup_reminder:%s:%d" % (tid, ch, v) for v in range(1, level + 1) for ch in routes[tid])
            if not res.check(sorted(notif_ids(tid, "pickup_reminder")) == want,
                             "%s after %d days: reminders %s, want %s" % (tid, days, notif_ids(tid, "pickup_reminder"),
                                                                         want)):
                ok = False
                continue  # the details would only repeat it
            data = show(cl, tid)
            entries = timeline_entries(data, "pickup.reminder")
            ok &= res.check([(e.get("detail"), e.get("state"), e.get("actor")) for e in entries] ==
                            [(str(v), "ready", "scheduler") for v in range(1, level + 1)],
                            "%s: pickup.reminder timeline entries %r" % (tid, entries))
            if level:
                lang = "fr" if tid == r1 else "en"
                text = "%d jours" % days if lang == "fr" else "%d days" % days
                centre = cat["LYO-01" if tid == r1 else "PAR-01"]["name"]
                ok &= check_event_notifs(res, tid, data, "pickup_reminder", routes[tid], version=level,
                                         contains=(text, centre), count=level)
        res.check(not notif_ids(r3, "pickup_reminder"), "%s (on_site) got pickup reminders %s" % (
            r3, notif_ids(r3, "pickup_reminder")))
        return ok

    def wait_for(pred, timeout=10):
        return harness.wait_until(lambda: pred() and outboxes_empty(cl), timeout, 0.1)

    def status(cid):
        return cl.redis().hget(cl.key("complaint:" + cid), "status")

    # +1 day: nothing is due.
    restart_intake(cl, res, 1)
    settle(cl)
    res.check(snapshot(cl, tids, cids) == base, "after 1 day something changed: %s" % diff(base, snapshot(cl, tids,
                                                                                                          cids)))
    # +3 days: both complaints escalated (deadline in 5 days, escalate 3 days before); no reminder yet.
    restart_intake(cl, res, 3)
    wait_for(lambda: status(c1) == "escalated" and status(c2) == "escalated")
    settle(cl)
    for tid, cid in ((k1, c1), (k2, c2)):
        d = run(cl, res, "complaint", "show", cid) or {}
        res.check(d.get("status") == "escalated", "complaint show %s after 3 days: status %r, want escalated" % (
            cid, d.get("status")))
        data = show(cl, tid)
        lang = "fr" if tid == k1 else "en"
        check_event_notifs(res, tid, data, "complaint_escalated", routes[tid], contains=(cid,
                           spoken_date(deadline, lang)))
        esc = timeline_entries(data, "complaint.escalated")
        res.check(len(esc) == 1 and (esc[0].get("actor"), esc[0].get("detail")) == ("scheduler", cid),
                  "%s: complaint.escalated entries %r" % (tid, esc))
    reminders_are(0, 3)
    res.check(not notif_ids(k1, "mediator_info"), "mediator_info after 3 days: %s" % notif_ids(k1, "mediator_info"))

    # +8 days: reminder 1, once.
    restart_intake(cl, res, 8)
    wait_for(lambda: len(notif_ids(r1, "pickup_reminder")) >= len(routes[r1]) and
             len(notif_ids(r2, "pickup_reminder")) >= len(routes[r2]))
    settle(cl)
    reminders_are(1, 8)
    res.check(not notif_ids(k1, "mediator_info"), "mediator_info after 8 days: %s" % notif_ids(k1, "mediator_info"))

    # +31 days: reminder 2; the consumer's complaint gets the mediator's contact, the business one never.
    restart_intake(cl, res, 31)
    wait_for(lambda: len(notif_ids(r1, "pickup_reminder")) >= 2 * len(routes[r1]) and
             len(notif_ids(r2, "pickup_reminder")) >= 2 * len(routes[r2]) and notif_ids(k1, "mediator_info"))
    settle(cl)
    reminders_are(2, 31)
    data = show(cl, k1)
    check_event_notifs(res, k1, data, "mediator_info", routes[k1], contains=(c1, MEDIATOR))
    med = timeline_entries(data, "complaint.mediator_offered")
    res.check(len(med) == 1 and (med[0].get("actor"), med[0].get("detail")) == ("scheduler", c1),
              "%s: complaint.mediator_offered entries %r" % (k1, med))
    res.check(not notif_ids(k2, "mediator_info"), "business complaint %s got mediator_info %s" % (
        c2, notif_ids(k2, "mediator_info")))

    # Resolution: a rejection needs a note; a resolved complaint cannot be resolved again.
    run(cl, res, "complaint", "resolve", c1, "--resolution", "rejected", want=2,
        err_has="a rejected complaint needs --note with the reason")
    run(cl, res, "complaint", "resolve", c1, "--resolution", "apology", "--note", "x", want=2,
        err_has="resolution must be one of")
    run(cl, res, "complaint", "resolve", "CMP-999999", "--resolution", "refund", want=3,
        err_has="no complaint CMP-999999")
    note = "Le technicien n'a constaté aucun défaut lors de deux contrôles."
    d = run(cl, res, "complaint", "resolve", c1, "--resolution", "rejected", "--note", note)
    res.check(d == {"id": c1, "replayed": False}, "complaint resolve %s: %r, want {id: %s, replayed: false}" % (
        c1, d, c1))
    run(cl, res, "complaint", "resolve", c1, "--resolution", "refund", "--note", "x", want=2,
        err_has="complaint %s is already resolved" % c1)
    d = run(cl, res, "complaint", "show", c1) or {}
    res.check((d.get("status"), d.get("resolution"), d.get("resolution_note")) == ("resolved", "rejected", note),
              "complaint show %s after resolve: %r" % (c1, d))
    wait_for(lambda: notif_ids(k1, "complaint_resolved"))
    data = show(cl, k1)
    check_event_notifs(res, k1, data, "complaint_resolved", routes[k1], contains=(c1, "réclamation non retenue"))
    for n in notifs_of(data, "complaint_resolved").get("email", []):
        res.check(note in n.get("body", ""), "%s: complaint_resolved e-mail lacks the note" % k1)

    # +400 days: one more reminder (the latest due, 3: not a burst), the unclaimed flag; still ready.
    restart_intake(cl, res, 400)
    wait_for(lambda: all(cl.redis().hget(cl.key("ticket:" + t), "unclaimed") == "1" for t in (r1, r2)) and
             all(len(notif_ids(t, "unclaimed_notice")) >= len(routes[t]) for t in (r1, r2)))
    settle(cl)
    reminders_are(3, 400)
    for tid in (r1, r2):
        data = show(cl, tid)
        lang = "fr" if tid == r1 else "en"
        res.check(data["state"] == "ready" and data["unclaimed"] is True,
                  "%s after 400 days: state %r unclaimed %r, want ready, true (never disposed of)" % (
                      tid, data["state"], data["unclaimed"]))
        check_event_notifs(res, tid, data, "unclaimed_notice", routes[tid],
                           contains=("400 jours" if lang == "fr" else "400 days",))
        fl = timeline_entries(data, "unclaimed.flagged")
        res.check(len(fl) == 1 and (fl[0].get("state"), fl[0].get("actor")) == ("ready", "scheduler"),
                  "%s: unclaimed.flagged entries %r" % (tid, fl))
    data = show(cl, r3)
    res.check(data["unclaimed"] is False and not notif_ids(r3, "unclaimed_notice"),
              "%s (on_site) flagged unclaimed %r / notices %s" % (r3, data["unclaimed"], notif_ids(r3,
                                                                                                  "unclaimed_notice")))
    d = run(cl, res, "ticket", "list", "--unclaimed") or {}
    res.check(sorted(x.get("id") for x in d.get("tickets", [])) == sorted([r1, r2]),
              "ticket list --unclaimed: %s, want %s" % ([x.get("id") for x in d.get("tickets", [])], [r1, r2]))
    res.check(not notif_ids(k2, "mediator_info"), "business complaint %s got mediator_info after 400 days: %s" % (
        c2, notif_ids(k2, "mediator_info")))
    res.check(len(notif_ids(k1, "mediator_info")) == len(routes[k1]), "%s: mediator_info %s after 400 days" % (
        k1, notif_ids(k1, "mediator_info")))

    # The same offset again: nothing at all changes.
    before = snapshot(cl, tids, cids)
    restart_intake(cl, res, 400)
    settle(cl, 1.5)
    after = snapshot(cl, tids, cids)
    res.check(after == before, "a second restart at +400 days changed: %s" % diff(before, after))

    # The business complaint: resolved without any mention of the consumer mediator.
    run(cl, res, "complaint", "resolve", c2, "--resolution", "goodwill_credit", "--amount", "5000", "--note",
        "A credit of EUR 50 on your next invoice.")
    wait_for(lambda: notif_ids(k2, "complaint_resolved"))
    data = show(cl, k2)
    check_event_notifs(res, k2, data, "complaint_resolved", routes[k2], contains=(c2, "goodwill credit"))
    for n in data.get("notifications", []):
        body = (n.get("body") or "").lower()
        res.check("mediator" not in body and "médiat" not in body,
                  "%s: business customer %s got %s mentioning the consumer mediator (consumer mediation is for "
                  "consumers only; no mediator_info is ever sent to them): %r" % (
                      n.get("id"), cb.id, n.get("event"), n.get("body")))
    # Collected at last: closed, and no longer listed as unclaimed.
    run(cl, res, "ticket", "pickup", r1)
    data = show(cl, r1)
    res.check(data["state"] == "closed", "%s: state %r after pickup of an unclaimed product" % (r1, data["state"]))
    d = run(cl, res, "ticket", "list", "--unclaimed") or {}
    res.check([x.get("id") for x in d.get("tickets", [])] == [r2],
              "ticket list --unclaimed after %s was collected: %s, want [%s] (a collected product needs no judicial "
              "procedure)" % (r1, [x.get("id") for x in d.get("tickets", [])], r2))
    p = cl.savctl("ticket", "show", r1)
    banner = [line for line in p.stdout.splitlines() if "UNCLAIMED" in line]
    res.check(p.returncode == 0 and not banner, "savctl ticket show %s (closed: collected) still prints %r" % (
        r1, banner))
    p = cl.savctl("ticket", "show", r2)
    res.check(p.returncode == 0 and "UNCLAIMED: keep the product, judicial procedure only" in p.stdout,
              "savctl ticket show %s (unclaimed, ready) lacks the UNCLAIMED banner: %r" % (r2, p.stdout[:600]))
    res.fig("reminders", sum(len(notif_ids(t, "pickup_reminder")) for t in (r1, r2, r3)))
    res.fig("complaint_notices", sum(len([n for n in cl.redis().lrange(cl.key("notifs:" + t), 0, -1)
                                          if ":complaint_" in n or ":mediator_info:" in n]) for t in (k1, k2)))
    res.check(wait_drained(cl, 20), "outboxes not drained within 20 s")
    check_drained(cl, res)
    return res


def diff(a, b):
    keys = sorted(set(a) | set(b))
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


# ---------------------------------------------------------------- 5. maintenance_schedule

def test_maintenance_schedule(cl):
    """A maintenance contract opens one preventive_maintenance visit ticket per visit when it falls due (one
    scheduler tick), tells the customer, never twice (restarts), and never more visits than the contract has."""
    res = Result()
    cl.write_config(cl.config, extra={"intake": [("scheduler_ms", "200"), ("maintenance_lead_days", "14")]})
    cl.start_all()
    c = Customer("Anaïs Rousseau", "fr", "06 98 76 54 32", "+33698765432", "anais.rousseau@example.fr")
    if not add_customer(cl, res, c):
        return res
    add_product(cl, res, "MS-BO-1", "BO-24", c.id, today(-400))
    start, end = add_months(today(), -8), add_months(today(), 24)
    visit = [add_months(start, 6 * n) for n in range(0, 7)]  # visit[n] is visit n's date
    nvisits = max(n for n in range(1, 7) if visit[n] <= end)
    k = run(cl, res, "contract", "add", "MS-BO-1", "--type", "maintenance", "--start", start.isoformat(),
            "--end", end.isoformat(), "--every", "6")
    if not k:
        return res
    kid = k.get("id")
    routes = c.routes()

    def visit_tickets():
        d = run(cl, res, "ticket", "list", "--kind", "preventive_maintenance") or {}
        return list(reversed(d.get("tickets", [])))  # oldest first

    def contract():
        return cl.redis().hgetall(cl.key("contract:" + kid))

    def check_visit(tid, n):
        data = show(cl, tid)
        res.check((data["kind"], data["channel"], data["state"], data["serial"], data["customer_id"]) ==
                  ("preventive_maintenance", "on_site", "received", "MS-BO-1", c.id),
                  "visit %d ticket %s: kind %r channel %r state %r serial %r customer %r" % (
                      n, tid, data["kind"], data["channel"], data["state"], data["serial"], data["customer_id"]))
        res.check("%d/%d" % (n, nvisits) in data["symptom"] and kid in data["symptom"],
                  "visit %d ticket %s: symptom %r does not name visit %d/%d of %s" % (n, tid, data["symptom"], n,
                                                                                      nvisits, kid))
        check_event_notifs(res, tid, data, "maintenance_due", routes, version=n,
                           contains=(kid, spoken_date(visit[n], "fr")))
        planned = timeline_entries(data, "maintenance.visit_planned")
        res.check(len(planned) == 1 and (planned[0].get("actor"), planned[0].get("detail")) ==
                  ("scheduler", visit[n].isoformat()), "visit %d ticket %s: maintenance.visit_planned %r" % (
                      n, tid, planned))
        h = cl.redis().hgetall(cl.key("ticket:" + tid))
        res.check((h.get("maintenance_contract"), h.get("visit_number"), h.get("visit_date")) ==
                  (kid, str(n), visit[n].isoformat()), "visit %d ticket %s: contract/visit fields %r" % (
                      n, tid, (h.get("maintenance_contract"), h.get("visit_number"), h.get("visit_date"))))

    t0 = time.monotonic()
    harness.wait_until(lambda: cl.redis().zcard(cl.key("maintenance:visits")), 5, 0.02)
    res.fig("first_visit_s", round(time.monotonic() - t0, 2))
    res.check(time.monotonic() - t0 < 1.5, "the first visit ticket took %.1f s, want one scheduler tick (200 ms)" % (
        time.monotonic() - t0))
    harness.wait_until(lambda: visit_tickets() and outboxes_empty(cl), 5, 0.1)
    settle(cl)
    v = visit_tickets()
    res.check(len(v) == 1, "%d visit tickets after one tick, want 1: %s" % (len(v), [x.get("id") for x in v]))
    if not v:
        return res
    t1 = v[0]["id"]
    check_visit(t1, 1)
    h = contract()
    res.check((h.get("visits"), h.get("visits_done"), h.get("next_visit_on"), h.get("last_visit_ticket")) ==
              (str(nvisits), "1", visit[2].isoformat(), t1), "contract %s after visit 1: %r" % (kid, h))
    d = run(cl, res, "maintenance", "due") or {}
    res.check(d.get("visits") == [{"ticket": t1, "state": "received", "serial": "MS-BO-1", "customer_id": c.id,
                                   "visit_date": visit[1].isoformat(), "contract": kid, "overdue": True}]
              and d.get("planned") == [] and d.get("today") == today().isoformat(),
              "maintenance due: %r, want visit 1 (%s) overdue, nothing planned within 14 days" % (d, visit[1]))
    horizon = (visit[2] - today()).days + 1
    d = run(cl, res, "maintenance", "due", "--days", str(horizon)) or {}
    res.check(d.get("planned") == [{"contract": kid, "serial": "MS-BO-1", "visit_date": visit[2].isoformat(),
                                    "visit_number": 2, "overdue": False}],
              "maintenance due --days %d: planned %r, want visit 2 on %s" % (horizon, d.get("planned"), visit[2]))
    d = run(cl, res, "product", "show", "MS-BO-1") or {}
    ks = d.get("contracts", [])
    res.check(len(ks) == 1 and (ks[0].get("type"), ks[0].get("every_months"), ks[0].get("visits"),
                                ks[0].get("covers")) == ("maintenance", 6, nvisits, "labour,travel,wear"),
              "product show MS-BO-1 contracts %r" % ks)

    # A restart changes nothing.
    restart_intake(cl, res, 0)
    settle(cl)
    v = visit_tickets()
    res.check([x.get("id") for x in v] == [t1], "after a restart: visit tickets %s, want [%s]" % (
        [x.get("id") for x in v], t1))

    # Six months later: visit 2's ticket, and only it.
    restart_intake(cl, res, (add_months(today(), 6) - today()).days)
    harness.wait_until(lambda: len(visit_tickets()) >= 2 and outboxes_empty(cl), 5, 0.1)
    settle(cl)
    v = visit_tickets()
    res.check(len(v) == 2, "+6 months: %d visit tickets, want 2: %s" % (len(v), [x.get("id") for x in v]))
    if len(v) >= 2:
        check_visit(v[1]["id"], 2)
    h = contract()
    res.check((h.get("visits_done"), h.get("next_visit_on")) == ("2", visit[3].isoformat()),
              "contract %s after visit 2: visits_done %r next_visit_on %r, want 2, %s" % (
                  kid, h.get("visits_done"), h.get("next_visit_on"), visit[3]))

    # At the contract's end: every remaining visit, never more than the contract's.
    restart_intake(cl, res, (end - today()).days)
    harness.wait_until(lambda: len(visit_tickets()) >= nvisits and outboxes_empty(cl), 10, 0.1)
    settle(cl, 1.5)
    v = visit_tickets()
    res.check(len(v) == nvisits, "at the contract's end: %d visit tickets, want %d" % (len(v), nvisits))
    for n, x in enumerate(v[2:], start=3):
        check_visit(x["id"], n)
    h = contract()
    res.check((h.get("visits_done"), h.get("next_visit_on")) == (str(nvisits), ""),
              "contract %s at its end: visits_done %r next_visit_on %r, want %d, ''" % (
                  kid, h.get("visits_done"), h.get("next_visit_on"), nvisits))
    res.check(cl.redis().zcard(cl.key("maintenance:due")) == 0, "maintenance:due still holds %s" % (
        cl.redis().zrange(cl.key("maintenance:due"), 0, -1)))
    restart_intake(cl, res, (end - today()).days + 400)
    settle(cl, 1.5)
    res.check(len(visit_tickets()) == nvisits, "a year after the contract's end: %d visit tickets, want %d" % (
        len(visit_tickets()), nvisits))
    res.fig("visits", "%d/%d" % (len(visit_tickets()), nvisits))
    res.check(wait_drained(cl, 20), "outboxes not drained within 20 s")
    check_drained(cl, res)
    return res


# ---------------------------------------------------------------- 6. redis_restart_first_request

def test_redis_restart_first_request(cl):
    """Redis is SIGKILLed and restarted from its AOF while the services sit idle (no relay scan, catalog check or
    timer in between, so their connections are stale): the very first requests are served, not answered
    "unavailable" (store retries a dead connection once)."""
    res = Result()
    cl.write_config(cl.config, extra={"relay": [("scan_ms", "600000")], "catalog": [("check_ms", "600000")],
                                      "intake": [("scheduler_ms", "600000")]})
    cl.start_all()
    c = Customer("Noël Garçon", "fr", "06 55 44 33 22", "+33655443322")
    if not add_customer(cl, res, c):
        return res
    add_product(cl, res, "RR-1", "WM-7000", c.id, today(-100))
    add_product(cl, res, "RR-2", "DW-450", c.id, today(-100))
    t1 = open_ticket(cl, res, *open_args(c.id, "RR-1", faults=["E21"]))
    res.check(wait_drained(cl, 10), "outboxes not drained before the Redis restart")
    cl.kill_redis()
    cl.start_redis()
    first = {}
    for name, args in [("ticket open", open_args(c.id, "RR-2", faults=["E21"])),
                       ("customer show", ["customer", "show", c.id]),
                       ("ticket show", ["ticket", "show", t1 or "T-2026-000001"]),
                       ("repair start", ["repair", "start", t1 or "T-2026-000001"])]:
        p = cl.savctl("--json", *args)
        first[name] = p.returncode
        res.check(p.returncode == 0, "first %s after Redis restarted: exit %d %r, want 0 (Redis is up again; a stale "
                  "connection must be retried, as store_call does)" % (name, p.returncode, p.stderr.strip()))
    res.fig("exit_codes", first)
    res.check(wait_drained(cl, 10), "outboxes not drained after the Redis restart")
    check_drained(cl, res)
    return res


# ---------------------------------------------------------------- 7. redis_loading

def test_redis_loading(cl):
    """Redis restarted from an AOF it takes seconds to load (key-load-delay): while it answers LOADING, every
    request is answered "unavailable" (exit 4, the service named), never "not found" (3), "rejected" (2) or an
    internal error (5), and changes nothing; once it is loaded, the same requests (same request ids) succeed."""
    res = Result()
    cl.start_all()
    c = Customer("Noël Garçon", "fr", "06 55 44 33 22", "+33655443322")
    if not add_customer(cl, res, c):
        return res
    add_product(cl, res, "RL-1", "WM-7000", c.id, today(-100))
    add_product(cl, res, "RL-2", "DW-450", c.id, today(-100))
    t1 = open_ticket(cl, res, *open_args(c.id, "RL-1", faults=["E21"]))
    res.check(wait_drained(cl, 10) and t1, "ticket %s not through the pipeline before the restart" % t1)
    r = cl.redis()
    p = r.pipeline(transaction=False)
    for i in range(20000):
        p.set("filler:%d" % i, "x")  # outside the sav: prefix: only makes loading slow
    p.execute()
    cl.kill_redis()
    cl.start_redis(extra=("--key-load-delay", "300"), wait=False)
    res.check(harness.wait_until(lambda: harness.port_open(cl.redis_port), 10, 0.01), "redis did not listen again")
    requests = [("ticket open", open_args(c.id, "RL-2", faults=["E21"]) + ["--request-id", "rl-open"]),
                ("customer show", ["customer", "show", c.id]),
                ("ticket show", ["ticket", "show", t1]),
                ("repair start", ["repair", "start", t1, "--request-id", "rl-start"]),
                ("parts receive", ["parts", "receive", "PAR-01", "RES-2000W", "2", "--request-id", "rl-recv"])]
    env = {"SAV_CLIENT_TIMEOUT_MS": "1000", "SAV_CLIENT_ATTEMPTS": "1"}
    during = {}
    for name, args in requests:
        q = cl.savctl("--json", *args, env=env)
        during[name] = q.returncode
        res.check(q.returncode == 4 and q.stderr.strip(), "%s while Redis loads its AOF: exit %d %r, want 4 "
                  "(unavailable)" % (name, q.returncode, q.stderr.strip()))
    loading = subprocess.run(["redis-cli", "--no-auth-warning", "-p", str(cl.redis_port), "ping"], capture_output=True,
                             text=True, timeout=10, env=dict(os.environ, REDISCLI_AUTH=cl.redis_admin[1])).stdout
    res.check("LOADING" in loading, "Redis was no longer loading after the requests (PING: %r): the AOF loaded "
              "too fast for this test" % loading.strip())
    res.fig("during_loading", during)

    def loaded():
        try:
            return r.ping()
        except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
            return False
    res.check(harness.wait_until(loaded, 60, 0.1), "Redis did not finish loading within 60 s")
    # A service retries Redis with a backoff of at most a second: until it is back, its answer stays "unavailable".
    back_s = cl.wait_redis_ready()
    res.fig("services_ready_s", back_s)
    res.check(back_s is not None and back_s <= 3, "services not ready within 3 s of Redis loaded: %s" % back_s)
    after = {}
    for name, args in requests:
        q = cl.savctl("--json", *args)
        after[name] = q.returncode
        res.check(q.returncode == 0, "%s once Redis is loaded: exit %d %r, want 0" % (name, q.returncode,
                                                                                    q.stderr.strip()))
    res.fig("after_loading", after)
    res.check(r.hget(cl.key("stock:PAR-01:received"), "RES-2000W") == "6", "received RES-2000W at PAR-01 = %r, want "
              "4 (catalog) + 2 once" % r.hget(cl.key("stock:PAR-01:received"), "RES-2000W"))
    res.check(wait_drained(cl, 15), "outboxes not drained after the restart")
    check_drained(cl, res)
    return res


TESTS = [
    ("lifecycle_transitions", test_lifecycle_transitions),
    ("validations", test_validations),
    ("records_and_queries", test_records_and_queries),
    ("timers_with_clock", test_timers_with_clock),
    ("maintenance_schedule", test_maintenance_schedule),
    ("redis_restart_first_request", test_redis_restart_first_request),
    ("redis_loading", test_redis_loading),
]
