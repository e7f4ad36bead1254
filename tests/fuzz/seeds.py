#!/usr/bin/python3
"""Writes the seed corpus of every fuzz target into tests/fuzz/corpus/<target>/ from the project's own data:
the French and English messages, the sample configuration, catalog and templates, the SMPP PDUs of
tests/unit/test_smpp.c, and protobuf frames packed here by hand (the wire format is simple enough), so that
the seeds can be regenerated after a schema or data change: /usr/bin/python3 tests/fuzz/seeds.py"""
import hashlib
import json
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
TEMPLATES = os.path.join(ROOT, "services", "notification", "templates")


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def read(*path):
    with open(os.path.join(ROOT, *path), "rb") as f:
        return f.read()


FRENCH = [
    "SAV : votre WM-7000 (T-2026-000001) est prêt (réparé). À retirer chez SAV Paris Nation, 12 cours de "
    "Vincennes, 75012 Paris, lun.-ven. 9h-18h, sam. 9h-12h.",
    "SAV : demande T-2026-000001 (WM-7000) enregistrée, un technicien va l'examiner. Prise en charge probable : "
    "garantie légale, gratuite.",
    "Devis : 274,80 € TTC, valable jusqu'au 30 décembre 2026. Répondez OUI ou NON.",
    "Accolades {x} [y] ~ ^ | \\ et € : deux septets chacun.",
    "Œuvre à cœur : « déjà » — ça coûte 12 € 😀",
    "Ελληνικά ΔΦΓΛΩΠΨΣΘΞ",
    "",
]


def gsm():
    for i, t in enumerate(FRENCH):
        write("gsm", bytes([i * 37 % 256]) + t.encode())
    write("gsm", b"\x07" + ("Réparation terminée. " * 12).encode())  # several GSM-7 parts
    write("gsm", b"\x08" + ("€" * 80 + "a").encode())  # escapes around a part boundary
    write("gsm", b"\x09" + ("😀" * 40).encode())  # surrogate pairs around a UCS-2 boundary


def validate():
    for s in ["06 12 34 56 78", "+33 6 12 34 56 78", "+33 (0)6 12 34 56 78", "0033612345678", "06.12.34.56.78",
              "+44 20 7946 0958", "+1-202-555-0143", "jeanne.martin@example.fr", "paul.durand+sav@mail.example.com",
              "T-2026-000001", "73282932000074", "732829320", "WM7-2291-0457", "Jeanne Martin"]:
        write("validate", s)


def hexb(h):
    return bytes.fromhex(h.replace(" ", ""))


def pdu(body_hex, cmd, status=0, seq=1):
    body = hexb(body_hex)
    return struct.pack(">IIII", 16 + len(body), cmd, status, seq) + body


def deliver_body(esm, text, tlvs=""):
    t = text.encode()
    return (hexb("00 0101 333336313233343536373800 0500 53415600") + bytes([esm]) + bytes(8) + bytes([len(t)]) + t
            + hexb(tlvs))


RECEIPTS = [
    (0x04, "id:0000006699 sub:001 dlvrd:001 submit date:2611301200 done date:2611301200 stat:DELIVRD err:000 text:", ""),
    (0x04, "id:X stat:UNDELIV", "001e0005314132420004270001 05"),
    (0x04, "", "001e0005314132420004270001 00"),
    (0x04, "id:1a2b sub:001 dlvrd:000 submit date:2611301200 done date:2612011200 stat:EXPIRED err:027 text:SAV",
     ""),
    (0x00, "STOP", ""),
    (0x00, "Stop merci", ""),
]


def smpp():
    write("smpp", hexb("00000020000000090000000000000001 73617600 73656372657400 00 34 00 00 00"))
    write("smpp", hexb("00000031000000040000000000000002 00 0500 53415600 0101 333336313233343536373800"
                       "000000 00 00 01 00 00 00 02 4869"))
    write("smpp", hexb("00000015800000040000000000000002 314100"))
    write("smpp", hexb("00000010800000040000005800000003"))
    write("smpp", hexb("00000014800000040000000000000002 31413141"))
    write("smpp", hexb("00000010000000150000000000000007"))
    write("smpp", pdu("73617600", 0x80000009))
    for esm, text, tlvs in RECEIPTS:
        body = deliver_body(esm, text, tlvs)
        write("smpp", struct.pack(">IIII", 16 + len(body), 5, 0, 9) + body)


def receipt():
    for esm, text, tlvs in RECEIPTS:
        write("receipt", deliver_body(esm, text, tlvs))


def settings():
    conf = read("deploy", "local", "sav.conf")
    write("settings", conf)
    write("settings", b"[redis]\nport = 6400 # a comment\n[billing]\npayment_reminder_days = 7,15,30\n"
                      b"[notification]\nsms_quiet_hours = off\nsmtp_url = smtp://127.0.0.1:2525\n")
    write("settings", b"[intake]\nendpoint = ipc:///tmp/intake\npickup_reminder_days = 1,2,3,4,5,6,7,8\n"
                      b"mediator = M\xc3\xa9diateur CM2C\n; old comment\n")
    write("settings", b"[bus]\nmax_frame_bytes = 2048\nsocket_max_bytes = 1024\n")  # refused: frame > socket
    write("settings", b"")
    write("settings", read("deploy", "production", "sav.conf"))
    write("settings", b"[billing]\nendpoint = tcp://10.0.0.1:5553, tcp://10.0.0.2:5553\nbind = tcp://10.0.0.2:5553\n"
                      b"[relay]\nclaim_ms = 1000\ntakeover_ms = 4000\n")


def catalog():
    write("catalog", read("deploy", "local", "catalog.json"))
    write("catalog", '{"models": [{"id": "WM-7000", "name": "Lave-linge 7 kg", "family": "washing_machine", '
                     '"commercial_warranty_months": 24, "parts_availability_years": 10}], '
                     '"centres": [{"id": "PAR-01", "name": "SAV Paris Nation", "address": "12 cours de Vincennes", '
                     '"opening_hours": "lun.-ven. 9h-18h", "labour_rate_cents": 6000, "travel_fee_cents": 3500, '
                     '"diagnostic_fee_cents": 0}], '
                     '"parts": [{"ref": "RES-2000W", "name": "Résistance 2000 W", "price_cents": 4500, '
                     '"stock": {"PAR-01": 3}}], '
                     '"fault_codes": [{"family": "washing_machine", "code": "E21", "symptom": "ne chauffe plus", '
                     '"cause": "résistance", "labour_minutes": 45, "parts": [{"ref": "RES-2000W", "qty": 1}]}]}')


def template():
    for event in ["ready_for_pickup", "quote_sent", "ticket_received", "payment_reminder"]:
        texts = [read("services", "notification", "templates", "%s.%s.txt" % (event, v))
                 for v in ["sms.fr", "sms.en", "email.fr", "email.en"]]
        write("template", b"\0".join(texts))
    write("template", b"\0".join([b"{{model}} {{ticket_id}}", b"x", b"Subject: {{total}}\n\n{{valid_until}}",
                                   b"Subject: s\n\nb", "Jeanne {{model}}".encode(), b"T-2026-000001", b"", b"1 \xe2\x82\xac"]))


def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb(*fields):
    """Encodes (number, value) pairs: int and bool as varints, str and bytes as length-delimited fields."""
    out = b""
    for num, v in fields:
        if isinstance(v, (bool, int)):
            out += varint(num << 3) + varint(int(v))
        else:
            v = v.encode() if isinstance(v, str) else v
            out += varint(num << 3 | 2) + varint(len(v)) + v
    return out


def field(name, value):
    return pb((1, name), (2, value))


def part(ref, qty, price=None):
    return pb((1, ref), (2, qty), *([(3, price)] if price is not None else []))


# (message type, index of the message in fuzz_message.c's table, body)
BODIES = [
    (1, 1, pb((1, "savctl"))),
    (2, 2, pb((1, "intake"), (2, "0.1.0"), (3, "tcp://127.0.0.1:5551"), (4, True), (5, 0), (6, 0))),
    (3, 0, pb((1, 2), (2, "phone number contains 'x': only digits, spaces, dots, dashes, brackets and a leading + are allowed"))),
    (10, 4, pb((1, "req-7f3a"), (3, "WM7-2291-0457"), (4, "WM-7000"), (5, "2025-06-14"), (7, "repair"), (8, "drop_off"),
               (9, "ne chauffe plus"), (10, "E21"), (12, "C-000001"), (13, "PAR-01"))),
    (11, 5, pb((1, "T-2026-000001"), (2, "received"), (3, False))),
    (12, 6, pb((1, "T-2026-000001"))),
    (13, 10, pb((1, field("id", "T-2026-000001")), (1, field("state", "closed")),
                (4, pb((1, 1796000000000), (2, "ticket.received"), (3, "received"), (4, "intake"))),
                (5, pb((1, "T-2026-000001:ready_for_pickup:sms:1"), (2, "sms"), (3, "recorded"), (4, "+33612345678"),
                       (6, "SAV : votre WM-7000 (T-2026-000001) est prêt (réparé)."), (7, 1796000000000),
                       (8, "ready_for_pickup"), (9, "fr"), (10, "gsm7"), (11, 1))),
                (7, pb((1, "CMP-000001"), (2, field("status", "open")))))),
    (14, 12, pb((1, "customer.add"), (2, "req-1"), (3, field("name", "Jeanne Martin")),
                (3, field("phone", "06 12 34 56 78")), (3, field("email", "jeanne.martin@example.fr")))),
    (14, 12, pb((1, "payment.record"), (3, field("amount", "27480")), (3, field("amount", "-5")), (3, field("method", "card")))),
    (15, 13, pb((1, '{"id": "C-000001", "replayed": false}'))),
    (50, 14, pb((1, "6f1c2a9e0b3d4c5e8f7a6b5c4d3e2f10"), (2, 1), (3, "ticket not there yet"))),
    (100, 16, pb((1, "WM-7000"), (2, "repair"), (3, "E21"), (4, "ne chauffe plus"), (5, "2026-11-30"), (6, "2025-06-14"),
                 (7, False), (8, False))),
    (101, 17, pb((1, "washing_machine"), (2, True), (3, "E21"), (4, "résistance"), (5, part("RES-2000W", 1, 4500)), (6, 45))),
    (102, 21, pb((1, "legal_conformity"), (2, False), (3, 0), (4, "2027-06-14"), (5, "2027-06-14"),
                 (6, "Garantie légale de conformité jusqu'au 2027-06-14 (art. L217-3 du Code de la consommation)"))),
    (103, 18, pb((1, "ready_for_pickup"), (2, 1), (3, field("outcome", "réparé")), (3, field("note", "résistance remplacée")))),
    (104, 19, pb((1, 1), (2, "wear"), (3, "replace_parts"), (4, "none"), (5, True), (6, part("DW-HEATPUMP", 1)), (7, 60))),
    (105, 20, pb((1, "repaired"), (2, "repair.done"))),
]


def envelope(mtype, body, ticket="T-2026-000001", source="intake"):
    fields = [(1, "6f1c2a9e0b3d4c5e8f7a6b5c4d3e2f10"), (2, mtype), (3, 1)]
    if ticket:
        fields.append((4, ticket))
    fields.append((5, 1796000000000))
    if source:
        fields.append((6, source))
    fields.append((7, body))
    return pb(*fields)


def envelopes():
    for mtype, index, body in BODIES:
        write("envelope", envelope(mtype, body, None if mtype < 50 else "T-2026-000001", "savctl" if mtype < 50 else "intake"))
        write("message", bytes([index]) + body)
    write("message", bytes([15]) + part("RES-2000W", 2, 4500))
    write("message", bytes([3]) + pb((1, "Jeanne Martin"), (2, "+33612345678"), (3, "jeanne.martin@example.fr"), (4, "fr"), (5, False)))


def mail():
    base = ["sav@sav.example", "Service après-vente", "jeanne.martin@example.fr",
            "Votre appareil WM-7000 est prêt à être retiré (demande T-2026-000001)",
            read("services", "notification", "templates", "ready_for_pickup.email.fr.txt").decode().split("\n\n", 1)[1],
            "T-2026-000001.ready_for_pickup.email.1@sav.example", "1796000000000"]
    write("mail", "\0".join(base))
    en = list(base)
    en[1], en[3] = "SAV \"Nation\", Paris", "Quote for your WM-7000 (request T-2026-000002)"
    en[4] = read("services", "notification", "templates", "quote_sent.email.en.txt").decode().split("\n\n", 1)[1]
    write("mail", "\0".join(en))
    odd = list(base)
    odd[3] = "Œuvre « déjà » réparée — 274,80 € TTC 😀 " * 3
    odd[4] = "<b>Tom & Jerry</b> \"quoted\" l'apostrophe\r\nCRLF\rCR\n\nparagraphe"
    write("mail", "\0".join(odd))


PACK_PAYLOAD = json.dumps([
    ["id", "T-2026-000042", "state", "closed", "symptom", "ne chauffe plus", "customer_id", "C-000007"],
    [json.dumps({"at": 1764543600000, "actor": "admin", "state": "received", "event": "ticket.received",
                 "detail": ""}, separators=(",", ":"))],
    ["family", "washing_machine"], ["status", "decided", "basis", "legal_guarantee"], {}, {}, {}, {},
    ["T-2026-000042:ticket_received:sms:1", "T-2026-000042:ticket_received:email:1"],
    [["T-2026-000042:ticket_received:sms:1", ["id", "T-2026-000042:ticket_received:sms:1", "status", "delivered",
                                                "body", "SAV : demande T-2026-000042 enregistrée"]]]],
    ensure_ascii=False, separators=(",", ":")).replace("/", "\\/")


def packed_value(payload, dict_id):
    """A packed value as common/pack.c writes it: header, then raw deflate with the preset dictionary."""
    zdict = read("common", "pack", "dict-%d.txt" % dict_id) if dict_id else None
    z = zlib.compressobj(9, zlib.DEFLATED, -15, 9, **({"zdict": zdict} if zdict else {}))
    body = z.compress(payload) + z.flush()
    return (b"SVPK" + bytes([1, dict_id]) + hashlib.sha1(payload).digest() + struct.pack(">I", len(payload)) +
            struct.pack(">q", 1796081400000) + body)


def pack():
    payload = PACK_PAYLOAD.encode()
    write("pack", b"\0" + payload)
    write("pack", b"\0" + b'[[],[],[],[],[],[],[],[],[],[]]')
    write("pack", b"\1" + packed_value(payload, 1))
    write("pack", b"\1" + packed_value(payload, 0))


if __name__ == "__main__":
    pack()
    mail()
    envelopes()
    settings()
    catalog()
    template()
    gsm()
    validate()
    smpp()
    receipt()
