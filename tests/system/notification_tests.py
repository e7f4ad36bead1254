#!/usr/bin/python3
"""SAV system tests of e-mail delivery (sav-notification's sender thread, services/notification/mailer.c, the
message builder common/mail.c and the mail_claim / mail_done / mail_retry Functions of common/redis/sav.lua)
against a real SMTP server: tests/system/smtp_peer.py (aiosmtpd, Recorder handler), started by each test on a
free 127.0.0.1 port and killed at its end.

Usage: /usr/bin/python3 tests/system/notification_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

Standalone it prints one PASS/FAIL line per test with its figures (and, on failure, the problems and the
tail of every server log, the SMTP peer's included) and ends with "N passed, N failed"; it exits 1 if any
test failed. tests/system/run.py can also run TESTS: each entry is (name, function(cluster) -> Result), the
cluster created but not started.

What is checked (keys under sav:{s0}:): every e-mail notification notif:<id> (channel email) goes queued ->
sending -> sent (last_answer = the SMTP code, sent_at set) or failed (last_answer = the server's answer,
listed in mail:sending:failed); the peer receives each Message-ID (<id with ':' as '.'>@mail_domain) once, but
for the documented duplicate window after a crash, counted in resent_after_crash.

Tests: email_delivery (well-formed messages, envelope, one per notification, one reused connection),
email_failures (550 / 451 / attempts / retry command / SMTP down / STARTTLS required / bad settings refused),
email_crash (SIGKILLs while sending: nothing lost, duplicates within resent_after_crash), email_graceful_stop
(SIGTERM in the middle of a batch leaves nothing stuck in "sending"), email_redis_restart (the server's acceptance
while Redis is away is confirmed once it is back: sent once), email_server_dies (a server that kept a message and died
before answering: sent again, the duplicate counted). SAV_TEST_SEED fixes email_crash's random kill timings (its
seed is printed).
"""

import base64
import binascii
import collections
import email
import email.header
import email.policy
import email.utils
import glob
import html.parser
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from fixtures import Result, pmap  # noqa: E402
from harness import HarnessError  # noqa: E402

PYTHON = "/usr/bin/python3"  # Debian's: it has aiosmtpd, zmq and redis
WORKERS = 4  # parallel savctl invocations
DELIVERED = "2025-06-14"  # products under the legal guarantee: free repairs, no quote


# ---------------------------------------------------------------- results

# ---------------------------------------------------------------- the SMTP peer

class SmtpPeer:
    """tests/system/smtp_peer.py under aiosmtpd, on 127.0.0.1:port, writing to folder. Only this object's own
    process is ever killed (by its pid)."""

    def __init__(self, cl, folder, port=None):
        self.cl = cl
        self.folder = folder
        self.port = port or harness.free_ports(1)[0]
        self.proc = None
        self.log = folder + ".log"

    def start(self, timeout=20):
        os.makedirs(self.folder, exist_ok=True)
        argv = [PYTHON, "-m", "aiosmtpd", "-n", "-l", "127.0.0.1:%d" % self.port, "-c", "smtp_peer.Recorder",
                self.folder]
        if harness.SETPRIV and threading.current_thread() is threading.main_thread():
            argv = [harness.SETPRIV, "--pdeathsig", "KILL", "--"] + argv  # dies with the tests, like the services
        env = dict(os.environ)
        env["PYTHONPATH"] = SYSTEST_DIR + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        if self.log not in self.cl._logs:
            self.cl._logs.append(self.log)  # printed with the services' logs when a test fails
        with open(self.log, "ab") as log:
            log.write(("==== %s start: %s\n" % (time.strftime("%H:%M:%S"), " ".join(argv))).encode())
            log.flush()
            self.proc = subprocess.Popen(argv, cwd=SYSTEST_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        harness._register(self.proc)  # killed by harness.kill_all() too (atexit, signals)
        deadline = time.monotonic() + timeout
        while not harness.port_open(self.port):
            if self.proc.poll() is not None:
                raise HarnessError("SMTP peer exited with %s:\n%s" % (self.proc.returncode,
                                                                     harness.tail_file(self.log)))
            if time.monotonic() > deadline:
                self.stop()
                raise HarnessError("SMTP peer did not accept connections on port %d within %ss" % (self.port,
                                                                                                  timeout))
            time.sleep(0.05)
        return self

    def stop(self):
        p, self.proc = self.proc, None
        if p is None:
            return
        harness.stop_process(p, signal.SIGKILL)
        harness.wait_until(lambda: not harness.port_open(self.port), 5, 0.05)

    def messages(self):
        """[(file number, raw bytes, envelope dict)] of every message fully written so far."""
        out = []
        for path in sorted(glob.glob(os.path.join(self.folder, "*.eml"))):
            with open(path, "rb") as f:
                raw = f.read()
            try:
                with open(path[:-4] + ".json") as f:
                    env = json.load(f)
            except (OSError, ValueError):
                env = {}
            out.append((os.path.basename(path), raw, env))
        return out

    def connections(self):
        try:
            with open(os.path.join(self.folder, "connections.log")) as f:
                return sum(1 for line in f if line.strip())
        except OSError:
            return 0


def smtp_config(cl, port, **keys):
    """Rewrites the cluster's config with [notification] smtp_url pointing at the peer, plus keys."""
    kvs = [("smtp_url", "smtp://127.0.0.1:%d" % port)] + [(k, str(v)) for k, v in keys.items()]
    cl.write_config(cl.config, extra={"notification": kvs})


# ---------------------------------------------------------------- savctl and Redis helpers

def run(cl, res, *args, want=0):
    """savctl --json ARGS; records a problem unless it exits `want`. Returns (exit code, JSON or None, stderr)."""
    try:
        r = cl.savctl(*args, json_out=True)
    except HarnessError as e:
        res.check(False, "savctl %s: %s" % (" ".join(map(str, args)), e))
        return None, None, ""
    res.check(r.returncode == want, "savctl %s: exit %d, want %d (stdout %r, stderr %r)" % (
        " ".join(map(str, args)), r.returncode, want, r.stdout.strip()[:200], r.stderr.strip()[:300]))
    data = None
    if r.returncode == 0:
        try:
            data = json.loads(r.stdout)
        except ValueError:
            res.check(False, "savctl %s printed invalid JSON: %r" % (" ".join(map(str, args)), r.stdout[:300]))
    return r.returncode, data, r.stderr


def add_customer(cl, res, name, address, lang="fr", phone=None, consent=None):
    args = ["customer", "add", "--name", name, "--email", address, "--lang", lang]
    if phone:
        args += ["--phone", phone]
    if consent is not None:
        args += ["--consent", consent]
    _, d, _ = run(cl, res, *args)
    cid = (d or {}).get("id")
    res.check(isinstance(cid, str) and cid.startswith("C-"), "customer add %r: reply %r" % (name, d))
    return cid


def add_product(cl, res, serial, cid):
    _, d, _ = run(cl, res, "product", "add", "--serial", serial, "--model", "WM-7000", "--customer", cid,
                  "--delivered", DELIVERED)
    return (d or {}).get("id") == serial


def open_ticket(cl, res, cid, serial, symptom="Ne chauffe plus"):
    _, d, _ = run(cl, res, "ticket", "open", "--customer", cid, "--serial", serial, "--kind", "repair",
                  "--symptom", symptom, "--fault", "E21")
    tid = (d or {}).get("id")
    res.check(isinstance(tid, str) and tid.startswith("T-"), "ticket open %s: reply %r" % (serial, d))
    return tid


def notif_hashes(cl, ids=None):
    """{id: HGETALL notif:<id>} for the given ids, or for every notification in notifs:all."""
    r = cl.redis()
    if ids is None:
        ids = r.zrange(cl.key("notifs:all"), 0, -1)
    ids = list(ids)
    p = r.pipeline(transaction=False)
    for nid in ids:
        p.hgetall(cl.key("notif:" + nid))
    return dict(zip(ids, p.execute()))


def email_notifs(cl):
    return {k: v for k, v in notif_hashes(cl).items() if v.get("channel") == "email"}


def message_id(nid, domain):
    return "%s@%s" % (nid.replace(":", "."), domain)


def peer_ids(raw):
    """The Message-ID (without <>) of a raw message, or None."""
    m = re.search(rb"^Message-ID:[ \t]*<([^>\r\n]*)>\r?$", raw.split(b"\r\n\r\n", 1)[0], re.M | re.I)
    return m.group(1).decode("utf-8", "replace") if m else None


def ticket_state(cl, tid):
    return cl.redis().hget(cl.key("ticket:" + tid), "state")


def wait_statuses(cl, ids, statuses, timeout):
    """Waits until every notification of ids has a status in statuses; returns {id: status}."""
    def look():
        hs = notif_hashes(cl, ids)
        return {k: v.get("status") for k, v in hs.items()}
    harness.wait_until(lambda: all(s in statuses for s in look().values()), timeout, 0.05)
    return look()


# ---------------------------------------------------------------- checking one message

LONG_LINE = "RFC 2047 section 2 (a line with encoded-words has at most 76 characters): "
ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
REQUIRED_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type")


class _HtmlText(html.parser.HTMLParser):
    """The visible text of the HTML part: <br> as a line break, </p> as a paragraph break."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out = []
        self.in_head = False

    def handle_starttag(self, tag, attrs):
        if tag == "br":
            self.out.append("\n")
        if tag == "head":
            self.in_head = True

    def handle_endtag(self, tag):
        if tag == "p":
            self.out.append("\n\n")
        if tag == "head":
            self.in_head = False

    def handle_data(self, data):
        if not self.in_head:
            self.out.append(data)


def _squash(s):
    return " ".join(s.split())


def header_block(raw):
    head = raw.split(b"\r\n\r\n", 1)[0]
    return head.decode("utf-8", "replace")


def raw_header(raw, name):
    """Every occurrence of header `name` in the raw header block, folded lines as sent: [[line, continuation...], ...]."""
    found, cur = [], None
    for line in header_block(raw).split("\r\n"):
        if line[:1] in (" ", "\t"):
            if cur is not None:
                cur.append(line)
            continue
        cur = None
        if line.lower().startswith(name.lower() + ":"):
            cur = [line]
            found.append(cur)
    return found


def check_encoded_words(where, name, lines, text):
    """RFC 2047 checks of one header field (its raw lines): when `text` (what it carries) is not ASCII, encoded-words
    only, each at most 75 characters, =?UTF-8?B?, each one's bytes whole UTF-8 characters, and every line of the
    field at most 76 characters. Returns problems."""
    problems = []
    value = "\r\n".join(lines)[len(name) + 1:].strip()
    words = ENCODED_WORD.findall(value)
    if not text.isascii() and not words:
        problems.append("%s: %s %r is not RFC 2047 encoded (the text has non-ASCII characters)" % (where, name, value))
    for charset, enc, b64 in words:
        word = "=?%s?%s?%s?=" % (charset, enc, b64)
        if len(word) > 75:
            problems.append("%s: %s encoded-word of %d characters (RFC 2047: at most 75): %s" % (where, name,
                                                                                                len(word), word))
        if charset.upper() != "UTF-8" or enc.upper() != "B":
            problems.append("%s: %s encoded-word %s is not =?UTF-8?B?" % (where, name, word))
            continue
        try:
            base64.b64decode(b64, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as e:
            problems.append("%s: %s encoded-word %s is not whole UTF-8 characters in base64 (%s)" % (
                where, name, word, e))
    if words:
        for line in lines:
            if len(line) > 76:
                problems.append(LONG_LINE + "%s line of %d characters: %r" % (name, len(line), line))
    return problems


def decode_words(where, name, value):
    """(decoded text, problems) of a header value or display name that may hold encoded-words."""
    try:
        return str(email.header.make_header(email.header.decode_header(value))), []
    except Exception as e:  # a header Python cannot decode at all
        return None, ["%s: %s %r does not decode: %s" % (where, name, value, e)]


def check_message(raw, envelope, nid, n, cfg):
    """Every check of one received message against its notification n (HGETALL). cfg: mail_from,
    mail_from_name, mail_domain. Returns a list of problems."""
    where = "message %s" % nid
    p = []
    # Line endings: CRLF only, ending with CRLF; no line longer than RFC 5322's 998.
    bare_lf = len(re.findall(rb"(?<!\r)\n", raw))
    bare_cr = len(re.findall(rb"\r(?!\n)", raw))
    if bare_lf or bare_cr or not raw.endswith(b"\r\n"):
        p.append("%s: %d bare LF, %d bare CR, ends with CRLF: %s" % (where, bare_lf, bare_cr, raw.endswith(b"\r\n")))
    longest = max(len(line) for line in raw.split(b"\r\n"))
    if longest > 998:
        p.append("%s: a line of %d characters (RFC 5322: at most 998)" % (where, longest))
    high = sum(1 for b in raw if b >= 0x80)
    if high:
        p.append("%s: %d byte(s) above 0x7F: the message must be 7-bit (base64 parts, RFC 2047 headers)" % (where, high))
    if b"\r\n\r\n" not in raw:
        p.append("%s: no blank line between header and body" % where)
        return p
    try:
        head_ascii = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    except UnicodeDecodeError:
        p.append("%s: the header has 8-bit bytes (must be ASCII, non-ASCII as RFC 2047)" % where)
        head_ascii = None
    # Envelope.
    if envelope.get("mail_from") != cfg["mail_from"]:
        p.append("%s: envelope MAIL FROM %r, want %r" % (where, envelope.get("mail_from"), cfg["mail_from"]))
    if envelope.get("rcpt_tos") != [n.get("recipient")]:
        p.append("%s: envelope RCPT TO %r, want [%r]" % (where, envelope.get("rcpt_tos"), n.get("recipient")))
    # Headers: each exactly once.
    for h in REQUIRED_HEADERS:
        occ = raw_header(raw, h)
        if len(occ) != 1:
            p.append("%s: header %s present %d times, want once" % (where, h, len(occ)))
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    want_mid = "<%s>" % message_id(nid, cfg["mail_domain"])
    if (msg.get("Message-ID") or "").strip() != want_mid:
        p.append("%s: Message-ID %r, want %r" % (where, msg.get("Message-ID"), want_mid))
    if (msg.get("Auto-Submitted") or "").strip() != "auto-generated":
        p.append("%s: Auto-Submitted %r, want auto-generated" % (where, msg.get("Auto-Submitted")))
    if (msg.get("MIME-Version") or "").strip() != "1.0":
        p.append("%s: MIME-Version %r, want 1.0" % (where, msg.get("MIME-Version")))
    to = email.utils.getaddresses([msg.get("To") or ""])
    if [a for _, a in to] != [n.get("recipient")]:
        p.append("%s: To %r, want the customer %r" % (where, msg.get("To"), n.get("recipient")))
    # From: exactly one mailbox, mail_from, whose display name is mail_from_name (RFC 2047 when not ASCII,
    # quoted when it has specials such as , ( ) : ; @ < > ").
    from_lines = raw_header(raw, "From")
    if from_lines and head_ascii is not None:
        p += check_encoded_words(where, "From", from_lines[0], cfg["mail_from_name"])
        value = "\r\n".join(from_lines[0])[5:].strip()
        boxes = email.utils.getaddresses([re.sub(r"\r\n[ \t]", " ", value)])
        if len(boxes) != 1:
            p.append("%s: From %r reads as %d mailboxes %s, want one (%r <%s>)" % (
                where, value, len(boxes), boxes, cfg["mail_from_name"], cfg["mail_from"]))
        else:
            name, addr = boxes[0]
            if addr != cfg["mail_from"]:
                p.append("%s: From address %r, want %r" % (where, addr, cfg["mail_from"]))
            decoded, probs = decode_words(where, "From display name", name)
            p += probs
            if decoded is not None and decoded != cfg["mail_from_name"]:
                p.append("%s: From display name decodes to %r, want %r" % (where, decoded, cfg["mail_from_name"]))
    # Subject: RFC 2047 when not ASCII, decoding to the notification's subject.
    subj = raw_header(raw, "Subject")
    if subj and head_ascii is not None:
        want = n.get("subject") or ""
        p += check_encoded_words(where, "Subject", subj[0], want)
        value = "\r\n".join(subj[0])[8:].strip()
        decoded, probs = decode_words(where, "Subject", value)
        p += probs
        if decoded is not None and decoded != want:
            p.append("%s: Subject decodes to %r, want %r" % (where, decoded, want))
    # Date: the time the notification was recorded, to the second.
    try:
        d = email.utils.parsedate_to_datetime(msg.get("Date") or "")
        if int(d.timestamp()) != int(n.get("at", "0")) // 1000:
            p.append("%s: Date %r is %d, want the notification's time %d" % (where, msg.get("Date"),
                                                                           int(d.timestamp()), int(n["at"]) // 1000))
    except (TypeError, ValueError) as e:
        p.append("%s: Date %r does not parse: %s" % (where, msg.get("Date"), e))
    # MIME structure: multipart/alternative, text/plain then text/html, UTF-8, decoding to the text.
    if msg.get_content_type() != "multipart/alternative" or not msg.is_multipart():
        p.append("%s: Content-Type %r, want multipart/alternative" % (where, msg.get("Content-Type")))
        return p
    parts = msg.get_payload()
    types = [x.get_content_type() for x in parts]
    if types != ["text/plain", "text/html"]:
        p.append("%s: parts %s, want [text/plain, text/html] in that order" % (where, types))
        return p
    body = (n.get("body") or "").replace("\r\n", "\n")
    texts = []
    for part in parts:
        cte = (part.get("Content-Transfer-Encoding") or "").strip().lower()
        if cte != "base64":
            p.append("%s: %s Content-Transfer-Encoding %r, want base64" % (where, part.get_content_type(), cte))
        else:
            lens = [len(line) for line in part.get_payload().splitlines()]
            if lens and max(lens) > 76:
                p.append("%s: %s base64 line of %d characters (RFC 2045: at most 76)" % (
                    where, part.get_content_type(), max(lens)))
        params = dict((k.lower(), v) for k, v in part.get_params() or [])
        if (params.get("charset") or "").upper() != "UTF-8":
            p.append("%s: %s charset %r, want UTF-8" % (where, part.get_content_type(), params.get("charset")))
        try:
            texts.append(part.get_payload(decode=True).decode("utf-8"))
        except (AttributeError, UnicodeDecodeError) as e:
            p.append("%s: %s part does not decode as UTF-8: %s" % (where, part.get_content_type(), e))
            return p
    plain, htm = texts
    if plain.replace("\r\n", "\n").rstrip("\n") != body.rstrip("\n"):
        p.append("%s: text/plain part %r differs from the notification's body %r" % (where, plain[:200], body[:200]))
    parser = _HtmlText()
    parser.feed(htm)
    parser.close()
    if _squash("".join(parser.out)) != _squash(body):
        p.append("%s: text/html part's text %r differs from the body %r" % (where, _squash("".join(parser.out))[:200],
                                                                           _squash(body)[:200]))
    # Escaping: whatever the body has in <, >, & must appear escaped in the HTML, never raw.
    for ch, esc in (("<", "&lt;"), (">", "&gt;"), ("&", "&amp;")):
        if htm.count(esc) < body.count(ch):
            p.append("%s: the HTML has %d %s for %d %r in the text" % (where, htm.count(esc), esc, body.count(ch), ch))
    if "<b>" in htm:
        p.append("%s: a raw <b> from the text reached the HTML part" % where)
    return p


# ---------------------------------------------------------------- test 1: delivery

FROM = "atelier.nation@sav-test.example"
FROM_NAME = "Service après-vente Nation"
DOMAIN = "mail.sav-test.example"
SPECIAL_NAME = "Zoë <b>& Fils Dupré"

DELIVERY_CUSTOMERS = [
    # (name, lang, email local part, consent)
    ("Élodie Martin", "fr", "elodie.martin", None),
    ("Jean-François Dupré", "fr", "jf.dupre+sav", None),
    ("Chloé Lefèvre", "fr", "chloe-lefevre", None),
    ("Noël Garçon", "fr", "noel.garcon", None),
    ("Anaïs Rousseau", "fr", "anais", None),
    (SPECIAL_NAME, "fr", "zoe.fils", None),
    ("Œdipe Ørsted-Ça", "fr", "oedipe", None),
    ("Hélène d'Aubigné", "fr", "helene", None),
    ("Ümit Çelik", "fr", "umit", None),
    ("Léa Kŏ 李", "fr", "lea", None),
    ("Alice Smith", "en", "alice", None),
    ("Bob O'Brien", "en", "bob.obrien", None),
    ("Zoë Taylor", "en", "zoe.taylor", None),
    ("Dave Brown", "en", "dave", None),
    ("Carol Jones", "en", "carol_jones", None),
    ("Renée Zellweger", "en", "renee", None),
    ("Sam \"Sparky\" Lee", "en", "sam", None),
    ("Ian McKellen", "en", "ian", None),
    ("Nuño Peña", "en", "nuno", None),
    ("Paul Durand", "fr", "paul.durand", "sms"),  # an e-mail address but no consent: no e-mail at all
]
REPAIRED = (0, 5, 6, 10, 12, 16)  # diagnose, repair start, repair done: three more e-mails each


def test_email_delivery(cl):
    """20 tickets for fr and en customers (accented names, one name with "<b>&", one customer with an address but
    no e-mail consent) and 6 of them repaired (diagnosis_done, repair_started with a two-word RFC 2047 subject,
    ready_for_pickup): every e-mail notification ends sent (last_answer 250, sent_at set, one attempt), the SMTP
    peer got exactly one message per notification (by Message-ID) and none for the customer without consent,
    the envelope is mail_from -> the customer, and every message is well formed (CRLF only, each header once,
    RFC 2047 subjects and sender name that decode to the notification's, multipart/alternative text/plain then
    text/html in UTF-8, both parts the notification's text, the HTML escaped); `notification list --status sent`
    agrees; the batch used at most 3 SMTP connections."""
    res = Result()
    peer = SmtpPeer(cl, os.path.join(cl.dir, "smtp"))
    try:
        peer.start()
        smtp_config(cl, peer.port, mail_from=FROM, mail_from_name=FROM_NAME, mail_domain=DOMAIN)
        cl.start_all()
        specs = []
        for i, (name, lang, local, consent) in enumerate(DELIVERY_CUSTOMERS):
            specs.append({"i": i, "name": name, "lang": lang, "email": "%s@example.fr" % local, "consent": consent,
                          "phone": "06 12 34 56 %02d" % i if consent else None, "serial": "SN-DELIV-%03d" % i})

        def register(s):
            s["cid"] = add_customer(cl, res, s["name"], s["email"], s["lang"], s["phone"], s["consent"])
            s["ok"] = bool(s["cid"]) and add_product(cl, res, s["serial"], s["cid"])
        pmap(register, specs)
        if not res.check(all(s["ok"] for s in specs), "registration failed"):
            return res
        t0 = time.monotonic()

        def open_one(s):
            s["tid"] = open_ticket(cl, res, s["cid"], s["serial"],
                                   "Ne chauffe plus" if s["lang"] == "fr" else "Does not heat")
        pmap(open_one, specs)
        if not res.check(all(s.get("tid") for s in specs), "tickets not opened"):
            return res

        def repair(s):
            if not harness.wait_until(lambda: ticket_state(cl, s["tid"]) == "in_diagnosis", 20, 0.05):
                res.check(False, "%s: state %r, want in_diagnosis" % (s["tid"], ticket_state(cl, s["tid"])))
                return
            run(cl, res, "diagnose", s["tid"], "--cause", "manufacturing", "--action", "repair", "--labour", "30")
            run(cl, res, "repair", "start", s["tid"])
            run(cl, res, "repair", "done", s["tid"])
        pmap(repair, [specs[i] for i in REPAIRED])

        # The e-mail notifications SAV must send: one per event for every customer who consented.
        expected = set()
        for s in specs:
            if s["consent"] == "sms":
                continue
            events = ["ticket_received"]
            if s["i"] in REPAIRED:
                events += ["diagnosis_done", "repair_started", "ready_for_pickup"]
            expected.update("%s:%s:email:1" % (s["tid"], e) for e in events)
        by_tid = {s["tid"]: s for s in specs}

        def all_sent():
            en = email_notifs(cl)
            return set(en) >= expected and all(v.get("status") in ("sent", "failed") for v in en.values())
        harness.wait_until(all_sent, 30, 0.1)
        res.fig("seconds", round(time.monotonic() - t0, 1))
        notifs = email_notifs(cl)
        res.fig("email_notifications", len(notifs))
        res.check(set(notifs) == expected, "e-mail notifications: missing %s, unexpected %s" % (
            sorted(expected - set(notifs))[:5], sorted(set(notifs) - expected)[:5]))
        statuses = collections.Counter(v.get("status") for v in notifs.values())
        res.fig("status", dict(statuses))
        for nid, n in sorted(notifs.items()):
            s = by_tid.get(n.get("ticket"), {})
            res.check(n.get("status") == "sent" and n.get("last_answer") == "250" and n.get("attempts") == "1"
                      and (n.get("sent_at") or "").isdigit() and int(n["sent_at"]) >= int(n.get("at", "0")),
                      "%s: status %r last_answer %r attempts %r sent_at %r, want sent, 250, 1, a time" % (
                          nid, n.get("status"), n.get("last_answer"), n.get("attempts"), n.get("sent_at")))
            res.check(n.get("recipient") == s.get("email") and n.get("lang") == s.get("lang"),
                      "%s: recipient %r lang %r, want %r %r" % (nid, n.get("recipient"), n.get("lang"),
                                                                s.get("email"), s.get("lang")))
            res.check(not n.get("resent_after_crash"), "%s: resent_after_crash %r without a crash" % (
                nid, n.get("resent_after_crash")))
        # The SMS-only customer: their SMS recorded, no e-mail.
        sms_only = [s for s in specs if s["consent"] == "sms"][0]
        their = [v for v in notif_hashes(cl).values() if v.get("ticket") == sms_only["tid"]]
        res.check(sorted(v.get("channel") for v in their) == ["sms"], "%s (consent sms): notifications on %s, "
                  "want sms only" % (sms_only["tid"], sorted(v.get("channel") for v in their)))

        # What the peer received.
        msgs = peer.messages()
        res.fig("peer_messages", len(msgs))
        by_mid = collections.defaultdict(list)
        for fname, raw, env in msgs:
            by_mid[peer_ids(raw)].append((fname, raw, env))
        want_mids = {message_id(nid, DOMAIN): nid for nid in notifs}
        missing = sorted(set(want_mids) - set(by_mid))
        unexpected = sorted(set(by_mid) - set(want_mids))
        dups = {k: len(v) for k, v in by_mid.items() if len(v) > 1}
        res.check(not missing, "%d notification(s) never reached the peer: %s" % (len(missing), missing[:5]))
        res.check(not unexpected, "%d message(s) with an unexpected Message-ID: %s" % (len(unexpected),
                                                                                       unexpected[:5]))
        res.check(not dups, "Message-IDs received more than once: %s" % dups)
        res.check(len(msgs) == len(expected), "the peer got %d messages, want %d" % (len(msgs), len(expected)))
        res.check(all(sms_only["email"] not in (env.get("rcpt_tos") or []) for _, _, env in msgs),
                  "a message went to %s, who did not consent to e-mail" % sms_only["email"])
        cfg = {"mail_from": FROM, "mail_from_name": FROM_NAME, "mail_domain": DOMAIN}
        checked = special = multiword = 0
        long_lines = collections.defaultdict(list)  # one problem per kind of header, not one per message
        for mid, lst in sorted(by_mid.items()):
            nid = want_mids.get(mid)
            if not nid:
                continue
            fname, raw, env = lst[0]
            for prob in check_message(raw, env, nid, notifs[nid], cfg):
                if prob.startswith(LONG_LINE):
                    long_lines[prob[len(LONG_LINE):].split(" ", 1)[0]].append(prob[len(LONG_LINE):])
                else:
                    res.check(False, "%s (%s)" % (prob, fname))
            checked += 1
            if by_tid.get(notifs[nid].get("ticket"), {}).get("name") == SPECIAL_NAME:
                special += 1
                htm = email.message_from_bytes(raw).get_payload()[1].get_payload(decode=True).decode("utf-8", "replace")
                res.check("Zoë &lt;b&gt;&amp; Fils Dupré" in htm, "%s: the HTML part does not have the name escaped "
                          "as 'Zoë &lt;b&gt;&amp; Fils Dupré'" % nid)
            if len(ENCODED_WORD.findall("\r\n".join((raw_header(raw, "Subject") or [[""]])[0]))) > 1:
                multiword += 1
        res.fig("messages_checked", checked)
        for header, lst in sorted(long_lines.items()):
            res.check(False, "%d of %d messages break %se.g. %s" % (len(lst), checked, LONG_LINE, lst[0]))
        res.check(special == 4, "%d message(s) for the customer named %r, want 4" % (special, SPECIAL_NAME))
        res.check(multiword >= 3, "only %d subject(s) folded into several encoded-words, want >= 3 (the fr "
                  "repair_started and ready_for_pickup subjects are longer than 45 bytes)" % multiword)
        res.fig("multiword_subjects", multiword)

        # savctl notification list agrees.
        _, d, _ = run(cl, res, "notification", "list", "--status", "sent", "--limit", "1000")
        rows = (d or {}).get("notifications") or []
        res.check(d and d.get("count") == len(rows) == len(expected) and {r.get("id") for r in rows} == expected
                  and all(r.get("channel") == "email" and r.get("status") == "sent" and r.get("last_answer") == "250"
                          for r in rows),
                  "notification list --status sent: count %r, %d rows, want the %d e-mails" % (
                      (d or {}).get("count"), len(rows), len(expected)))
        _, d, _ = run(cl, res, "notification", "list", "--limit", "5")
        rows = (d or {}).get("notifications") or []
        ats = [int(x.get("at") or 0) for x in rows]
        res.check(d and d.get("count") == 5 and len(rows) == 5 and ats == sorted(ats, reverse=True),
                  "notification list --limit 5: count %r, at %s; want 5 rows, newest first" % ((d or {}).get("count"), ats))
        conns = peer.connections()
        res.fig("smtp_connections", conns)
        res.check(1 <= conns <= 3, "%d SMTP connections for %d messages, want 1 to 3 (one connection reused)" % (
            conns, len(msgs)))

        # A sender name with specials of RFC 5322 (',', '(', ')'): From must still be one mailbox with that name.
        special_from = "Atelier Dupont, Fils & Cie (SAV)"
        cl.restart_service("notification", env={"SAV_NOTIFICATION_MAIL_FROM_NAME": special_from})
        cid = add_customer(cl, res, "Grace Hopper", "grace@example.fr", lang="en")
        if cid and add_product(cl, res, "SN-DELIV-FROM", cid):
            tid = open_ticket(cl, res, cid, "SN-DELIV-FROM", "Does not heat")
            nid = "%s:ticket_received:email:1" % tid
            st = wait_statuses(cl, [nid], ("sent", "failed"), 15)
            res.check(st.get(nid) == "sent", "%s (sender name %r): status %r, want sent" % (nid, special_from,
                                                                                           st.get(nid)))
            mine = [(f, raw, env) for f, raw, env in peer.messages() if peer_ids(raw) == message_id(nid, DOMAIN)]
            if res.check(len(mine) == 1, "%s: %d messages at the peer, want 1" % (nid, len(mine))):
                f, raw, env = mine[0]
                res.fig("from_with_specials", (raw_header(raw, "From") or [[""]])[0][0])
                for prob in check_message(raw, env, nid, notif_hashes(cl, [nid])[nid],
                                          dict(cfg, mail_from_name=special_from)):
                    res.check(False, "%s (%s, sender name with specials)" % (prob, f))
        return res
    finally:
        peer.stop()


# ---------------------------------------------------------------- test 2: failures

def test_email_failures(cl):
    """mail_max_attempts = 2, mail_retry_max_ms = 300. A recipient refused with 550 fails at once (attempts 1,
    last_answer with 550); one answered 451 is retried after the capped backoff (300 ms, not 1 s) and fails after
    2 attempts (last_answer with 451); `notification list --status failed` lists exactly those two; `notification
    retry` queues one again (attempts 0) and it fails again; retrying a sent or a queued e-mail or an SMS exits 2,
    an unknown id 3. The peer never got a message for them. SMTP down (peer killed; sav-notification restarted with
    mail_max_attempts = 1000 so an outage of a few seconds does not exhaust the attempts): e-mails stay queued,
    retried, last_answer "Couldn't connect..."; once a peer listens again, all are sent exactly once."""
    res = Result()
    peer = SmtpPeer(cl, os.path.join(cl.dir, "smtp"))
    peer2 = None
    try:
        # Settings that can only make every e-mail fail are refused by --check-config (file:line: reason).
        for key, value in (("smtp_url", "http://127.0.0.1:25"), ("smtp_tls", "maybe"), ("mail_from", "not-an-address"),
                           ("mail_domain", "sav example"), ("mail_domain", "sav.example>")):
            path = os.path.join(cl.dir, "bad-%s.conf" % key)
            cl.write_config(path, extra={"notification": [("smtp_url", "smtp://127.0.0.1:25")] * (key != "smtp_url")
                                         + [(key, value)]})
            r = subprocess.run([cl.binary("sav-notification"), "--config", path, "--check-config"],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
            res.check(r.returncode != 0 and (key in r.stderr or value in r.stderr),
                      "sav-notification --check-config with notification.%s = %r: exit %d, stderr %r; want it refused "
                      "(every e-mail would fail)" % (key, value, r.returncode, (r.stdout + r.stderr).strip()[:200]))
        peer.start()
        smtp_config(cl, peer.port, mail_max_attempts=2, mail_retry_max_ms=300)
        cl.start_all()
        people = {"reject": ("Rémi Rejet", "reject-x@example.fr"), "busy": ("Bérénice Occupée", "busy-x@example.fr"),
                  "ok": ("Octave Bon", "ok-x@example.fr")}
        tids = {}
        for k, (name, addr) in people.items():
            cid = add_customer(cl, res, name, addr, phone="06 98 76 54 3%d" % len(tids))
            if not (cid and add_product(cl, res, "SN-FAIL-%s" % k, cid)):
                return res
            tids[k] = open_ticket(cl, res, cid, "SN-FAIL-%s" % k)
        if not res.check(all(tids.values()), "tickets not opened: %s" % tids):
            return res
        nid = {k: "%s:ticket_received:email:1" % t for k, t in tids.items()}
        sms_id = "%s:ticket_received:sms:1" % tids["ok"]
        st = wait_statuses(cl, list(nid.values()), ("sent", "failed"), 20)
        hs = notif_hashes(cl, nid.values())
        rej, busy, ok = hs[nid["reject"]], hs[nid["busy"]], hs[nid["ok"]]
        res.fig("reject", "%s/%s/%r" % (rej.get("status"), rej.get("attempts"), rej.get("last_answer")))
        res.fig("busy", "%s/%s/%r" % (busy.get("status"), busy.get("attempts"), busy.get("last_answer")))
        res.check(rej.get("status") == "failed" and rej.get("attempts") == "1" and "550" in (rej.get("last_answer") or ""),
                  "550 recipient: status %r attempts %r last_answer %r, want failed after 1 attempt, mentioning 550"
                  % (rej.get("status"), rej.get("attempts"), rej.get("last_answer")))
        res.check("mailbox unavailable" in (rej.get("last_answer") or ""),
                  "550 recipient: last_answer %r does not carry the server's answer ('550 5.1.1 mailbox unavailable'); "
                  "the docs promise failed 'with the server's answer'" % rej.get("last_answer"))
        res.check(busy.get("status") == "failed" and busy.get("attempts") == "2" and "451" in (busy.get("last_answer") or ""),
                  "451 recipient: status %r attempts %r last_answer %r, want failed after 2 attempts, mentioning 451"
                  % (busy.get("status"), busy.get("attempts"), busy.get("last_answer")))
        res.check(ok.get("status") == "sent" and ok.get("last_answer") == "250" and ok.get("attempts") == "1",
                  "ok recipient: %r" % {k: ok.get(k) for k in ("status", "last_answer", "attempts")})
        # The second attempt of the 451 waited the capped backoff: >= 300 ms after the first, < 1 s (uncapped).
        try:
            gap = int(busy["sending_at"]) - int(busy["at"])
            res.fig("busy_retry_after_ms", gap)
            res.check(300 <= gap < 1000, "451 recipient: second attempt %d ms after the notification, want 300 "
                      "(mail_retry_max_ms) to 1000 (the uncapped first backoff)" % gap)
        except (KeyError, ValueError):
            res.check(False, "451 recipient: no sending_at/at: %r" % busy)
        r = cl.redis()
        res.check(set(r.zrange(cl.key("mail:sending:failed"), 0, -1)) == {nid["reject"], nid["busy"]},
                  "mail:sending:failed = %s" % r.zrange(cl.key("mail:sending:failed"), 0, -1))
        _, d, _ = run(cl, res, "notification", "list", "--status", "failed")
        rows = (d or {}).get("notifications") or []
        res.check(d and d.get("count") == 2 and sorted(x.get("id") for x in rows) == sorted([nid["reject"], nid["busy"]])
                  and all(x.get("status") == "failed" and x.get("channel") == "email" for x in rows),
                  "notification list --status failed: %r, want exactly %s and %s" % (d, nid["reject"], nid["busy"]))
        for x in rows:
            want = rej if x.get("id") == nid["reject"] else busy
            res.check(x.get("last_answer") == want.get("last_answer") and x.get("attempts") == want.get("attempts")
                      and x.get("recipient") == want.get("recipient"),
                      "notification list row %r differs from Redis %r" % (x, want))

        # Operator retry of the 550 one: queued again, attempts reset, fails again.
        _, d, _ = run(cl, res, "notification", "retry", nid["reject"])
        res.check(d == {"id": nid["reject"], "status": "queued"}, "notification retry answered %r, want "
                  "{id, status: queued}" % d)
        res.check(nid["reject"] not in r.zrange(cl.key("mail:sending:failed"), 0, -1) or
                  r.hget(cl.key("notif:" + nid["reject"]), "status") == "failed",
                  "the retried e-mail is still in mail:sending:failed while not failed")
        harness.wait_until(lambda: r.hget(cl.key("notif:" + nid["reject"]), "status") == "failed"
                           and r.hget(cl.key("notif:" + nid["reject"]), "attempts") == "1", 10, 0.05)
        again = r.hgetall(cl.key("notif:" + nid["reject"]))
        res.check(again.get("status") == "failed" and again.get("attempts") == "1" and "550" in again.get("last_answer", ""),
                  "retried 550 e-mail: status %r attempts %r last_answer %r, want failed again after 1 attempt" % (
                      again.get("status"), again.get("attempts"), again.get("last_answer")))
        _, d, _ = run(cl, res, "notification", "list", "--status", "failed")
        res.check(d and sorted(x.get("id") for x in d.get("notifications") or []) == sorted([nid["reject"], nid["busy"]]),
                  "after the retry, notification list --status failed: %r" % d)
        # Refusals: a sent e-mail, an SMS, an unknown id; no id at all is a usage error.
        _, _, err = run(cl, res, "notification", "retry", nid["ok"], want=2)
        res.check("sent" in err, "retry of a sent e-mail: stderr %r does not say it is sent" % err.strip())
        run(cl, res, "notification", "retry", sms_id, want=2)
        run(cl, res, "notification", "retry", "T-2026-999999:ticket_received:email:1", want=3)
        run(cl, res, "notification", "retry", want=1)
        res.check(r.hget(cl.key("notif:" + nid["ok"]), "status") == "sent", "a refused retry changed the sent e-mail")
        res.check(not r.exists(cl.key("notif:T-2026-999999:ticket_received:email:1")),
                  "a retry of an unknown id created it")
        mids = [peer_ids(raw) for _, raw, _ in peer.messages()]
        res.check(mids == [message_id(nid["ok"], "sav.example")], "peer messages %s, want only %s's" % (mids, nid["ok"]))

        # SMTP down.
        peer.stop()
        cl.restart_service("notification", env={"SAV_NOTIFICATION_MAIL_MAX_ATTEMPTS": "1000"})
        down = []
        for i in range(3):
            cid = add_customer(cl, res, "Denise Panne %d" % i, "down%d@example.fr" % i, lang="en" if i % 2 else "fr")
            if not (cid and add_product(cl, res, "SN-DOWN-%d" % i, cid)):
                return res
            t = open_ticket(cl, res, cid, "SN-DOWN-%d" % i)
            if t:
                down.append("%s:ticket_received:email:1" % t)
        if not res.check(len(down) == 3, "tickets not opened while SMTP is down"):
            return res
        harness.wait_until(lambda: all(int(h.get("attempts") or 0) >= 3 for h in notif_hashes(cl, down).values()),
                           15, 0.05)
        seen = collections.Counter()
        t_end = time.monotonic() + 1.5  # watch them for a while: queued or being tried, never sent nor failed
        while time.monotonic() < t_end:
            for h in notif_hashes(cl, down).values():
                seen[h.get("status")] += 1
            time.sleep(0.05)
        res.fig("down_statuses_seen", dict(seen))
        res.check(set(seen) <= {"queued", "sending"}, "while SMTP is down, statuses seen %s, want queued/sending only"
                  % dict(seen))
        hs = notif_hashes(cl, down)
        for k, h in sorted(hs.items()):
            res.check(int(h.get("attempts") or 0) >= 3 and (h.get("last_answer") or "").startswith("Couldn't connect"),
                      "%s while SMTP is down: attempts %r last_answer %r, want >= 3 and \"Couldn't connect...\"" % (
                          k, h.get("attempts"), h.get("last_answer")))
        res.fig("down_attempts", ",".join(str(h.get("attempts")) for _, h in sorted(hs.items())))
        res.fig("down_last_answer", next(iter(hs.values())).get("last_answer"))
        listed = None
        for _ in range(5):  # an e-mail being tried at that very moment is "sending": look again
            _, d, _ = run(cl, res, "notification", "list", "--status", "queued")
            listed = sorted(x.get("id") for x in (d or {}).get("notifications") or [])
            if listed == sorted(down):
                break
            time.sleep(0.05)
        res.check(listed == sorted(down), "notification list --status queued during the outage: %s, want %s" % (
            listed, sorted(down)))
        queued_one = [k for k, h in hs.items() if h.get("status") == "queued"]
        if queued_one:
            run(cl, res, "notification", "retry", queued_one[0], want=2)
        # SMTP back (new folder: the Recorder numbers files from 1 again).
        peer2 = SmtpPeer(cl, os.path.join(cl.dir, "smtp-2"), port=peer.port).start()
        t0 = time.monotonic()
        st = wait_statuses(cl, down, ("sent", "failed"), 15)
        res.fig("resume_seconds", round(time.monotonic() - t0, 2))
        res.check(all(s == "sent" for s in st.values()), "after SMTP came back: %s, want all sent" % st)
        time.sleep(0.5)  # anything sent twice would arrive now
        got = collections.Counter(peer_ids(raw) for _, raw, _ in peer2.messages())
        want = collections.Counter(message_id(k, "sav.example") for k in down)
        res.check(got == want, "peer after the outage received %s, want each of %s once" % (dict(got), sorted(want)))
        res.check(peer2.connections() <= 2, "%d connections after the outage for 3 messages" % peer2.connections())
        for k, h in notif_hashes(cl, down).items():
            res.check(h.get("last_answer") == "250" and not h.get("resent_after_crash"),
                      "%s after the outage: last_answer %r resent_after_crash %r" % (
                          k, h.get("last_answer"), h.get("resent_after_crash")))
        res.check(r.zcard(cl.key("mail:queue")) == 0 and r.zcard(cl.key("mail:sending")) == 0,
                  "mail:queue %d, mail:sending %d at the end, want 0" % (r.zcard(cl.key("mail:queue")),
                                                                        r.zcard(cl.key("mail:sending"))))

        # smtp_tls = starttls and a server without STARTTLS: refused, never sent in clear.
        cl.restart_service("notification", env={"SAV_NOTIFICATION_SMTP_TLS": "starttls"})
        cid = add_customer(cl, res, "Théo Chiffré", "theo@example.fr")
        if cid and add_product(cl, res, "SN-TLS", cid):
            t = open_ticket(cl, res, cid, "SN-TLS")
            tls = "%s:ticket_received:email:1" % t
            wait_statuses(cl, [tls], ("sent", "failed"), 15)
            h = notif_hashes(cl, [tls])[tls]
            res.fig("starttls_missing", "%s/%r" % (h.get("status"), h.get("last_answer")))
            res.check(h.get("status") == "failed" and h.get("last_answer"),
                      "STARTTLS required, server without it: status %r last_answer %r, want failed with a reason" % (
                          h.get("status"), h.get("last_answer")))
            time.sleep(0.2)
            res.check(not [1 for _, raw, _ in peer2.messages() if peer_ids(raw) == message_id(tls, "sav.example")],
                      "STARTTLS required but the message was sent in clear")
        return res
    finally:
        peer.stop()
        if peer2:
            peer2.stop()


# ---------------------------------------------------------------- test 3: crash

CRASH_CUSTOMERS = 20
CRASH_PRODUCTS = 5  # per customer: 100 tickets, 100 e-mails
CRASH_MIN_KILLS = 8


def test_email_crash(cl):
    """mail_stale_ms = 1000: 100 tickets (100 e-mails) opened while sav-notification is SIGKILLed and restarted
    again and again (at random moments, several of them right after a restart, when the backlog is being sent).
    At the end every e-mail notification is sent, mail:queue and mail:sending are empty, outboxes drained, no
    dead letter; at the peer no Message-ID is missing, none is unexpected, and the duplicates (messages beyond one
    per Message-ID) are at most the sum of resent_after_crash, and for each Message-ID at most that notification's
    resent_after_crash (the documented window). Figures: kills, duplicates, resent_after_crash."""
    res = Result()
    seed = int(os.environ.get("SAV_TEST_SEED") or random.randrange(1 << 30))
    rnd = random.Random(seed)
    res.fig("seed", seed)
    peer = SmtpPeer(cl, os.path.join(cl.dir, "smtp"))
    try:
        peer.start()
        smtp_config(cl, peer.port, mail_stale_ms=1000, mail_retry_max_ms=500)
        cl.start_all()
        cl.kill_service("notification")  # the loop below starts it and kills it again and again
        custs = []

        def reg(i):
            cid = add_customer(cl, res, "Crash Client %02d" % i if i % 2 else "Cécile Crash %02d" % i,
                               "crash%02d@example.fr" % i, lang="en" if i % 2 else "fr")
            serials = []
            for j in range(CRASH_PRODUCTS):
                sn = "SN-CRASH-%02d-%d" % (i, j)
                if cid and add_product(cl, res, sn, cid):
                    serials.append(sn)
            return cid, serials
        for cid, serials in pmap(reg, range(CRASH_CUSTOMERS)):
            custs += [(cid, sn) for sn in serials]
        if not res.check(len(custs) == CRASH_CUSTOMERS * CRASH_PRODUCTS, "only %d products registered" % len(custs)):
            return res
        rnd.shuffle(custs)
        tids = []
        lock = threading.Lock()

        def open_all():
            def one(cs):
                t = open_ticket(cl, res, cs[0], cs[1])
                with lock:
                    tids.append(t)
                time.sleep(rnd.uniform(0.04, 0.1))  # spread the openings over several kills
            pmap(one, custs, workers=2)
        opener = threading.Thread(target=open_all, daemon=True)
        t0 = time.monotonic()
        opener.start()
        kills = caught_sending = 0
        deadline = time.monotonic() + 60
        sending_key = cl.key("mail:sending")
        r = cl.redis()
        while (opener.is_alive() or kills < CRASH_MIN_KILLS) and time.monotonic() < deadline:
            # Down for a moment (events pile up in the outboxes), then up: the backlog is recorded and sent in a
            # burst; the kill comes as soon as the sender has claimed e-mails, i.e. while it is sending them.
            time.sleep(rnd.uniform(0.1, 0.5))
            cl.start_service("notification")
            claimed = harness.wait_until(lambda: r.zcard(sending_key) > 0, 3, 0.001)
            if claimed:
                caught_sending += 1
                time.sleep(rnd.uniform(0, 0.02))
            cl.kill_service("notification")
            kills += 1
        cl.start_service("notification")
        cl.wait_service("notification", 30)
        opener.join(timeout=60)
        res.check(not opener.is_alive(), "ticket openings still running after 60 s")
        res.fig("kills", kills)
        res.fig("kills_while_sending", caught_sending)
        res.fig("tickets", len([t for t in tids if t]))
        if not res.check(len(tids) == len(custs) and all(tids), "%d of %d tickets opened" % (
                len([t for t in tids if t]), len(custs))):
            return res
        expected = {"%s:ticket_received:email:1" % t for t in tids}
        r = cl.redis()

        def done():
            en = email_notifs(cl)
            return set(en) >= expected and all(v.get("status") == "sent" for v in en.values())
        harness.wait_until(done, 60, 0.2)
        res.fig("seconds", round(time.monotonic() - t0, 1))
        notifs = email_notifs(cl)
        statuses = collections.Counter(v.get("status") for v in notifs.values())
        res.fig("status", dict(statuses))
        res.check(set(notifs) == expected, "e-mail notifications: %d missing %s, %d unexpected" % (
            len(expected - set(notifs)), sorted(expected - set(notifs))[:3], len(set(notifs) - expected)))
        res.check(statuses == collections.Counter({"sent": len(expected)}),
                  "statuses %s, want all %d sent" % (dict(statuses), len(expected)))
        res.check(r.zcard(cl.key("mail:queue")) == 0 and r.zcard(cl.key("mail:sending")) == 0
                  and r.zcard(cl.key("mail:sending:failed")) == 0,
                  "mail:queue %d, mail:sending %d, mail:sending:failed %d, want 0" % (
                      r.zcard(cl.key("mail:queue")), r.zcard(cl.key("mail:sending")),
                      r.zcard(cl.key("mail:sending:failed"))))
        time.sleep(0.5)  # a late duplicate would arrive now
        got = collections.Counter(peer_ids(raw) for _, raw, _ in peer.messages())
        want = {message_id(k, "sav.example"): k for k in expected}
        missing = sorted(set(want) - set(got))
        unexpected = sorted(set(got) - set(want))
        duplicates = sum(c - 1 for c in got.values() if c > 1)
        resent = {k: int(v.get("resent_after_crash") or 0) for k, v in notifs.items()}
        resent_sum = sum(resent.values())
        res.fig("emails", len(expected))
        res.fig("peer_messages", sum(got.values()))
        res.fig("missing", len(missing))
        res.fig("duplicates", duplicates)
        res.fig("resent_after_crash", resent_sum)
        res.fig("attempts_max", max(int(v.get("attempts") or 0) for v in notifs.values()) if notifs else 0)
        res.fig("smtp_connections", peer.connections())
        res.check(not missing, "%d e-mail(s) never reached the peer: %s" % (len(missing), missing[:5]))
        res.check(not unexpected, "unexpected Message-IDs at the peer: %s" % unexpected[:5])
        res.check(duplicates <= resent_sum, "%d duplicate message(s) but resent_after_crash sums to %d: duplicates "
                  "outside the documented window" % (duplicates, resent_sum))
        for mid, c in sorted(got.items()):
            nid = want.get(mid)
            if nid and c > 1:
                res.check(c - 1 <= resent[nid], "%s received %d times but resent_after_crash = %d" % (
                    nid, c, resent[nid]))
        # Everything else of the pipeline went through too.
        ob = {o: r.xlen(cl.key(o)) for o in ("outbox:diagnostics", "outbox:billing", "outbox:notification")}
        harness.wait_until(lambda: not any(r.xlen(cl.key(o)) for o in ob), 10, 0.1)
        ob = {o: r.xlen(cl.key(o)) for o in ob}
        res.check(not any(ob.values()), "outboxes not drained: %s" % ob)
        dead = r.xlen(cl.key("deadletter"))
        res.check(dead == 0, "%d dead letter(s)" % dead)
        return res
    finally:
        peer.stop()


# ---------------------------------------------------------------- test 4: graceful stop

def test_email_graceful_stop(cl):
    """A graceful stop (SIGTERM, as at every deploy) while the sender holds a claimed batch, with the default
    mail_stale_ms (60 s). To stop it mid-batch for sure, the SMTP peer is frozen (SIGSTOP: connections are accepted
    by the kernel, no greeting comes; smtp_timeout_ms = 2000) once 40 e-mails are queued, and sav-notification is
    stopped as soon as it has claimed a batch of at least 2. It must exit 0; once the peer is thawed and the
    service restarted, every e-mail is sent within 10 s (none left "sending" until the stale delay), exactly once,
    and resent_after_crash stays 0 (nothing crashed)."""
    res = Result()
    peer = SmtpPeer(cl, os.path.join(cl.dir, "smtp"))
    frozen = False
    try:
        peer.start()
        smtp_config(cl, peer.port, smtp_timeout_ms=2000, mail_retry_max_ms=200)
        cl.start_all()
        cid = add_customer(cl, res, "Gérard Arrêt", "gerard@example.fr")
        sns = ["SN-STOP-%02d" % i for i in range(40)]
        if not res.check(cid and all(pmap(lambda sn: add_product(cl, res, sn, cid), sns)), "registration failed"):
            return res
        cl.stop_service("notification")  # the events wait in the outboxes: a backlog when it comes back
        tids = pmap(lambda sn: open_ticket(cl, res, cid, sn), sns)
        if not res.check(all(tids), "tickets not opened"):
            return res
        ids = ["%s:ticket_received:email:1" % t for t in tids]
        r = cl.redis()
        os.kill(peer.proc.pid, signal.SIGSTOP)
        frozen = True
        cl.start_service("notification")
        claimed = harness.wait_until(lambda: r.zcard(cl.key("mail:sending")) >= 2, 20, 0.005)
        res.fig("claimed_batch", r.zcard(cl.key("mail:sending")))
        res.check(claimed, "no batch of 2 or more e-mails claimed within 20 s (queue %d)" % r.zcard(cl.key("mail:queue")))
        t0 = time.monotonic()
        code = cl.stop_service("notification")
        res.fig("stop_seconds", round(time.monotonic() - t0, 1))
        res.check(code == 0, "sav-notification exit %r on SIGTERM, want 0" % code)
        left = r.zcard(cl.key("mail:sending"))
        res.fig("left_sending_after_stop", left)
        os.kill(peer.proc.pid, signal.SIGCONT)
        frozen = False
        cl.start_service("notification")
        cl.wait_service("notification")
        t0 = time.monotonic()
        st = wait_statuses(cl, ids, ("sent", "failed"), 10)
        res.fig("seconds_to_all_sent", round(time.monotonic() - t0, 1))
        counts = collections.Counter(st.get(i) for i in ids)
        res.fig("status", dict(counts))
        res.check(counts == collections.Counter({"sent": len(ids)}),
                  "10 s after the restart: %s, want all %d sent (the SIGTERM left %d claimed e-mails 'sending': they "
                  "wait for mail_stale_ms = 60 s)" % (dict(counts), len(ids), left))
        hs = notif_hashes(cl, ids)
        resent = sum(int(h.get("resent_after_crash") or 0) for h in hs.values())
        res.fig("resent_after_crash", resent)
        res.check(resent == 0, "resent_after_crash sums to %d after a graceful stop (no crash)" % resent)
        time.sleep(0.3)
        got = collections.Counter(peer_ids(raw) for _, raw, _ in peer.messages())
        want = collections.Counter(message_id(i, "sav.example") for i in ids)
        res.check(got == want, "the peer got %d messages for %d e-mails: missing %s, more than once %s" % (
            sum(got.values()), len(ids), sorted(set(want) - set(got))[:3],
            sorted(k for k, c in got.items() if c > 1)[:3]))
        return res
    finally:
        if frozen and peer.proc:
            try:
                os.kill(peer.proc.pid, signal.SIGCONT)
            except OSError:
                pass
        peer.stop()


def test_email_redis_restart(cl):
    """Redis SIGKILLed while the SMTP server takes its time over a message (1.5 s), restarted 2 s later, past
    mail_stale_ms: the server's acceptance comes while Redis is away. The sender must confirm it once Redis is
    back (the claim still its own), not leave it to go stale: the e-mail is sent once, resent_after_crash 0."""
    res = Result()
    peer = SmtpPeer(cl, os.path.join(cl.dir, "smtp"))
    try:
        peer.start()
        smtp_config(cl, peer.port, mail_stale_ms=1000, mail_retry_max_ms=500)
        cl.start_all()
        cid = add_customer(cl, res, "Lente Cliente", "slow.client@example.fr")
        if not (cid and add_product(cl, res, "SN-SLOW-1", cid)):
            return res
        tid = open_ticket(cl, res, cid, "SN-SLOW-1")
        nid = "%s:ticket_received:email:1" % tid
        r = cl.redis()
        res.check(harness.wait_until(lambda: r.zscore(cl.key("mail:sending"), nid) is not None, 15, 0.01),
                  "%s never claimed" % nid)
        time.sleep(0.5)
        cl.kill_redis()
        time.sleep(2.0)
        cl.start_redis()
        statuses = wait_statuses(cl, [nid], ("sent", "failed"), 20)
        time.sleep(2.5)  # a copy sent again would have reached the server by now
        n = notif_hashes(cl, [nid])[nid]
        got = [peer_ids(raw) for _, raw, _ in peer.messages()]
        res.fig("status", statuses.get(nid))
        res.fig("copies", got.count(message_id(nid, "sav.example")))
        res.fig("resent_after_crash", n.get("resent_after_crash"))
        res.check(n.get("status") == "sent" and got == [message_id(nid, "sav.example")],
                  "%s: status %r, the server received %s, want it sent once" % (nid, n.get("status"), got))
        res.check(int(n.get("resent_after_crash") or 0) == 0, "%s: resent_after_crash %r, want 0" % (
            nid, n.get("resent_after_crash")))
        return res
    finally:
        peer.stop()


def test_email_server_dies(cl):
    """The SMTP server keeps a message and dies before its final answer (a "vanish" recipient): the sender sees no
    answer to a message it handed over whole, retries once a server is back, and the customer gets two copies,
    the documented second window; counted: resent_after_crash 1."""
    res = Result()
    peer = SmtpPeer(cl, os.path.join(cl.dir, "smtp"))
    try:
        peer.start()
        smtp_config(cl, peer.port, mail_retry_max_ms=500)
        cl.start_all()
        cid = add_customer(cl, res, "Vanessa Vanish", "vanish.client@example.fr")
        if not (cid and add_product(cl, res, "SN-VANISH-1", cid)):
            return res
        tid = open_ticket(cl, res, cid, "SN-VANISH-1")
        nid = "%s:ticket_received:email:1" % tid
        died = harness.wait_until(lambda: peer.proc.poll() is not None, 15, 0.01)
        res.check(died and peer.proc.returncode == 3, "the SMTP server did not die after keeping the message (exit %s)"
                  % peer.proc.poll())
        peer.stop()
        peer.start()  # the same folder: its messages are numbered after the first copy
        statuses = wait_statuses(cl, [nid], ("sent", "failed"), 20)
        n = notif_hashes(cl, [nid])[nid]
        got = [peer_ids(raw) for _, raw, _ in peer.messages()]
        res.fig("status", statuses.get(nid))
        res.fig("copies", len(got))
        res.fig("resent_after_crash", n.get("resent_after_crash"))
        res.check(n.get("status") == "sent" and got == [message_id(nid, "sav.example")] * 2,
                  "%s: status %r, the server kept %s, want two copies of it" % (nid, n.get("status"), got))
        res.check(n.get("resent_after_crash") == "1", "%s: resent_after_crash %r, want 1 (the copy the dead server "
                  "kept may be delivered)" % (nid, n.get("resent_after_crash")))
        return res
    finally:
        peer.stop()


TESTS = [
    ("email_delivery", test_email_delivery),
    ("email_failures", test_email_failures),
    ("email_crash", test_email_crash),
    ("email_graceful_stop", test_email_graceful_stop),
    ("email_redis_restart", test_email_redis_restart),
    ("email_server_dies", test_email_server_dies),
]


# ---------------------------------------------------------------- standalone

if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
