#!/usr/bin/python3
"""SAV system tests of SMS delivery over SMPP 3.4 (sav-notification's SMSC client, services/notification/smsc.c and
common/smpp.c, with the sms_claim / sms_done / sms_receipt Functions of common/redis/sav.lua) against a real SMSC:
tests/system/smsc_peer.pl (Net::SMPP, Debian libnet-smpp-perl), started by each test on a free 127.0.0.1 port and
stopped at its end. The peer writes every PDU it receives and sends as one JSON line; the tests read that log and
Redis, never the client's internals.

Usage: /usr/bin/python3 tests/system/sms_tests.py --bin build/bin [--only NAME[,NAME...]] [--keep]

Standalone it prints one PASS/FAIL line per test with its figures (and, on failure, the problems and the tail of
every log, the peer's included) and ends with "N passed, N failed"; it exits 1 if any test failed. Each TESTS entry
is (name, function(cluster) -> Result), the cluster created but not started, as in tests/system/run.py.

What is checked (keys under sav:{s0}:; the rules are /work/shared/design/notifications.md):
- smsc_peer_selftest: the peer alone, driven by a small SMPP client written here (struct.pack): binds (0x0E on a
  wrong password), submit before bind (0x04), enquire_link, --throttle, --fail-dest, --delay-ms with
  --window-log, --receipts (TLVs 0x001E and 0x0427), --receipt-first and --receipt-text-only, --drop-after,
  --mo-stop, redelivery of an unanswered receipt, the JSON log and a clean exit on SIGTERM.
- sms_delivery: 10 fr/en customers, 3 of them billable (the estimate puts a no-break space in the French SMS,
  UCS-2, and a euro sign, a GSM-7 escape, in the English one), three centres (the Bordeaux one makes a 2-part
  GSM-7 pickup SMS, the Paris one a 1-part French one), a French complaint acknowledgement ("reçu": UCS-2, 2
  parts). Every SMS notification ends delivered (one attempt, sent_at, message_ids), a long one not before the
  receipt of its last part; every submit_sm is checked: data_coding 0 exactly when every character is in GSM
  03.38 (against a table written here, and against the notification's sms_coding), septets unpacked (one per octet, as common/smpp.h says) and decoding
  back to the body, UCS-2 big-endian without BOM decoding back, esm_class 0x40 and UDH 05 00 03 ref total seq on
  every part of a long message (ref shared by the parts, different between a recipient's long messages), parts
  cut at 153 septets / 67 UCS-2 units without splitting an escape or surrogate pair, registered_delivery 1 on
  every part, source SAV (TON 5), destination the E.164 digits (TON 1 NPI 1), at most 140 octets; one OK submit
  per part; every receipt answered; the bind (bind_transceiver, system_id sav, the password, version 0x34);
  enquire_link sent when idle and ours answered; at most smpp_tps submit_sm in any second; the default
  smpp_password. Then the same with --receipt-first and with --receipt-first --receipt-text-only (decimal ids
  with leading zeros in the text, hex ids in the submit_sm_resp). `notification list --status delivered` agrees.
- sms_errors: SMS queued while the SMSC is down (status queued), then --throttle 3 --fail-dest: throttled parts
  re-submitted after a backoff and delivered, the order of submit_sm per recipient is the order of the
  notifications, the refused recipient's SMS failed once each (no retry of a permanent error) with a reason
  naming 0x0B, listed by `notification list --status failed`.
- sms_window_and_reconnect: smpp_window 5, 30 SMS queued then --delay-ms 200 without receipts: statuses go
  queued, sending, sent; at most 5 submit_sm outstanding (the peer's max_outstanding), `notification list
  --status sent` agrees. Then --drop-after 7 with --delay-ms 50: the client binds again and every SMS is
  delivered, each part accepted exactly once; parts sent again because the drop lost their response are allowed
  and counted. Then --drop-after 2 on a queue of 2-part messages answered at once: the link breaks right after the
  first part of a message was accepted; that part must not be accepted twice, also when the SMSC then refuses
  two binds (--refuse-binds 2: away for a while, as when it restarts).
- sms_stop: MO "STOP" deliver_sm from three customers' phones (as 336..., +336... and the national 06...) sets their consent_marketing
  to 0 (a third customer keeps 1, consent_sms stays); the MO is answered; a service SMS to a customer who said
  STOP still goes.
- sms_crash: SIGKILL of sav-notification while SMS are being submitted (answers 150 ms late), restart: every
  SMS delivered; parts the SMSC accepted twice (the documented duplicate window) are reported, bounded by twice
  the window, and counted in the notification's resent_after_crash.
- sms_smsc_crash: the SMSC sends a receipt and an acceptance, then resets the link and dies (--crash-after): the
  failed answer to the receipt must not lose the acceptance; with another SMSC up, nothing is submitted again.
- sms_rate_cap: smpp_tps 400 (a whole-millisecond interval between parts would let 500/s through) with one SMS to
  each of 1,500 customers queued while the SMSC is away: once it binds, at most 400 submit_sm (with a fiftieth of
  a second's burst) go in any second, and at least 90% of that on average: the cap neither leaks nor starves.
- sms_stale_claim_settled: the Functions alone: an SMS whose claim went stale (and was queued again) while its
  sender held it, as when Redis restarts, is settled by the sender's "sent": out of the queue, not resent.
Every test ends as in run.py: no service died on its own, all exit 0 on SIGTERM, no sanitizer report in a log.
"""

import bisect
import collections
import datetime
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from zoneinfo import ZoneInfo

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
SYSTEST_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, SYSTEST_DIR)
import fixtures  # noqa: E402
import harness  # noqa: E402
from fixtures import Result, pmap  # noqa: E402
from harness import HarnessError  # noqa: E402

PERL = shutil.which("perl") or "/usr/bin/perl"
PEER_SCRIPT = os.path.join(SYSTEST_DIR, "smsc_peer.pl")
PARIS = ZoneInfo("Europe/Paris")
WORKERS = 4        # parallel savctl invocations
PASSWORD = "secret"
SOURCE = "SAV"
FIRST_ID = 6699    # the peer's first message id: 0x1A2B
FINAL = ("delivered", "failed", "undelivered")


# ---------------------------------------------------------------- results

def today(offset_days=0):
    return (datetime.datetime.now(PARIS) + datetime.timedelta(days=offset_days)).date()


# ---------------------------------------------------------------- GSM 03.38, written here independently of gsm.c

GSM_BASIC = ("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
             "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|",
           0x65: "€"}
assert len(GSM_BASIC) == 128
GSM_CODE = {ch: i for i, ch in enumerate(GSM_BASIC) if i != 0x1B}
GSM_EXT_CODE = {ch: s for s, ch in GSM_EXT.items()}


def gsm_units(text):
    """[[septet, ...] per character] if every character is in GSM 03.38 (extension characters: escape + septet),
    else None."""
    out = []
    for ch in text:
        if ch in GSM_CODE:
            out.append([GSM_CODE[ch]])
        elif ch in GSM_EXT_CODE:
            out.append([0x1B, GSM_EXT_CODE[ch]])
        else:
            return None
    return out


def ucs2_units(text):
    """[[utf-16 code unit, ...] per character]: a character outside the BMP is a surrogate pair."""
    out = []
    for ch in text:
        b = ch.encode("utf-16-be")
        out.append([int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2)])
    return out


def split_units(chars, single, multi):
    """Cuts characters (lists of units) into parts: all in one if they fit `single` units, else `multi` per part,
    a character's units never split. Returns [[unit, ...] per part]."""
    total = sum(len(c) for c in chars)
    room = single if total <= single else multi
    parts, cur = [], []
    for c in chars:
        if len(cur) + len(c) > room:
            parts.append(cur)
            cur = []
        cur.extend(c)
    parts.append(cur)
    return parts


def expected_parts(body):
    """(data_coding, [text of each part]) as a correct sender cuts this body."""
    g = gsm_units(body)
    if g is not None:
        parts = split_units(g, 160, 153)
        return 0, [septets_text(p) for p in parts]
    parts = split_units(ucs2_units(body), 70, 67)
    return 8, [b"".join(u.to_bytes(2, "big") for u in p).decode("utf-16-be") for p in parts]


def septets_text(septets):
    out, esc = [], False
    for s in septets:
        if esc:
            out.append(GSM_EXT.get(s, "\ufffd"))
            esc = False
        elif s == 0x1B:
            esc = True
        else:
            out.append(GSM_BASIC[s])
    if esc:
        out.append("\ufffd")  # an escape cut from its character
    return "".join(out)


def gsm_pack(septets, fill_bits=0):
    """Packs septets (GSM 03.38 section 6.1.2.1.1), after fill_bits zero bits."""
    acc, nbits, out = 0, fill_bits, bytearray()
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def gsm_unpack(data, fill_bits=0):
    """Unpacks every whole septet of data after fill_bits bits."""
    n = (len(data) * 8 - fill_bits) // 7
    v = int.from_bytes(data, "little")
    return [(v >> (fill_bits + 7 * i)) & 0x7F for i in range(n)]


def decode_submit(rec):
    """Reads one logged submit_sm: {"dc", "esm", "udh": (ref, total, seq) or None, "udh_raw", "texts":
    [(text, how)] candidates, "bad": [reasons the PDU is malformed]}. GSM-7 is read as packed septets (how
    "packed"; a text of 8n septets may end with a fill septet, so without it as well) and, when every octet is
    below 0x80, as unpacked septets one per octet (how "unpacked")."""
    sm = bytes.fromhex(rec.get("short_message_hex") or "")
    out = {"dc": rec.get("data_coding"), "esm": rec.get("esm_class"), "udh": None, "udh_raw": "", "texts": [],
           "bad": [], "octets": len(sm)}
    off = 0
    if (rec.get("esm_class") or 0) & 0x40:
        if not sm or sm[0] + 1 > len(sm):
            out["bad"].append("esm_class 0x40 but no UDH in %s" % sm.hex())
            return out
        udhl = sm[0]
        udh = sm[1:1 + udhl]
        out["udh_raw"] = sm[:1 + udhl].hex()
        if udhl == 5 and udh[0] == 0 and udh[1] == 3:
            out["udh"] = (udh[2], udh[3], udh[4])
        else:
            out["bad"].append("UDH %s, want 05 00 03 ref total seq" % sm[:1 + udhl].hex(" "))
        off = 1 + udhl
    payload = sm[off:]
    if out["dc"] == 8:
        if len(payload) % 2:
            out["bad"].append("UCS-2 payload of odd length %d" % len(payload))
        if payload[:2] in (b"\xfe\xff", b"\xff\xfe"):
            out["bad"].append("UCS-2 payload starts with a BOM")
        try:
            out["texts"].append((payload.decode("utf-16-be"), "ucs2"))
        except UnicodeDecodeError as e:
            out["bad"].append("UCS-2 payload does not decode: %s" % e)
    elif out["dc"] == 0:
        # Septets are packed from the first bit of the user data; after a UDH of off octets, fill bits bring the
        # text to a septet boundary: skip the septets the UDH and its fill occupy.
        skip = (off * 8 + 6) // 7
        sept = gsm_unpack(sm, 0)[skip:]
        out["texts"].append((septets_text(sept), "packed"))
        if sept and sept[-1] in (0x00, 0x0D):
            out["texts"].append((septets_text(sept[:-1]), "packed"))
        if all(b < 0x80 for b in payload):
            out["texts"].append((septets_text(list(payload)), "unpacked"))
    else:
        out["bad"].append("data_coding %r, want 0 or 8" % out["dc"])
    return out


# ---------------------------------------------------------------- the SMSC peer

class SmscPeer:
    """tests/system/smsc_peer.pl on 127.0.0.1:port writing its JSON log to `log`. Only this object's own process is
    ever signalled (by its pid)."""

    started = collections.Counter()  # peers started per cluster directory

    def __init__(self, cl, name, port=None, logs=None):
        self.cl, self.name = cl, name
        self.port = port or harness.free_ports(1)[0]
        base = cl.dir if cl is not None else (logs or "/tmp")
        self.log = os.path.join(base, "smsc-%s.jsonl" % name)
        self.stderr = os.path.join(base, "smsc-%s.log" % name)
        self.proc = None
        self.args = []

    def start(self, *args, timeout=15):
        # A real SMSC does not hand out the same message id twice within days: each peer of a test starts its
        # counter 4096 further (0x1A2B, 0x2A2B, ...: hex ids that always hold a letter).
        k = SmscPeer.started[self.cl.dir if self.cl is not None else ""]
        SmscPeer.started[self.cl.dir if self.cl is not None else ""] += 1
        self.first_id = FIRST_ID + 4096 * k
        self.args = [str(a) for a in args]
        argv = [PERL, PEER_SCRIPT, "--port", str(self.port), "--log", self.log, "--first-id",
                str(self.first_id)] + self.args
        if harness.SETPRIV and threading.current_thread() is threading.main_thread():
            argv = [harness.SETPRIV, "--pdeathsig", "KILL", "--"] + argv
        if self.cl is not None:
            for p in (self.stderr, self.log):
                if p not in self.cl._logs:
                    self.cl._logs.append(p)
        with open(self.stderr, "ab") as f:
            f.write(("==== %s start: %s\n" % (time.strftime("%H:%M:%S"), " ".join(argv))).encode())
            f.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        harness._register(self.proc)
        deadline = time.monotonic() + timeout
        while not any(r.get("event") == "listening" for r in self.records()):
            if self.proc.poll() is not None:
                raise HarnessError("SMSC peer exited with %s:\n%s" % (self.proc.returncode,
                                                                     harness.tail_file(self.stderr)))
            if time.monotonic() > deadline:
                self.kill()
                raise HarnessError("SMSC peer did not listen on port %d within %ss" % (self.port, timeout))
            time.sleep(0.02)
        return self

    def stop(self, timeout=10):
        """SIGTERM (the peer writes its max_outstanding line and exits 0); returns the exit code."""
        p, self.proc = self.proc, None
        return None if p is None else harness.stop_process(p, signal.SIGTERM, timeout)

    def kill(self):
        p = self.proc
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(timeout=5)
        if p is not None:
            harness._unregister(p)
        self.proc = None

    def records(self):
        out = []
        try:
            with open(self.log, encoding="utf-8") as f:
                for line in f:
                    if line.endswith("\n"):
                        try:
                            out.append(json.loads(line))
                        except ValueError:
                            out.append({"_invalid": line[:200]})
        except OSError:
            pass
        return out

    def submits(self):
        return [r for r in self.records() if r.get("dir") == "in" and r.get("cmd") == "submit_sm"]

    def unanswered(self):
        """The message ids of receipts (and phones of MOs) sent and not answered by a deliver_sm_resp yet."""
        sent, answered = set(), set()
        for r in self.records():
            if r.get("dir") == "out" and r.get("cmd") == "deliver_sm":
                sent.add(r.get("message_id") or r.get("source_addr"))
            if r.get("dir") == "in" and r.get("cmd") == "deliver_sm_resp":
                answered.add(r.get("message_id") or r.get("phone"))
        return sent - answered

    def settle(self, timeout=3):
        """Waits (bounded) until every deliver_sm the peer sent is answered: the client records a receipt before it
        answers it, so a status read in Redis can be ahead of the peer's log."""
        return not harness.wait_until(lambda: not self.unanswered(), timeout, 0.05)


# ---------------------------------------------------------------- a small SMPP client (the peer's self-test)

def cstr(s):
    return (s.encode() if isinstance(s, str) else s) + b"\0"


class SmppClient:
    """A minimal ESME over a blocking socket: struct.pack of the PDUs, enough to drive the peer alone."""

    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.seq = 0
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, cmd, body=b"", status=0, seq=None):
        if seq is None:
            self.seq += 1
            seq = self.seq
        self.sock.sendall(struct.pack(">IIII", 16 + len(body), cmd, status, seq) + body)
        return seq

    def recv(self, timeout=3):
        """(cmd, status, seq, body), or None on timeout, or "eof"."""
        self.sock.settimeout(timeout)
        try:
            while len(self.buf) < 16 or len(self.buf) < struct.unpack(">I", self.buf[:4])[0]:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return "eof"
                self.buf += chunk
        except socket.timeout:
            return None
        except OSError:
            return "eof"
        n = struct.unpack(">I", self.buf[:4])[0]
        pdu, self.buf = self.buf[:n], self.buf[n:]
        cmd, status, seq = struct.unpack(">III", pdu[4:16])
        return cmd, status, seq, pdu[16:]

    def bind(self, system_id="sav", password=PASSWORD):
        return self.send(0x09, cstr(system_id) + cstr(password) + cstr("") + bytes([0x34, 0, 0]) + cstr(""))

    def submit(self, dest, sm, dc=0, esm=0, rd=1, src=SOURCE):
        body = (cstr("") + bytes([5, 0]) + cstr(src) + bytes([1, 1]) + cstr(dest) + bytes([esm, 0, 0]) + cstr("")
                + cstr("") + bytes([rd, 0, dc, 0, len(sm)]) + sm)
        return self.send(0x04, body)


def parse_deliver(body):
    """Decodes a deliver_sm body: {"source_addr", "dest_addr", "esm_class", "data_coding", "short_message",
    "tlvs": {tag: bytes}}."""
    def z(pos):
        end = body.index(b"\0", pos)
        return body[pos:end].decode("latin-1"), end + 1
    pos = z(0)[1]
    src, pos = z(pos + 2)
    dst, pos = z(pos + 2)
    esm = body[pos]
    pos += 3
    _, pos = z(pos)
    _, pos = z(pos)
    dc, sml = body[pos + 2], body[pos + 4]
    pos += 5
    sm = body[pos:pos + sml]
    pos += sml
    tlvs = {}
    while pos + 4 <= len(body):
        tag, ln = struct.unpack(">HH", body[pos:pos + 4])
        tlvs[tag] = body[pos + 4:pos + 4 + ln]
        pos += 4 + ln
    return {"source_addr": src, "dest_addr": dst, "esm_class": esm, "data_coding": dc, "short_message": sm,
            "tlvs": tlvs}


def recv_until(c, res, want_cmds, timeout=3, label=""):
    """Receives PDUs until one of want_cmds arrives; answers deliver_sm; returns (the PDUs seen in order, the
    wanted one or None)."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = c.recv(max(0.05, deadline - time.monotonic()))
        if p is None:
            break
        if p == "eof":
            seen.append(("eof",))
            return seen, "eof" if "eof" in want_cmds else None
        seen.append(p)
        if p[0] in want_cmds:
            return seen, p
    res.check(False, "%s: none of %s within %ss (got %s)" % (label, [hex(x) for x in want_cmds if x != "eof"],
                                                            timeout, [hex(x[0]) for x in seen if x != ("eof",)]))
    return seen, None


def test_smsc_peer_selftest(cl):
    """The peer alone, before trusting it with the C client (see the module doc)."""
    res = Result()
    os.makedirs(cl.dir, exist_ok=True)
    gsm = gsm_pack([GSM_CODE[ch] for ch in "Hello"])
    # 1. Binds, statuses, throttle, fail-dest, delay and window, receipts with TLVs, MO STOP.
    peer = SmscPeer(cl, "selftest1")
    try:
        peer.start("--throttle", 1, "--fail-dest", "+33600000009", "--delay-ms", 150, "--window-log", "--receipts",
                   "--mo-stop", "33611111111")
        c = SmppClient(peer.port)
        seq = c.submit("33600000001", gsm)
        _, p = recv_until(c, res, [0x80000004], label="submit before bind")
        res.check(p and p[1] == 0x04 and p[2] == seq, "submit_sm before bind: %r, want status 0x04" % (p,))
        c.bind(password="wrong")
        _, p = recv_until(c, res, [0x80000009], label="bind wrong password")
        res.check(p and p[1] == 0x0E, "bind with a wrong password: status %r, want 0x0E" % (p and p[1]))
        c.close()
        c = SmppClient(peer.port)
        c.bind()
        seen, p = recv_until(c, res, [0x80000009], label="bind")
        res.check(p and p[1] == 0, "bind: status %r, want 0" % (p and p[1]))
        _, mo = recv_until(c, res, [0x00000005], label="MO STOP")
        if mo:
            d = parse_deliver(mo[3])
            res.check(d["source_addr"] == "33611111111" and d["short_message"] == b"STOP" and d["esm_class"] == 0,
                      "MO: %r" % d)
            c.send(0x80000005, b"\0", seq=mo[2])
        c.send(0x15)
        _, p = recv_until(c, res, [0x80000015], label="enquire_link")
        t0 = time.monotonic()
        seqs = [c.submit("33600000001", gsm), c.submit("33600000002", gsm), c.submit("33600000009", gsm),
                c.submit("33600000003", gsm)]
        resps, receipts = {}, []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (len(resps) < 4 or len(receipts) < 2):
            p = c.recv(1)
            if p in (None, "eof"):
                break
            if p[0] == 0x80000004:
                resps[p[2]] = (p[1], p[3], time.monotonic() - t0)
            elif p[0] == 0x00000005:
                receipts.append((parse_deliver(p[3]), set(resps)))
                c.send(0x80000005, b"\0", seq=p[2])
        want = {seqs[0]: (0x58, b""), seqs[1]: (0, b"1A2B\0"), seqs[2]: (0x0B, b""), seqs[3]: (0, b"1A2C\0")}
        got = {s: v[:2] for s, v in resps.items()}
        res.check(got == want, "submit_sm_resp (status, body) %r, want %r" % (got, want))
        res.check(all(v[2] >= 0.13 for v in resps.values()), "--delay-ms 150: answers after %s s" % (
            [round(v[2], 3) for v in resps.values()]))
        res.check(len(receipts) == 2, "%d receipts, want 2" % len(receipts))
        for d, answered in receipts:
            mid = d["tlvs"].get(0x001E, b"")
            res.check(d["esm_class"] == 0x04 and d["tlvs"].get(0x0427) == b"\x02" and mid in (b"1A2B\0", b"1A2C\0")
                      and d["short_message"].startswith(b"id:" + mid[:-1] + b" sub:001 dlvrd:001 ")
                      and b" stat:DELIVRD err:000 text:" in d["short_message"],
                      "receipt %r" % d)
        c.send(0x06)
        _, p = recv_until(c, res, [0x80000006], label="unbind")
        c.close()
        rc = peer.stop()
        res.check(rc == 0, "peer exit %r on SIGTERM, want 0" % rc)
        recs = peer.records()
        mx = [r["max_outstanding"] for r in recs if "max_outstanding" in r and "event" not in r]
        res.check(mx == [4], "max_outstanding lines %r, want [4]" % mx)
        subs = [r for r in recs if r.get("cmd") == "submit_sm"]
        res.check(len(subs) == 5 and all(r.get("short_message_hex") == gsm.hex() and r.get("data_coding") == 0
                                         and r.get("registered_delivery") == 1 for r in subs),
                  "logged submit_sm: %r" % subs[:2])
        outs = collections.Counter(r.get("cmd") for r in recs if r.get("dir") == "out")
        ins = collections.Counter(r.get("cmd") for r in recs if r.get("dir") == "in")
        res.check(outs["submit_sm_resp"] == 5 and outs["deliver_sm"] == 3 and ins["deliver_sm_resp"] == 3
                  and ins["bind_transceiver"] == 2 and outs["enquire_link_resp"] == 1 and outs["unbind_resp"] == 1,
                  "log counts in %s out %s" % (dict(ins), dict(outs)))
        res.check(all(isinstance(r.get("t"), float) for r in recs), "every line has a float t")
    finally:
        peer.kill()
    # 2. Receipt first, text only (decimal id with leading zeros), drop after the 2nd submit, redelivery.
    peer = SmscPeer(cl, "selftest2")
    try:
        peer.start("--receipt-first", "--receipt-text-only", "--drop-after", 2, "--id-format", "hex")
        id1, id2 = ("%X" % peer.first_id).encode(), ("%X" % (peer.first_id + 1)).encode()
        text1 = ("id:%010d " % peer.first_id).encode()
        c = SmppClient(peer.port)
        c.bind()
        recv_until(c, res, [0x80000009], label="bind 2")
        s1 = c.submit("33600000001", gsm)
        first, p = recv_until(c, res, [0x80000004], label="submit 1")
        kinds = [x[0] for x in first]
        res.check(kinds == [0x00000005, 0x80000004], "receipt-first: PDUs %s, want deliver_sm then the resp" %
                  [hex(k) for k in kinds])
        if first and first[0][0] == 0x00000005:
            d = parse_deliver(first[0][3])
            res.check(not d["tlvs"] and d["short_message"].startswith(text1),
                      "text-only receipt %r, want no TLV and %r" % (d, text1))
            # Not answered: the peer must send it again after the next bind.
        res.check(p and p[2] == s1 and p[3] == id1 + b"\0", "resp %r, want %r" % (p, id1))
        c.submit("33600000002", gsm)
        _, p = recv_until(c, res, ["eof"], label="drop")
        res.check(p == "eof", "--drop-after 2: connection not closed")
        c.close()
        c = SmppClient(peer.port)
        c.bind()
        seen, p = recv_until(c, res, [0x00000005], label="redelivered receipt")
        if p:
            d = parse_deliver(p[3])
            res.check(d["short_message"].startswith(text1), "redelivered receipt %r" % d)
            c.send(0x80000005, b"\0", seq=p[2])
        c.submit("33600000003", gsm)
        _, p = recv_until(c, res, [0x80000004], label="submit 3")
        res.check(p and p[3] == id2 + b"\0", "after the drop: resp %r, want %r (the dropped submit got no id)" % (
            p, id2))
        c.close()
        res.check(peer.stop() == 0, "peer 2 exit code")
        recs = peer.records()
        res.check(any(r.get("event") == "drop" and r.get("n") == 2 for r in recs), "no drop line")
        res.check(any(r.get("kind") == "receipt" and r.get("redelivery") == 1 for r in recs), "no redelivery line")
    finally:
        peer.kill()
    res.fig("checks", "ok" if not res.problems else "%d problems" % len(res.problems))
    return res


# ---------------------------------------------------------------- the cluster, savctl, Redis

def sms_config(cl, port, **keys):
    """Rewrites the cluster's config: [notification] smpp_* pointing at the peer, short delays, plus keys."""
    kv = collections.OrderedDict([("smpp_host", "127.0.0.1"), ("smpp_port", port), ("smpp_password", cl.secret("smpp", PASSWORD)),
                                  ("smpp_enquire_ms", 1000), ("smpp_response_ms", 3000),
                                  ("sms_retry_max_ms", 1000), ("sms_quiet_hours", "off")])
    kv.update(keys)
    cl.write_config(cl.config, extra={"notification": [(k, str(v)) for k, v in kv.items()]})


def run(cl, res, *args, want=0):
    """savctl --json ARGS; records a problem unless it exits `want`. Returns the JSON (exit 0) or None."""
    try:
        r = cl.savctl(*args, json_out=True)
    except HarnessError as e:
        res.check(False, "savctl %s: %s" % (" ".join(map(str, args)), e))
        return None
    res.check(r.returncode == want, "savctl %s: exit %d, want %d (stderr %r)" % (
        " ".join(map(str, args)), r.returncode, want, r.stderr.strip()[:300]))
    if r.returncode != 0:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        res.check(False, "savctl %s printed invalid JSON: %r" % (" ".join(map(str, args)), r.stdout[:300]))
        return None


def phone_of(i):
    """(as typed, E.164) for customer i: French mobiles 06 20 .. .. .."""
    digits = "620%06d" % i
    return "0%s %s %s %s %s" % (digits[0], digits[1:3], digits[3:5], digits[5:7], digits[7:9]), "+33" + digits


class Unit:
    """One customer (phone only), their product and ticket."""

    def __init__(self, i, lang="fr", old=False, centre="PAR-01", consent=None):
        self.i, self.lang, self.old, self.centre, self.consent = i, lang, old, centre, consent
        self.phone, self.e164 = phone_of(i)
        self.cid = self.serial = self.tid = None


def register(cl, res, units, model="WM-7000"):
    """customer add, product add, ticket open for every unit (in parallel)."""
    def one(u):
        args = ["customer", "add", "--name", "Client %d" % u.i, "--phone", u.phone, "--lang", u.lang]
        if u.consent:
            args += ["--consent", u.consent]
        d = run(cl, res, *args)
        u.cid = (d or {}).get("id")
        if not u.cid:
            return
        open_for(cl, res, u, model)
    pmap(one, units)
    return all(u.tid for u in units)


def open_for(cl, res, u, model="WM-7000", suffix=""):
    """A new product of u's and a repair ticket on it (u.serial, u.tid)."""
    serial = "SN-SMS-%04d%s" % (u.i, suffix)
    delivered = today(-3000 if u.old else -150)
    d = run(cl, res, "product", "add", "--serial", serial, "--model", model, "--customer", u.cid, "--delivered",
            delivered.isoformat())
    if (d or {}).get("id") != serial:
        return None
    d = run(cl, res, "ticket", "open", "--customer", u.cid, "--serial", serial, "--kind", "repair", "--symptom",
            "Ne chauffe plus" if u.lang == "fr" else "Does not heat", "--fault", "E21", "--centre", u.centre)
    u.serial, u.tid = serial, (d or {}).get("id")
    return u.tid


def ticket_state(cl, tid):
    return cl.redis().hget(cl.key("ticket:" + tid), "state")


def wait_state(cl, res, tid, state, timeout=20):
    ok = harness.wait_until(lambda: ticket_state(cl, tid) == state, timeout, 0.05)
    return res.check(ok, "%s: state %r, want %s" % (tid, ticket_state(cl, tid), state))


def repair_flow(cl, res, u, steps=("diagnose", "start", "done")):
    """diagnose (free for a recent product, a quote for an old one), then repair start and done (recent only)."""
    if not wait_state(cl, res, u.tid, "in_diagnosis"):
        return
    if "diagnose" in steps:
        run(cl, res, "diagnose", u.tid, "--cause", "wear" if u.old else "manufacturing", "--action", "repair",
            "--labour", "30")
    if u.old:
        return
    if "start" in steps:
        run(cl, res, "repair", "start", u.tid)
    if "done" in steps:
        run(cl, res, "repair", "done", u.tid)


def notif_hashes(cl, ids=None):
    r = cl.redis()
    if ids is None:
        ids = r.zrange(cl.key("notifs:all"), 0, -1)
    ids = list(ids)
    p = r.pipeline(transaction=False)
    for nid in ids:
        p.hgetall(cl.key("notif:" + nid))
    return dict(zip(ids, p.execute()))


def sms_notifs(cl, tids=None):
    """{id: hash} of every SMS notification (of the given tickets)."""
    out = {k: v for k, v in notif_hashes(cl).items() if v.get("channel") == "sms"}
    if tids is not None:
        tids = set(tids)
        out = {k: v for k, v in out.items() if v.get("ticket") in tids}
    return out


def wait_sms(cl, tids, statuses=FINAL, timeout=30, count=None):
    """Waits until every SMS of those tickets has a status in statuses (and, when given, there are at least
    count of them); returns {id: hash}."""
    def done():
        n = sms_notifs(cl, tids)
        return (count is None or len(n) >= count) and n and all(v.get("status") in statuses for v in n.values())
    harness.wait_until(done, timeout, 0.1)
    return sms_notifs(cl, tids)


def wait_ids(cl, ids, statuses=FINAL, timeout=30):
    """Waits until every notification of ids has a status in statuses; returns {id: hash}."""
    ids = list(ids)
    harness.wait_until(lambda: all(v.get("status") in statuses for v in notif_hashes(cl, ids).values()), timeout,
                       0.1)
    return notif_hashes(cl, ids)


def wait_recorded(cl, tids, count, timeout=20):
    """Waits until the tickets have at least count SMS notifications recorded (any status)."""
    harness.wait_until(lambda: len(sms_notifs(cl, tids)) >= count, timeout, 0.05)
    return sms_notifs(cl, tids)


def notif_order(cl, notifs):
    """{recipient: [notification id, ...] in the order they were recorded} (each ticket's list order, then at)."""
    r = cl.redis()
    pos = {}
    for tid in {v.get("ticket") for v in notifs.values()}:
        for k, nid in enumerate(r.lrange(cl.key("notifs:" + tid), 0, -1)):
            pos[nid] = k
    by = collections.defaultdict(list)
    for nid, v in notifs.items():
        by[v.get("recipient")].append(nid)
    return {rc: sorted(ids, key=lambda n: (int(notifs[n].get("at") or 0), notifs[n].get("ticket"), pos.get(n, 0)))
            for rc, ids in by.items()}


def list_status(cl, res, status):
    d = run(cl, res, "notification", "list", "--status", status, "--limit", "1000")
    return {r.get("id"): r for r in (d or {}).get("notifications") or []}


# ---------------------------------------------------------------- reading the peer's log against Redis

class Traffic:
    """The peer's log(s) matched to the SMS notifications. For every submit_sm: which (notification, part) it
    carries, its response (status, message id, or none when the link dropped first). Problems of the PDUs
    themselves are recorded in res as they are found (one line per kind of problem, with the first example)."""

    def __init__(self, res, notifs, peers, label="", gateway=False):
        # gateway: the submit_sm come from Kannel (the HTTP transport), which sets the store-and-forward mode bits
        # of esm_class and asks a receipt for the first part of a long message only.
        self.gateway = gateway
        for peer in peers:
            if peer.proc is not None:
                peer.settle()
        self.res, self.notifs, self.label = res, notifs, label
        self.by_part = collections.defaultdict(list)   # (nid, part index) -> [submit record]
        self.unmatched = []
        self.kinds = collections.Counter()               # problem kind -> count
        self.examples = {}
        self.packing = collections.Counter()
        self.records = []
        # Expected parts of every notification, by recipient digits and part text.
        self.want = {}
        self.index = collections.defaultdict(list)       # (dest digits, part text) -> [(nid, idx, nparts)]
        for nid, n in notifs.items():
            dc, parts = expected_parts(n.get("body") or "")
            self.want[nid] = (dc, parts)
            for k, t in enumerate(parts):
                self.index[((n.get("recipient") or "").lstrip("+"), t)].append((nid, k, len(parts)))
        for peer in peers:
            recs = peer.records()
            resp = {}
            for r in recs:
                if r.get("dir") == "out" and r.get("cmd") == "submit_sm_resp":
                    resp[r.get("for")] = r
            for r in recs:
                r["_peer"] = peer.name
                if r.get("dir") == "in" and r.get("cmd") == "submit_sm":
                    r["_resp"] = resp.get(r.get("n"))
                    self._one(r)
            self.records.extend(recs)
        for kind, n in sorted(self.kinds.items()):
            res.check(False, "%s%d submit_sm: %s; e.g. %s" % (label, n, kind, self.examples[kind]))

    def bad(self, kind, example):
        self.kinds[kind] += 1
        self.examples.setdefault(kind, example)

    def _one(self, r):
        d = decode_submit(r)
        r["_decoded"] = d
        where = "%s #%s to %s" % (r["_peer"], r.get("n"), r.get("dest_addr"))
        for b in d["bad"]:
            self.bad(b, where)
        dest = (r.get("dest_addr") or "").lstrip("+")
        hit, how = None, None
        for text, h in d["texts"]:
            c = self.index.get((dest, text))
            if c:
                hit, how = c, h
                break
        if not hit:
            self.unmatched.append(r)
            self.bad("carries no part of any SMS notification to that number (texts %r)" % (
                [t for t, _ in d["texts"]][:2],), where)
            return
        # Prefer the candidate whose part number agrees with the UDH.
        choice = hit[0]
        if d["udh"]:
            for c in hit:
                if c[1] + 1 == d["udh"][2]:
                    choice = c
        nid, idx, nparts = choice
        r["_part"] = (nid, idx)
        self.by_part[(nid, idx)].append(r)
        self.packing[how] += 1
        n = self.notifs[nid]
        want_dc = self.want[nid][0]
        # common/smpp.h: data_coding 0 carries the septets unpacked, one per octet; the SMSC packs them for the air.
        if d["dc"] == 0 and how != "unpacked":
            self.bad("GSM-7 septets sent packed (smpp.h: one septet per octet, the SMSC packs them)",
                     "%s %s" % (where, r.get("short_message_hex")[:40]))
        if d["dc"] != want_dc:
            self.bad("data_coding %s where the body %s GSM 03.38" % (d["dc"], "is all" if want_dc == 0 else
                                                                    "is not all"), "%s %r" % (where, n.get("body")))
        if (n.get("sms_coding") == "gsm7") != (d["dc"] == 0):
            self.bad("data_coding disagrees with the notification's sms_coding", "%s %s" % (where, n.get("sms_coding")))
        if str(nparts) != str(n.get("sms_parts")):
            self.bad("the notification's sms_parts differs from the parts it needs", "%s sms_parts %s, want %d" % (
                where, n.get("sms_parts"), nparts))
        esm = d["esm"] or 0
        if nparts > 1:
            if not esm & 0x40:
                self.bad("part of a long message without esm_class 0x40", "%s esm_class 0x%02x" % (where, esm))
            if d["udh"] is None:
                self.bad("part of a long message without a concatenation UDH", where)
            elif d["udh"][1:] != (nparts, idx + 1):
                self.bad("UDH total/seq wrong", "%s UDH %s, want total %d seq %d" % (where, d["udh_raw"], nparts,
                                                                                    idx + 1))
        elif esm & 0x40:
            self.bad("single-part message with esm_class 0x40", where)
        if esm & ~(0x43 if self.gateway else 0x40):
            self.bad("unexpected esm_class bits", "%s esm_class 0x%02x" % (where, esm))
        if (not self.gateway or idx == 0) and (r.get("registered_delivery") or 0) & 0x03 != 0x01:
            self.bad("registered_delivery does not ask for a delivery receipt (want 1)", "%s registered_delivery %r" % (
                where, r.get("registered_delivery")))
        if r.get("source_addr") != SOURCE or r.get("source_addr_ton") != 5:
            self.bad("source_addr not %s with TON 5 (alphanumeric)" % SOURCE, "%s source %r TON %r NPI %r" % (
                where, r.get("source_addr"), r.get("source_addr_ton"), r.get("source_addr_npi")))
        if r.get("dest_addr") != dest or r.get("dest_addr_ton") != 1 or r.get("dest_addr_npi") != 1:
            self.bad("dest_addr not the E.164 digits with TON 1 NPI 1", "%s dest %r TON %r NPI %r" % (
                where, r.get("dest_addr"), r.get("dest_addr_ton"), r.get("dest_addr_npi")))
        # One SMS on the air holds 140 octets: UCS-2 140 bytes, GSM-7 160 septets (153 after a UDH of 6 octets).
        limit = 140 if d["dc"] != 0 else (160 if not d["udh"] else 6 + 153)
        if d["octets"] > limit:
            self.bad("short_message longer than one SMS on the air", "%s %d octets, at most %d" % (
                where, d["octets"], limit))

    # -- questions

    def ok_submits(self, key):
        return [r for r in self.by_part.get(key, []) if r["_resp"] and r["_resp"].get("status") == 0]

    def parts_of(self, nid):
        return [(nid, k) for k in range(len(self.want[nid][1]))]

    def exactly_once(self, nids, allow_dups=False):
        """Checks every part of every notification was accepted exactly once (allow_dups: report only).
        Returns (parts accepted twice or more, parts re-sent after a lost response, parts never accepted)."""
        dups, resent_lost, missing = [], [], []
        for nid in nids:
            for key in self.parts_of(nid):
                subs = self.by_part.get(key, [])
                ok = self.ok_submits(key)
                if not ok:
                    missing.append(key)
                if len(ok) > 1:
                    dups.append((key, [(r["_peer"], r.get("n")) for r in ok]))
                lost = [r for r in subs if not r["_resp"]]
                if lost and len(subs) > 1:
                    resent_lost.append((key, [(r["_peer"], r.get("n")) for r in subs]))
                # A part sent again although its acceptance had been answered is a duplicate too (counted above).
        self.res.check(not missing, "%s%d part(s) never accepted by the SMSC: %s" % (self.label, len(missing),
                                                                                   missing[:4]))
        if not allow_dups:
            self.res.check(not dups, "%s%d part(s) accepted more than once (duplicate SMS to the customer): %s" % (
                self.label, len(dups), dups[:4]))
        return dups, resent_lost, missing

    def check_refs(self):
        """A recipient's long messages must use different concatenation references (a phone merges parts with the
        same reference from the same sender)."""
        per_dest = collections.defaultdict(dict)  # dest -> {nid: {refs}}
        for (nid, idx), subs in self.by_part.items():
            for r in subs:
                u = r["_decoded"]["udh"]
                if u:
                    per_dest[r.get("dest_addr")].setdefault(nid, set()).add(u[0])
        clashes = []
        for dest, m in per_dest.items():
            seen = {}
            for nid, refs in sorted(m.items()):
                for ref in refs:
                    if ref in seen and seen[ref] != nid:
                        clashes.append((dest, ref, seen[ref], nid))
                    seen.setdefault(ref, nid)
        # Parts of one message must share their reference (within one submission).
        split = []
        for nid in self.notifs:
            if len(self.want[nid][1]) < 2:
                continue
            firsts = [self.ok_submits(k)[:1] for k in self.parts_of(nid)]
            refs = {s[0]["_decoded"]["udh"][0] for s in firsts if s and s[0]["_decoded"]["udh"]}
            if len(refs) > 1:
                split.append((nid, sorted(refs)))
        self.res.check(not clashes, "%stwo long messages to one number share a concatenation reference: %s" % (
            self.label, clashes[:3]))
        self.res.check(not split, "%sthe accepted parts of one message carry different references: %s" % (
            self.label, split[:3]))
        return sum(1 for m in per_dest.values() for _ in m)

    def delivered_after_receipts(self, nids):
        """A long SMS is delivered only once the receipt of its last part came: delivered_at (ms) is not before the
        time the peer sent the last part's receipt. Returns how many multi-part SMS were checked."""
        receipt_t = {}
        for r in self.records:
            if r.get("dir") == "out" and r.get("kind") == "receipt":
                receipt_t.setdefault((r["_peer"], r.get("for")), r["t"])
        early, checked = [], 0
        for nid in nids:
            n = self.notifs[nid]
            if len(self.want[nid][1]) < 2 or n.get("status") != "delivered":
                continue
            ts = []
            for key in self.parts_of(nid):
                ok = self.ok_submits(key)
                t = receipt_t.get((ok[0]["_peer"], ok[0].get("n"))) if ok else None
                if t is None:
                    break
                ts.append(t)
            else:
                checked += 1
                at = int(n.get("delivered_at") or 0) / 1000.0
                if at + 0.005 < max(ts):
                    early.append((nid, round(max(ts) - at, 3)))
        self.res.check(not early, "%s%d long SMS delivered before the receipt of every part (s early): %s" % (
            self.label, len(early), early[:3]))
        return checked

    def receipts_answered(self):
        """Every receipt the peer sent was answered with deliver_sm_resp status 0 (on the same connection, or
        after its redelivery). Returns (receipts, unanswered message ids)."""
        sent = collections.defaultdict(list)
        answered = set()
        for r in self.records:
            if r.get("dir") == "out" and r.get("kind") == "receipt":
                sent[(r["_peer"], r.get("message_id"))].append(r)
            if r.get("dir") == "in" and r.get("cmd") == "deliver_sm_resp" and r.get("for_kind") == "receipt":
                if r.get("status") == 0:
                    answered.add((r["_peer"], r.get("message_id")))
        missing = sorted(set(sent) - answered)
        self.res.check(not missing, "%s%d receipt(s) never answered with an OK deliver_sm_resp: %s" % (
            self.label, len(missing), missing[:4]))
        bad = [r for r in self.records if r.get("dir") == "in" and r.get("cmd") == "deliver_sm_resp"
               and r.get("status") != 0]
        self.res.check(not bad, "%sdeliver_sm_resp with an error status: %s" % (self.label, bad[:2]))
        return len(sent), missing


def check_binds(res, peer, label=""):
    recs = peer.records()
    binds = [r for r in recs if r.get("dir") == "in" and r.get("cmd", "").startswith("bind_")]
    res.check(binds, "%sno bind at the peer" % label)
    for b in binds:
        res.check(b.get("cmd") == "bind_transceiver" and b.get("system_id") == "sav" and b.get("password_ok") == 1
                  and b.get("interface_version") == 0x34,
                  "%sbind %s, want bind_transceiver system_id sav, the password, interface_version 0x34" % (label, b))
    okb = [r for r in recs if r.get("dir") == "out" and r.get("cmd") == "bind_transceiver_resp" and r.get("status") == 0]
    return len(okb)


def check_statuses(res, notifs, want, label=""):
    bad = {k: (v.get("status"), v.get("last_answer")) for k, v in notifs.items() if v.get("status") != want}
    res.check(not bad, "%s%d SMS not %s: %s" % (label, len(bad), want, sorted(bad.items())[:4]))
    return collections.Counter(v.get("status") for v in notifs.values())


def stop_peers(*peers):
    for p in peers:
        if p is not None:
            p.stop()


# ---------------------------------------------------------------- 1. sms_delivery

def test_sms_delivery(cl):
    res = Result()
    peer = SmscPeer(cl, "delivery")
    peers = [peer]
    try:
        peer.start("--receipts", "--enquire-ms", 700)
        tps = 20
        sms_config(cl, peer.port, smpp_enquire_ms=500, smpp_tps=tps)
        cl.start_all()
        defaults = cl.write_config(os.path.join(cl.dir, "defaults.conf"))  # no [notification] smpp_* key
        r = cl.savctl("--config", defaults, "config", "get", "notification.smpp_password", config=False)
        res.check(r.returncode == 0 and r.stdout.strip() == "none",
                  "notification.smpp_password defaults to %r (exit %d), want none (an empty password)" % (
                      r.stdout.strip(), r.returncode))
        centres = ["PAR-01", "REP-BDX-07", "LYO-01"]
        units = [Unit(i, "fr" if i % 2 == 0 else "en", old=i in (2, 3, 8), centre=centres[i % 3]) for i in range(10)]
        t0 = time.monotonic()
        if not res.check(register(cl, res, units), "registration failed"):
            return res
        pmap(lambda u: repair_flow(cl, res, u), units)
        # A complaint in French: "reçu" is not GSM 03.38 (ç is not 0x09, which is Ç).
        run(cl, res, "complaint", "open", units[0].tid, "--reason", "damaged", "--text", "Rayure sur la porte")
        tids = [u.tid for u in units]
        notifs = wait_sms(cl, tids, timeout=40)
        res.fig("seconds", round(time.monotonic() - t0, 1))
        res.fig("sms", len(notifs))
        counts = check_statuses(res, notifs, "delivered")
        res.fig("status", dict(counts))
        codings = collections.Counter((v.get("sms_coding"), v.get("sms_parts")) for v in notifs.values())
        res.fig("coding_parts", {"%s/%s" % k: n for k, n in sorted(codings.items())})
        res.check(("ucs2", "2") in codings and ("gsm7", "2") in codings and ("gsm7", "1") in codings,
                  "the mix lacks a 2-part UCS-2, a 2-part GSM-7 or a 1-part GSM-7 SMS: %s" % dict(codings))
        # The French pickup SMS at PAR-01 stays one GSM-7 part.
        for nid, n in notifs.items():
            if ":ready_for_pickup:" in nid and n.get("lang") == "fr" and "Paris" in (n.get("body") or ""):
                res.check((n.get("sms_coding"), n.get("sms_parts")) == ("gsm7", "1"),
                          "%s: %s/%s, want gsm7/1: %r" % (nid, n.get("sms_coding"), n.get("sms_parts"), n.get("body")))
        for nid, n in notifs.items():
            if ":complaint_acknowledged:" in nid:
                res.check("ç" in (n.get("body") or "") and n.get("sms_coding") == "ucs2",
                          "%s: %s, want ucs2 (\"reçu\": ç is not in GSM 03.38, Ç is): %r" % (
                              nid, n.get("sms_coding"), n.get("body")))
        escapes = sum(1 for n in notifs.values() if "€" in (n.get("body") or "") and n.get("sms_coding") == "gsm7")
        res.fig("gsm7_with_euro", escapes)
        for nid, n in notifs.items():
            res.check(n.get("attempts") == "1" and (n.get("sent_at") or "").isdigit() and n.get("message_ids"),
                      "%s: attempts %r sent_at %r message_ids %r, want 1, a time, the ids" % (
                          nid, n.get("attempts"), n.get("sent_at"), n.get("message_ids")))
        # Idle: the client sends enquire_link and answers ours.
        time.sleep(1.6)
        tr = Traffic(res, notifs, [peer])
        tr.exactly_once(list(notifs))
        res.fig("long_messages", tr.check_refs())
        res.fig("long_delivered_checked", tr.delivered_after_receipts(list(notifs)))
        res.fig("receipts", tr.receipts_answered()[0])
        res.fig("packing", dict(tr.packing))
        res.fig("binds", check_binds(res, peer))
        recs = peer.records()
        last_submit = max([r["t"] for r in recs if r.get("cmd") == "submit_sm"] or [0])
        enq = [r for r in recs if r.get("dir") == "in" and r.get("cmd") == "enquire_link" and r["t"] > last_submit]
        ans = [r for r in recs if r.get("dir") == "in" and r.get("cmd") == "enquire_link_resp"]
        res.check(enq, "no enquire_link from the client in 1.6 s idle (smpp_enquire_ms 500)")
        res.check(ans, "our enquire_link (every 700 ms) never answered")
        res.fig("enquire_links", "%d/%d" % (len(enq), len(ans)))
        # smpp_tps counts PDUs: at most tps submit_sm in any second.
        ts = sorted(r["t"] for r in recs if r.get("dir") == "in" and r.get("cmd") == "submit_sm")
        busiest = max([sum(1 for u in ts[k:] if u < t + 1.0) for k, t in enumerate(ts)] or [0])
        res.fig("max_submits_per_s", busiest)
        res.check(busiest <= tps, "%d submit_sm within one second, smpp_tps %d" % (busiest, tps))
        listed = list_status(cl, res, "delivered")
        res.check(set(notifs) <= set(listed), "notification list --status delivered lacks %s" % (
            sorted(set(notifs) - set(listed))[:4]))

        # Phases 2 and 3: the same with the receipt before the response, then text-only receipts.
        for k, opts in ((2, ["--receipt-first"]), (3, ["--receipt-first", "--receipt-text-only"])):
            peer.stop()
            peer = SmscPeer(cl, "delivery%d" % k, port=peers[0].port)
            peers.append(peer)
            peer.start(*opts)
            more = [Unit(10 * k + j, "fr" if j % 2 else "en", old=j == 1, centre=centres[j % 3]) for j in range(3)]
            if not res.check(register(cl, res, more), "phase %d: registration failed" % k):
                return res
            pmap(lambda u: repair_flow(cl, res, u, ("diagnose",)), more)
            tids2 = [u.tid for u in more]
            n2 = wait_sms(cl, tids2, timeout=30, count=6)
            label = "%s: " % " ".join(opts)
            c2 = check_statuses(res, n2, "delivered", label)
            res.fig("phase%d" % k, dict(c2))
            tr2 = Traffic(res, n2, [peer], label)
            tr2.exactly_once(list(n2))
            tr2.receipts_answered()
        return res
    finally:
        stop_peers(*peers)


# ---------------------------------------------------------------- 2. sms_errors

def test_sms_errors(cl):
    res = Result()
    peer = SmscPeer(cl, "errors")
    try:
        sms_config(cl, peer.port, sms_retry_max_ms=800)
        cl.start_all()
        units = [Unit(100 + i, "fr" if i % 2 == 0 else "en") for i in range(6)]
        refused = units[5]
        if not res.check(register(cl, res, units), "registration failed"):
            return res
        pmap(lambda u: repair_flow(cl, res, u), units)
        tids = [u.tid for u in units]
        before = wait_recorded(cl, tids, 24)
        st = collections.Counter(v.get("status") for v in before.values())
        res.fig("before_smsc", dict(st))
        res.check(len(before) == 24 and set(st) <= {"queued"},
                  "SMSC down: %d SMS with statuses %s, want 24 queued" % (len(before), dict(st)))
        peer.start("--throttle", 3, "--fail-dest", refused.e164, "--receipts")
        t0 = time.monotonic()
        notifs = wait_sms(cl, tids, timeout=40)
        res.fig("seconds", round(time.monotonic() - t0, 1))
        ok = {k: v for k, v in notifs.items() if v.get("recipient") != refused.e164}
        bad = {k: v for k, v in notifs.items() if v.get("recipient") == refused.e164}
        res.fig("status", dict(collections.Counter(v.get("status") for v in notifs.values())))
        check_statuses(res, ok, "delivered")
        check_statuses(res, bad, "failed", "refused number: ")
        for nid, n in bad.items():
            res.check(re.search(r"0x0*b\b", n.get("last_answer") or "", re.I),
                      "%s: failed with last_answer %r, which does not name 0x0B" % (nid, n.get("last_answer")))
        listed = list_status(cl, res, "failed")
        res.check(set(bad) <= set(listed), "notification list --status failed shows %d of the %d failed SMS (%s)" % (
            len(set(bad) & set(listed)), len(bad), sorted(set(bad) - set(listed))[:2]))
        tr = Traffic(res, notifs, [peer])
        tr.exactly_once(list(ok))
        subs = [r for r in tr.records if r.get("cmd") == "submit_sm" and r.get("dir") == "in"]
        throttled = [r for r in subs if r["_resp"] and r["_resp"].get("status") == 0x58]
        res.check(len(throttled) == 3, "%d submit_sm throttled, want 3" % len(throttled))
        delays = []
        for r in throttled:
            key = r.get("_part")
            later = [s for s in tr.by_part.get(key, []) if s.get("n", 0) > r.get("n", 0)]
            if res.check(later, "throttled part %s never sent again" % (key,)):
                delays.append(round((later[0]["t"] - r["_resp"]["t"]) * 1000))
        res.fig("retry_delay_ms", delays)
        res.check(all(d >= 50 for d in delays), "throttled parts sent again after %s ms: no backoff" % delays)
        for nid in bad:
            n_sub = [len(tr.by_part.get(k, [])) for k in tr.parts_of(nid)]
            res.check(all(x == 1 for x in n_sub) or (sum(n_sub) <= len(n_sub) + 3),
                      "%s (0x0B, permanent): submitted %s times per part, want once" % (nid, n_sub))
        # Per-recipient order: the notifications' order, over every submit_sm (retries included).
        order = notif_order(cl, notifs)
        broken = []
        for rc, ids in order.items():
            rank = {nid: k for k, nid in enumerate(ids)}
            seq = [rank[r["_part"][0]] for r in subs if r.get("_part") and r["_part"][0] in rank]
            if seq != sorted(seq):
                broken.append((rc, seq))
        res.check(not broken, "a recipient's SMS were submitted out of order (ranks in notification order): %s" %
                  broken[:3])
        res.fig("recipients_in_order", "%d/%d" % (len(order) - len(broken), len(order)))
        tr.receipts_answered()
        return res
    finally:
        stop_peers(peer)


# ---------------------------------------------------------------- 3. sms_window_and_reconnect

def test_sms_window_and_reconnect(cl):
    res = Result()
    peer = SmscPeer(cl, "window")
    peers = [peer]
    window = 5
    try:
        sms_config(cl, peer.port, smpp_window=window, smpp_tps=1000)
        cl.start_all()
        # Half at the Bordeaux repairer: their pickup SMS (sent around the first drop) have 2 parts.
        units = [Unit(200 + i, "fr" if i % 4 < 2 else "en", centre="REP-BDX-07" if i % 2 else "PAR-01")
                 for i in range(10)]
        if not res.check(register(cl, res, units), "registration failed"):
            return res
        pmap(lambda u: repair_flow(cl, res, u, ("diagnose", "start")), units)
        tids = [u.tid for u in units]
        wait_recorded(cl, tids, 30)

        # A. The window: 30 SMS waiting, answers 200 ms late, no receipts (so every SMS ends sent).
        peer.start("--delay-ms", 200, "--window-log")
        t0 = time.monotonic()
        seen = collections.Counter()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            st = collections.Counter(v.get("status") for v in sms_notifs(cl, tids).values())
            seen.update(set(st))
            if st.get("sent", 0) >= 30:
                break
            time.sleep(0.03)
        notifs = sms_notifs(cl, tids)
        res.fig("window_seconds", round(time.monotonic() - t0, 1))
        res.fig("statuses_seen", ",".join(sorted(seen)))
        res.check("sending" in seen, "no SMS ever seen in status sending (sampled every 30 ms for %.1f s)" % (
            time.monotonic() - t0))
        check_statuses(res, notifs, "sent", "window (no receipts): ")
        listed = list_status(cl, res, "sent")
        res.check(set(notifs) <= set(listed), "notification list --status sent lacks %d of the %d sent SMS" % (
            len(set(notifs) - set(listed)), len(notifs)))
        res.check(peer.stop() == 0, "peer did not exit 0 on SIGTERM")
        mx = [r["max_outstanding"] for r in peer.records() if "max_outstanding" in r and "event" not in r]
        res.fig("max_outstanding", mx[-1] if mx else None)
        res.check(mx and mx[-1] <= window, "max_outstanding %s, smpp_window %d" % (mx, window))
        res.check(mx and mx[-1] >= 2, "max_outstanding %s: the client does not use its window at all" % mx)
        tr = Traffic(res, notifs, [peer], "window: ")
        tr.exactly_once(list(notifs))

        # B. The link drops after the 7th submit_sm (answers 50 ms late): rebind, every SMS delivered, each part
        # accepted once (a part whose answer the drop lost may go again).
        def more(u):
            run(cl, res, "repair", "done", u.tid)
            u.first_tid = u.tid
            open_for(cl, res, u, suffix="b")
        pmap(more, units)
        all_tids = tids + [u.tid for u in units]
        notifs_b = {k: v for k, v in wait_recorded(cl, all_tids, 50).items() if k not in notifs}
        peer = SmscPeer(cl, "drop", port=peers[0].port)
        peers.append(peer)
        peer.start("--drop-after", 7, "--delay-ms", 50, "--receipts")
        t0 = time.monotonic()
        notifs_b = wait_ids(cl, notifs_b, timeout=40)
        res.fig("drop_seconds", round(time.monotonic() - t0, 1))
        res.fig("drop_sms", len(notifs_b))
        check_statuses(res, notifs_b, "delivered", "drop after 7: ")
        tr = Traffic(res, notifs_b, [peer], "drop after 7: ")
        dups, resent, _ = tr.exactly_once(list(notifs_b))
        res.fig("resent_after_lost_resp", len(resent))
        res.fig("binds", check_binds(res, peer, "drop after 7: "))
        recs = peer.records()
        res.check(any(r.get("event") == "drop" for r in recs), "the peer never dropped the link")
        conns = {r.get("conn") for r in recs if r.get("cmd") == "bind_transceiver_resp" and r.get("status") == 0}
        res.check(len(conns) >= 2, "no rebind after the drop (bound connections %s)" % sorted(conns))
        tr.receipts_answered()

        # C. The drop right after the first part of a long message was accepted: answers at once, the link drops
        # at the 2nd submit_sm, the queue holds only 2-part messages (French complaint acknowledgements, UCS-2).
        peer.stop()
        fr = [u for u in units if u.lang == "fr"][:4]
        before = set(sms_notifs(cl))
        pmap(lambda u: run(cl, res, "complaint", "open", u.tid, "--reason", "damaged", "--text", "Porte rayée"), fr)
        harness.wait_until(lambda: len(set(sms_notifs(cl)) - before) >= len(fr), 15, 0.05)
        notifs_c = {k: v for k, v in sms_notifs(cl).items() if k not in before}
        res.check(len(notifs_c) == len(fr) and all(v.get("sms_parts") == "2" for v in notifs_c.values()),
                  "complaint acknowledgements: %s, want %d of 2 parts" % (
                      {k: v.get("sms_parts") for k, v in notifs_c.items()}, len(fr)))
        peer = SmscPeer(cl, "drop2", port=peers[0].port)
        peers.append(peer)
        peer.start("--drop-after", 2, "--receipts")
        notifs_c = wait_ids(cl, notifs_c, timeout=30)
        check_statuses(res, notifs_c, "delivered", "drop after part 1 of 2: ")
        tr = Traffic(res, notifs_c, [peer], "drop after part 1 of 2: ")
        dups, resent, _ = tr.exactly_once(list(notifs_c))
        res.fig("partial_drop", "dups:%d,resent_lost:%d" % (len(dups), len(resent)))
        tr.receipts_answered()

        # D. The same drop, then the SMSC refuses the next two binds (away for two seconds, as when it restarts):
        # the SMS in hand wait for it, and the part it had accepted still goes once.
        peer.stop()
        away = [u for u in units if u.lang == "fr"][4:]
        before = set(sms_notifs(cl))
        pmap(lambda u: run(cl, res, "complaint", "open", u.tid, "--reason", "damaged", "--text", "Porte rayée"), away)
        harness.wait_until(lambda: len(set(sms_notifs(cl)) - before) >= len(away), 15, 0.05)
        notifs_d = {k: v for k, v in sms_notifs(cl).items() if k not in before}
        peer = SmscPeer(cl, "away", port=peers[0].port)
        peers.append(peer)
        peer.start("--drop-after", 2, "--refuse-binds", 2, "--receipts")
        notifs_d = wait_ids(cl, notifs_d, timeout=30)
        check_statuses(res, notifs_d, "delivered", "drop after part 1 of 2, SMSC away: ")
        refused = [r for r in peer.records() if r.get("cmd") == "bind_transceiver_resp" and r.get("status") == 0x0D]
        res.check(len(refused) == 2, "the SMSC refused %d binds after the drop, want 2" % len(refused))
        tr = Traffic(res, notifs_d, [peer], "drop after part 1 of 2, SMSC away: ")
        tr.exactly_once(list(notifs_d))
        res.fig("away_sms", len(notifs_d))
        return res
    finally:
        stop_peers(*peers)


# ---------------------------------------------------------------- 4. sms_stop

def test_sms_stop(cl):
    res = Result()
    peer = SmscPeer(cl, "stop")
    try:
        units = [Unit(300 + i, "fr", consent="sms,marketing") for i in range(4)]
        a, b, c, d = units
        # The customers exist before they answer STOP: the SMSC comes up (and hands over the replies) after
        # they are registered; meanwhile the client keeps trying to bind.
        sms_config(cl, peer.port)
        cl.start_all()
        cids = []
        for u in units:
            added = run(cl, res, "customer", "add", "--name", "Client %d" % u.i, "--phone", u.phone, "--consent",
                        u.consent)
            u.cid = (added or {}).get("id")
            cids.append(u.cid)
        if not res.check(all(cids), "registration failed"):
            return res
        peer.start("--receipts", "--mo-stop", a.e164.lstrip("+"), "--mo-stop", b.e164, "--mo-stop",
                   "0" + d.e164[3:])
        r = cl.redis()

        def marketing(u):
            return r.hget(cl.key("customer:" + u.cid), "consent_marketing")
        harness.wait_until(lambda: marketing(a) == "0" and marketing(b) == "0" and marketing(d) == "0", 8, 0.1)
        res.fig("consent_marketing", {"336..": marketing(a), "+336..": marketing(b), "06..": marketing(d),
                                      "none": marketing(c)})
        res.check(marketing(d) == "0", "STOP from 0%s (national form): consent_marketing %r, want \"0\"" % (
            d.e164[3:], marketing(d)))
        res.check(marketing(a) == "0", "STOP from %s: consent_marketing %r, want \"0\"" % (a.e164.lstrip("+"),
                                                                                        marketing(a)))
        res.check(marketing(b) == "0", "STOP from %s: consent_marketing %r, want \"0\"" % (b.e164, marketing(b)))
        res.check(marketing(c) == "1", "no STOP from %s: consent_marketing %r, want \"1\"" % (c.e164, marketing(c)))
        res.check(r.hget(cl.key("customer:" + a.cid), "consent_sms") == "1", "STOP removed the service SMS consent")
        # The consent is recorded before the deliver_sm is answered: the answers follow.
        def mo_acks():
            return [x for x in peer.records() if x.get("cmd") == "deliver_sm_resp" and x.get("for_kind") == "mo"]
        harness.wait_until(lambda: len(mo_acks()) >= 3, 5, 0.05)
        acks = mo_acks()
        res.check(len(acks) >= 3 and all(x.get("status") == 0 for x in acks),
                  "MO deliver_sm answered %s, want three OK deliver_sm_resp" % [(x.get("phone"), x.get("status"))
                                                                           for x in acks])
        # A service message to a customer who said STOP still goes.
        if open_for(cl, res, a):
            n = wait_sms(cl, [a.tid], timeout=20, count=1)
            check_statuses(res, n, "delivered", "after STOP: ")
            tr = Traffic(res, n, [peer], "after STOP: ")
            tr.exactly_once(list(n))
            res.fig("service_sms_after_stop", len(n))
        return res
    finally:
        stop_peers(peer)


# ---------------------------------------------------------------- 5. sms_crash

def test_sms_crash(cl):
    res = Result()
    peer = SmscPeer(cl, "crash")
    peers = [peer]
    window = 5
    try:
        sms_config(cl, peer.port, smpp_window=window, sms_stale_ms=1000, smpp_response_ms=2000)
        cl.start_all()
        # 50 customers, two SMS each (ticket received, diagnosis): 100 in flight, the sender killed three times.
        units = [Unit(400 + i, "fr" if i % 2 == 0 else "en", old=i % 4 == 3) for i in range(50)]
        if not res.check(register(cl, res, units), "registration failed"):
            return res
        pmap(lambda u: repair_flow(cl, res, u, ("diagnose",)), units)
        tids = [u.tid for u in units]
        queued = wait_recorded(cl, tids, 100)
        peer.start("--delay-ms", 150, "--receipts")
        kills = []
        for k in range(3):
            harness.wait_until(lambda: len(peer.submits()) >= 8 + 25 * k, 30, 0.02)
            cl.kill_service("notification")
            kills.append(len(peer.submits()))
            if k == 0:
                mid = collections.Counter(v.get("status") for v in sms_notifs(cl, tids).values())
                res.fig("status_at_first_kill", dict(mid))
            cl.start_service("notification")
            cl.wait_service("notification")
        res.fig("submits_at_kills", kills)
        t0 = time.monotonic()
        notifs = wait_sms(cl, tids, timeout=60, count=len(queued))
        res.fig("seconds_after_restart", round(time.monotonic() - t0, 1))
        res.fig("sms", len(notifs))
        check_statuses(res, notifs, "delivered")
        tr = Traffic(res, notifs, [peer])
        dups, resent, _ = tr.exactly_once(list(notifs), allow_dups=True)
        dup_nids = sorted({k[0] for k, _ in dups})
        res.fig("duplicate_parts", len(dups))
        res.fig("resent_after_lost_resp", len(resent))
        if dups:
            res.fig("duplicates", [k for k, _ in dups][:6])
        res.fig("resent_after_crash", sum(1 for v in notifs.values() if int(v.get("resent_after_crash") or 0)))
        res.check(len(dups) <= 2 * window * len(kills), "%d parts accepted twice after %d crashes, more than 2 x "
                  "smpp_window (%d) each" % (len(dups), len(kills), window))
        for nid in dup_nids:
            res.check(int(notifs[nid].get("resent_after_crash") or 0) >= 1,
                      "%s went twice after the crash but resent_after_crash is %r" % (
                          nid, notifs[nid].get("resent_after_crash")))
        tr.receipts_answered()
        return res
    finally:
        stop_peers(*peers)


def test_sms_smsc_crash(cl):
    """The SMSC dies right after answering: it sends a receipt, then the acceptance of the first submit_sm, and
    resets the link (--receipt-first --crash-after 1). Answering the receipt fails, but the acceptance is already
    in hand and must count: once another SMSC is up, every SMS is delivered and none is submitted again."""
    res = Result()
    first = SmscPeer(cl, "dies")
    peers = [first]
    try:
        first.start("--receipt-first", "--crash-after", 1)
        sms_config(cl, first.port)
        cl.start_all()
        units = [Unit(900 + i, "fr") for i in range(3)]
        if not res.check(register(cl, res, units), "registration failed"):
            return res
        res.check(harness.wait_until(lambda: first.proc.poll() is not None, 20, 0.01) and first.proc.returncode == 3,
                  "the SMSC did not crash after its first answer (exit %s)" % first.proc.poll())
        first.kill()
        time.sleep(1.5)  # the client finds no SMSC for a while
        second = SmscPeer(cl, "after", port=first.port)
        peers.append(second)
        second.start("--receipts")
        notifs = wait_sms(cl, [u.tid for u in units], timeout=30, count=3)
        check_statuses(res, notifs, "delivered")
        res.fig("submits", "%d+%d" % (len(first.submits()), len(second.submits())))
        tr = Traffic(res, notifs, peers, "SMSC crash after an answer: ")
        tr.exactly_once(list(notifs))
        return res
    finally:
        stop_peers(*peers)


def test_sms_stale_claim_settled(cl):
    """The Functions alone (no SMSC, so sav-notification never claims): an SMS claimed by a sender (sms_claim) whose
    claim then goes stale while the sender still holds it, as when Redis restarts and renewals fail, is queued
    again by the next sms_claim (counted in resent_after_crash). The sender's outcome "sent" must still settle it:
    sent, out of the queue, its recipient's turn passed, the resend count taken back; it must not go twice."""
    res = Result()
    sms_config(cl, harness.free_ports(1)[0])  # no SMSC listens there: the sender thread never binds, never claims
    cl.start_all()
    u = Unit(800, "fr")
    if not res.check(register(cl, res, [u]), "registration failed"):
        return res
    r = cl.redis()
    nid = "%s:ticket_received:sms:1" % u.tid
    res.check(harness.wait_until(lambda: r.zscore(cl.key("sms:queue"), nid) is not None, 15, 0.05),
              "%s never queued" % nid)
    keys = [cl.key("sms:queue"), cl.key("sms:sending"), cl.key("sms:busy")]
    prefix = cl.key("")

    def claim(now, want, stale):
        return r.execute_command("FCALL", "sms_claim", 3, *keys, prefix, now, want, stale, "0", "0", "0")
    now = int(time.time() * 1000)
    got = claim(now, 10, 60000)
    res.check([x[0] for x in got] == [nid], "sms_claim: %r, want [%s]" % ([x[0] for x in got], nid))
    claim(now + 5000, 0, 1000)  # the claim is 5 s old: stale, queued again, nothing claimed
    h = r.hgetall(cl.key("notif:" + nid))
    res.check(h.get("status") == "queued" and h.get("resent_after_crash") == "1",
              "after the stale requeue: status %r resent_after_crash %r, want queued 1" % (
                  h.get("status"), h.get("resent_after_crash")))
    status = r.execute_command("FCALL", "sms_done", 4, cl.key("notif:" + nid), *keys, nid, now + 5100, "sent",
                               "accepted in 1 part", now + 6000, prefix, 604800, "1A2B,6699")
    h = r.hgetall(cl.key("notif:" + nid))
    res.fig("sms_done", status)
    res.check(status == "sent" and h.get("status") == "sent" and h.get("message_ids") == "1A2B,6699",
              "sms_done sent on the SMS queued again while its sender held it: %r, status %r message_ids %r, want "
              "sent (the SMSC accepted it)" % (status, h.get("status"), h.get("message_ids")))
    res.check(r.zscore(cl.key("sms:queue"), nid) is None and r.zscore(cl.key("sms:sending"), nid) is None,
              "%s still in sms:queue or sms:sending: it would go twice" % nid)
    res.check(r.hget(cl.key("sms:busy"), u.e164) is None, "the recipient's turn is still held by %s" % r.hget(
        cl.key("sms:busy"), u.e164))
    res.check(h.get("resent_after_crash") == "0", "resent_after_crash %r, want 0: it was not sent again" % (
        h.get("resent_after_crash"),))
    res.check(r.get(cl.key("sms:msgid:1A2B")) == nid, "sms:msgid:1A2B = %r, want %s (receipts are matched by it)" % (
        r.get(cl.key("sms:msgid:1A2B")), nid))
    return res


def test_sms_quiet_hours(cl):
    """Quiet hours that hold the present moment (Europe/Paris): ticket_received SMS wait as deferred and nothing is
    submitted; ticket_cancelled, listed urgent, goes at once (ahead of the same customer's deferred one); when the
    window opens (the service restarted with quiet hours off) the deferred ones go, each once."""
    res = Result()
    peer = SmscPeer(cl, "quiet")
    try:
        peer.start("--receipts")
        now = datetime.datetime.now(PARIS)
        window = "%s-%s" % ((now - datetime.timedelta(hours=1)).strftime("%H:%M"),
                            (now + datetime.timedelta(hours=1)).strftime("%H:%M"))
        sms_config(cl, peer.port, sms_quiet_hours=window, sms_urgent_events="quote_expiring,ticket_cancelled")
        cl.start_all()
        units = [Unit(400 + i, "fr") for i in range(3)]
        if not res.check(register(cl, res, units), "registration failed"):
            return res
        tids = [u.tid for u in units]
        deferred = wait_sms(cl, tids, statuses=("deferred",), timeout=10, count=3)
        res.fig("quiet_hours", window)
        res.fig("in_quiet_hours", collections.Counter(v.get("status") for v in deferred.values()))
        check_statuses(res, deferred, "deferred", "in quiet hours: ")
        res.check(set(list_status(cl, res, "deferred")) >= set(deferred), "notification list --status deferred misses some")
        time.sleep(1.0)
        res.check(not peer.submits(), "%d submit_sm in quiet hours, want none" % len(peer.submits()))
        a = units[0]
        run(cl, res, "ticket", "cancel", a.tid, "--reason", "Client injoignable")
        urgent = wait_ids(cl, ["%s:ticket_cancelled:sms:1" % a.tid], timeout=15)
        check_statuses(res, urgent, "delivered", "urgent in quiet hours: ")
        still = notif_hashes(cl, ["%s:ticket_received:sms:1" % a.tid])
        res.check(all(v.get("status") == "deferred" for v in still.values()),
                  "the urgent SMS released the deferred one: %s" % {k: v.get("status") for k, v in still.items()})
        res.fig("urgent_submits", len(peer.submits()))
        sms_config(cl, peer.port, sms_quiet_hours="off")
        cl.restart_service("notification")
        opened = wait_sms(cl, tids, timeout=20, count=4)
        check_statuses(res, opened, "delivered", "after the window opened: ")
        res.fig("after_window", collections.Counter(v.get("status") for v in opened.values()))
        tr = Traffic(res, opened, [peer], "quiet hours: ")
        tr.exactly_once(list(opened))
        return res
    finally:
        stop_peers(peer)


def test_sms_rate_cap(cl):
    res = Result()
    tps, count = 400, 1500
    peer = SmscPeer(cl, "cap")
    sms_config(cl, peer.port, smpp_tps=tps, smpp_window=20)
    cl.start_all()
    load = subprocess.run([cl.binary("sav-bench"), "--config", cl.config, "load", "--count", str(count),
                           "--per-customer", "1", "--window", "128"], capture_output=True, text=True, timeout=300)
    res.check(load.returncode == 0, "sav-bench: %s" % load.stderr.strip()[-300:])
    r = cl.redis()
    harness.wait_until(lambda: all(r.xlen(cl.key(o)) == 0 for o in ("outbox:diagnostics", "outbox:billing",
                                                                     "outbox:notification")), 120, 0.2)
    queued = r.zcard(cl.key("sms:queue"))
    peer.start()
    try:
        res.check(harness.wait_until(lambda: r.zcard(cl.key("sms:queue")) + r.zcard(cl.key("sms:sending")) == 0,
                                     120, 0.2), "SMS still queued")
        ts = sorted(x["t"] for x in peer.submits())
        busiest = max([bisect.bisect_left(ts, t + 1.0) - k for k, t in enumerate(ts)] or [0])
        mean = (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 0
        res.fig("sms", queued)
        res.fig("submits", len(ts))
        res.fig("max_submits_per_s", busiest)
        res.fig("mean_submits_per_s", round(mean))
        res.check(queued >= count // 2 and len(ts) >= queued, "%d SMS queued, %d submit_sm" % (queued, len(ts)))
        res.check(busiest <= tps + tps // 50, "%d submit_sm within one second, smpp_tps %d" % (busiest, tps))
        res.check(mean >= 0.9 * tps, "%.0f submit_sm/s on average, smpp_tps %d" % (mean, tps))
    finally:
        stop_peers(peer)
    return res


TESTS = [
    ("smsc_peer_selftest", test_smsc_peer_selftest),
    ("sms_delivery", test_sms_delivery),
    ("sms_errors", test_sms_errors),
    ("sms_window_and_reconnect", test_sms_window_and_reconnect),
    ("sms_stop", test_sms_stop),
    ("sms_crash", test_sms_crash),
    ("sms_smsc_crash", test_sms_smsc_crash),
    ("sms_stale_claim_settled", test_sms_stale_claim_settled),
    ("sms_quiet_hours", test_sms_quiet_hours),
    ("sms_rate_cap", test_sms_rate_cap),
]


# ---------------------------------------------------------------- standalone

if __name__ == "__main__":
    sys.exit(fixtures.standalone(TESTS, __doc__))
