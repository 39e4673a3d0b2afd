"""SMTP throughput: the pool mailer against raw aiosmtplib, both over 4 reused connections.

    .venv/bin/python bench/smtp_pool.py [-n 5000] [--size 20000] [--pool 4] [--rounds 3]
                                        [--sinks 2] [--dkim]

An aiosmtpd sink (accepts and discards) runs in subprocesses on 127.0.0.1 (2 by default,
sharing the port: one alone is slower than the client), so the client measured here has
its own interpreter. The same pre-built ~20 KB message (CRLF bytes) is sent N times, with
distinct envelopes, through
  (a) raw aiosmtplib: `pool` connections opened up front, one worker task per connection
      calling `sendmail(sender, [recipient], data)`;
  (b) `SmtpMailer` with `pool_size` connections and `mailer.concurrency` worker tasks
      calling `mailer.send(message)`, as the delivery loop does.
Rounds alternate (a) and (b); each figure is the best round. Printed: messages per second,
client CPU per message, and the ratio (b)/(a). `--dkim` adds (c): (b) with DKIM signing
(a fresh 2048-bit key).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib

from digest.mailer import DkimSigner, DkimSigningMailer, Mailer
from digest.mailer.smtp import SmtpMailer
from digest.models import OutgoingMessage

SENDER = "digest@bench.example.org"
HELO = "bench.example.org"


def run_sink(port: int) -> None:
    """The child process: an aiosmtpd server that accepts every message and keeps nothing."""
    from aiosmtpd.smtp import SMTP, Envelope, Session

    class Discard:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            return "250 2.0.0 Ok: queued"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Discard(), hostname="sink.example.org"),
            "127.0.0.1",
            port,
            reuse_port=True,  # several sink processes may share the port
        )
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def start_sinks(count: int) -> tuple[list[subprocess.Popen[str]], int]:
    """`count` sink processes on one port (SO_REUSEPORT: the kernel spreads connections)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    children = []
    for _ in range(count):
        child = subprocess.Popen(
            [sys.executable, __file__, "--sink", str(port)], stdout=subprocess.PIPE, text=True
        )
        children.append(child)
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            stop(children)
            raise SystemExit("the SMTP sink did not start")
    return children, port


def stop(children: list[subprocess.Popen[str]]) -> None:
    for child in children:
        child.terminate()
    for child in children:
        child.wait()


def build_message(size: int) -> bytes:
    """A digest-like multipart/alternative message of about `size` bytes (at least)."""
    paragraph = (
        "We study transfer learning under distribution shift and show that a simple "
        "reweighting of the source domain recovers most of the target accuracy. "
    )
    items = 1
    while True:
        text = "\n\n".join(f"{i}. A paper title number {i}\n{paragraph}" for i in range(items))
        html = "".join(f"<h2>A paper title {i}</h2><p>{paragraph}</p>" for i in range(items))
        msg = EmailMessage()
        msg["From"] = f"Paper digest <{SENDER}>"
        msg["To"] = "reader@example.org"
        msg["Subject"] = f"{items} new papers on transfer learning"
        msg["Date"] = "Sun, 22 Nov 2026 06:30:00 +0100"
        msg["Message-ID"] = "<digest.2026-11-22.0.ab12cd34@bench.example.org>"
        msg.set_content(text)
        msg.add_alternative(html, subtype="html")
        data = msg.as_bytes(policy=policy.SMTP)
        if len(data) >= size:
            return data
        items = max(items + 1, int(items * size / len(data)))


def messages(n: int, data: bytes) -> list[OutgoingMessage]:
    return [
        OutgoingMessage(f"<m{i}@bench.example.org>", SENDER, f"reader{i}@example.org", data)
        for i in range(n)
    ]


Send = Callable[[OutgoingMessage], Awaitable[object]]
Run = Callable[[], Coroutine[Any, Any, None]]


async def workers(count: int, items: list[OutgoingMessage], send: Send) -> None:
    queue: Iterator[OutgoingMessage] = iter(items)

    async def work() -> None:
        for message in queue:
            await send(message)

    await asyncio.gather(*(work() for _ in range(count)))


async def raw(port: int, pool: int, items: list[OutgoingMessage]) -> None:
    clients = [
        aiosmtplib.SMTP(
            hostname="127.0.0.1", port=port, start_tls=False, local_hostname=HELO, timeout=15
        )
        for _ in range(pool)
    ]
    await asyncio.gather(*(client.connect() for client in clients))
    free: list[aiosmtplib.SMTP] = list(clients)

    async def send(message: OutgoingMessage) -> None:
        client = free.pop()
        try:
            await client.sendmail(message.sender, [message.recipient], message.data)
        finally:
            free.append(client)

    await workers(pool, items, send)
    await asyncio.gather(*(client.quit() for client in clients))


async def through(mailer: Mailer, items: list[OutgoingMessage]) -> None:
    async with mailer:
        await workers(mailer.concurrency, items, mailer.send)


def timed(run: Run) -> tuple[float, float]:
    """(wall seconds, client CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    asyncio.run(run())
    return time.perf_counter() - wall, time.process_time() - cpu


def dkim_key(folder: Path) -> Path:
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    return key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=5000, help="messages per round")
    parser.add_argument("--size", type=int, default=20_000, help="bytes per message")
    parser.add_argument("--pool", type=int, default=4, help="connections")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sinks", type=int, default=2, help="sink processes")
    parser.add_argument("--dkim", action="store_true", help="also (c): the pool with DKIM")
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return

    data = build_message(args.size)
    items = messages(args.n, data)
    children, port = start_sinks(args.sinks)
    try:

        def pool_mailer() -> SmtpMailer:
            return SmtpMailer(
                "127.0.0.1", port, security="none", pool_size=args.pool, local_hostname=HELO
            )

        few = items[: max(1, args.n // 10)]  # DKIM is slow: a tenth of the messages
        runs: dict[str, Run] = {
            "(a) raw aiosmtplib": lambda: raw(port, args.pool, items),
            "(b) SmtpMailer pool": lambda: through(pool_mailer(), items),
        }
        if args.dkim:
            folder = Path(tempfile.mkdtemp())
            signer = DkimSigner.from_file("bench", "bench.example.org", dkim_key(folder))
            runs["(c) pool + DKIM"] = lambda: through(DkimSigningMailer(pool_mailer(), signer), few)
        timed(lambda: raw(port, args.pool, items[:200]))  # warm up both sides
        best: dict[str, tuple[float, float, int]] = {}
        for _ in range(args.rounds):
            for name, run in runs.items():
                count = len(few) if name.startswith("(c)") else len(items)
                wall, cpu = timed(run)
                rate = count / wall
                if name not in best or rate > best[name][0]:
                    best[name] = (rate, cpu / count, count)
    finally:
        stop(children)

    print(
        f"{args.n} messages of {len(data):,} bytes, {args.pool} connections, "
        f"best of {args.rounds} rounds, {args.sinks} sink process(es), {os.cpu_count()} CPUs"
    )
    for name, (rate, cpu, count) in best.items():
        print(f"{name:22} {rate:8,.0f} msg/s   client CPU {cpu * 1e6:6,.0f} µs/msg   ({count})")
    ratio = best["(b) SmtpMailer pool"][0] / best["(a) raw aiosmtplib"][0]
    print(f"ratio (b)/(a): {ratio:.2f}")


if __name__ == "__main__":
    main()
