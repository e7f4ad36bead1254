"""A real SMTP server for the tests: aiosmtpd (Debian python3-aiosmtpd) with a handler that writes every message's
raw bytes and envelope to a folder, counts connections, and can refuse recipients on demand.

    /usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_peer.Recorder DIR
(run with tests/system on PYTHONPATH). Files written in DIR:
    NNNNNN.eml        the message as received (DATA, CRLF kept)
    NNNNNN.json       {"mail_from", "rcpt_tos", "peer", "session"}
    connections.log   one line per connection
A recipient whose local part starts with "reject" is refused with 550; one starting with "busy" with 451. A message
to one starting with "slow" is answered 1.5 s after its data (written only then). The first message of a folder to
one starting with "vanish" is written, then the server dies without answering (exit 3), as one killed right there.
A server started again on a folder numbers its messages after those already there.
"""
import asyncio
import glob
import itertools
import json
import os
import threading


class Recorder:
    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("smtp_peer.Recorder takes one argument: the folder to write messages to")
        return cls(args[0])

    def __init__(self, folder):
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.count = itertools.count(1 + len(glob.glob(os.path.join(folder, "*.eml"))))
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock, open(os.path.join(self.folder, "connections.log"), "a") as f:
            f.write("%s:%s\n" % tuple(session.peer[:2]))
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0]
        if local.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("busy"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if any(r.split("@", 1)[0].startswith("slow") for r in envelope.rcpt_tos):
            await asyncio.sleep(1.5)
        with self.lock:
            n = next(self.count)
        base = os.path.join(self.folder, "%06d" % n)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "peer": "%s:%s" % tuple(session.peer[:2])}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        vanished = os.path.join(self.folder, "vanished")
        if any(r.split("@", 1)[0].startswith("vanish") for r in envelope.rcpt_tos) and not os.path.exists(vanished):
            open(vanished, "w").close()
            os._exit(3)
        return "250 2.0.0 accepted as %06d" % n
