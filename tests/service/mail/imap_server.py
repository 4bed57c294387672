"""A tiny IMAP4rev1 server for tests: the commands `clm mail poll` uses (imaplib as the client), one mailbox.

LOGIN, AUTHENTICATE PLAIN (UTF-8), SELECT, UID SEARCH UNSEEN, UID FETCH n (BODY.PEEK[]), UID STORE n +FLAGS (...), EXPUNGE, LOGOUT.
`drop_on_store` closes the connection at the next STORE, as a network failure between the desk's commit
and the \\Seen flag would.
"""

from __future__ import annotations

import base64
import re
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Stored:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)


@dataclass
class Mailbox:
    user: str = "hotro@shop.example.vn"
    password: str = "mật khẩu"
    messages: list[Stored] = field(default_factory=list)
    drop_on_store: int = 0
    fetched: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, raw: bytes) -> int:
        uid = (self.messages[-1].uid if self.messages else 0) + 1
        self.messages.append(Stored(uid, raw))
        return uid


_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


def _args(line: str) -> list[str]:
    return [q.replace('\\"', '"').replace("\\\\", "\\") if q or b == "" else b for q, b in _TOKEN.findall(line)]


class _Handler(socketserver.StreamRequestHandler):
    box: Mailbox

    def send(self, text: str | bytes) -> None:
        self.wfile.write(text if isinstance(text, bytes) else text.encode())

    def handle(self) -> None:
        box, authed = self.box, False
        self.send("* OK [CAPABILITY IMAP4rev1] test server ready\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            tag, _, rest = text.partition(" ")
            command, _, tail = rest.partition(" ")
            command = command.upper()
            if command == "CAPABILITY":
                self.send(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n")
            elif command == "LOGIN":
                user, password = (_args(tail) + ["", ""])[:2]
                authed = (user, password) == (box.user, box.password)
                self.send(f"{tag} OK logged in\r\n" if authed else f"{tag} NO [AUTHENTICATIONFAILED] wrong\r\n")
            elif command == "AUTHENTICATE" and tail.upper() == "PLAIN":
                self.send("+ \r\n")
                answer = base64.b64decode(self.rfile.readline().strip() or b"=")
                _, user, password = (answer.split(b"\0") + [b"", b""])[:3]
                authed = (user.decode(), password.decode()) == (box.user, box.password)
                self.send(f"{tag} OK logged in\r\n" if authed else f"{tag} NO [AUTHENTICATIONFAILED] wrong\r\n")
            elif not authed:
                self.send(f"{tag} BAD log in first\r\n")
            elif command == "SELECT":
                self.send(f"* {len(box.messages)} EXISTS\r\n* FLAGS (\\Seen \\Deleted)\r\n"
                          f"{tag} OK [READ-WRITE] SELECT completed\r\n")
            elif command == "UID":
                self.uid(tag, tail)
            elif command == "EXPUNGE":
                with box.lock:
                    box.messages = [m for m in box.messages if "\\Deleted" not in m.flags]
                self.send(f"{tag} OK expunged\r\n")
            elif command == "LOGOUT":
                self.send(f"* BYE\r\n{tag} OK bye\r\n")
                return
            else:
                self.send(f"{tag} BAD unknown command\r\n")

    def uid(self, tag: str, tail: str) -> None:
        box = self.box
        sub, _, args = tail.partition(" ")
        sub = sub.upper()
        if sub == "SEARCH":
            uids = " ".join(str(m.uid) for m in box.messages if "\\Seen" not in m.flags)
            self.send(f"* SEARCH {uids}\r\n{tag} OK search done\r\n".replace("SEARCH \r\n", "SEARCH\r\n"))
        elif sub == "FETCH":
            uid = int(args.split()[0])
            found = next((m for m in box.messages if m.uid == uid), None)
            if found is not None:
                box.fetched.append(uid)
                seq = box.messages.index(found) + 1
                self.send(f"* {seq} FETCH (UID {uid} BODY[] {{{len(found.raw)}}}\r\n".encode() + found.raw + b")\r\n")
            self.send(f"{tag} OK fetch done\r\n")
        elif sub == "STORE":
            if box.drop_on_store:
                box.drop_on_store -= 1
                self.request.close()
                raise ConnectionAbortedError("dropped on purpose")
            uid, _, flags = args.partition(" ")
            found = next((m for m in box.messages if m.uid == int(uid)), None)
            if found is not None:
                found.flags.update(re.findall(r"\\\w+", flags))
            self.send(f"{tag} OK store done\r\n")
        else:
            self.send(f"{tag} BAD unknown UID command\r\n")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:  # a dropped connection is part of a test
        pass


def start(box: Mailbox) -> tuple[_Server, int]:
    handler = type("Handler", (_Handler,), {"box": box})
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]
