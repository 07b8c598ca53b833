"""An SMTP sink that answers each message after a delay, as a far-away
receiving server does: latency, not CPU, limits a sender. Every recipient is
written to a log, so a run can check that each got exactly one message.

Usage: delay_sink.py PORT DELAY_SECONDS RECIPIENT_LOG
"""
import asyncio
import sys

port, delay, log_path = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
log = open(log_path, "w", buffering=1)


async def session(reader, writer):
    def say(line):
        writer.write(line.encode() + b"\r\n")

    say("220 sink.example ESMTP")
    rcpts = []
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                say("250-sink.example")
                say("250-PIPELINING")
                say("250 8BITMIME")
            elif verb == b"MAIL":
                rcpts = []
                say("250 2.1.0 Ok")
            elif verb == b"RCPT":
                rcpts.append(line[8:].strip().strip(b"<>").decode(errors="replace"))
                say("250 2.1.5 Ok")
            elif verb == b"DATA":
                say("354 End data with <CR><LF>.<CR><LF>")
                await writer.drain()
                while (await reader.readline()) not in (b".\r\n", b""):
                    pass
                await asyncio.sleep(delay)
                for r in rcpts:
                    log.write(r + "\n")
                say("250 2.0.0 Ok: queued")
            elif verb == b"RSET":
                rcpts = []
                say("250 2.0.0 Ok")
            elif verb == b"QUIT":
                say("221 2.0.0 Bye")
                await writer.drain()
                break
            else:
                say("250 2.0.0 Ok")
            await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main():
    server = await asyncio.start_server(session, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


asyncio.run(main())
