#!/usr/bin/env python3
"""A delaying TCP proxy on loopback (asyncio, standard library only).

    bench/delay_proxy.py --listen 127.0.0.1:0 --target 127.0.0.1:993 \
        --delay-ms 25 [--up-delay-ms 25 --down-delay-ms 25] [--port-file F]

Every chunk read on one side is written to the other side `delay` ms after
it was read, per direction, in order (one FIFO per direction, so nothing is
reordered and a chunk is never sent before the one read before it). 25 ms
each way gives 50 ms round-trip time. Bandwidth is not limited. `tc netem`
is not available in this kernel, hence this. TLS passes through untouched.

With --port-file the chosen listening port is written there once listening
(use --listen 127.0.0.1:0 for a free port). SIGTERM/SIGINT stop it.
"""

import argparse
import asyncio
import collections
import os
import signal
import socket
import sys
import time


def hostport(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


async def pump(reader, writer, delay, stats, key):
    """Copy reader -> writer, each chunk delayed by `delay` seconds."""
    loop = asyncio.get_running_loop()
    queue = collections.deque()
    ready = asyncio.Event()
    done = False

    async def read_side():
        nonlocal done
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                queue.append((loop.time() + delay, data))
                stats[key] += len(data)
                ready.set()
        except (ConnectionError, OSError):
            pass
        finally:
            done = True
            ready.set()

    async def write_side():
        try:
            while True:
                while not queue:
                    if done:
                        return
                    ready.clear()
                    await ready.wait()
                due, data = queue[0]
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                queue.popleft()
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except (OSError, RuntimeError):
                pass

    await asyncio.gather(read_side(), write_side())


def nodelay(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


async def main_async(args):
    target = hostport(args.target)
    up = (args.up_delay_ms if args.up_delay_ms is not None else args.delay_ms) / 1000.0
    down = (args.down_delay_ms if args.down_delay_ms is not None else args.delay_ms) / 1000.0
    stats = collections.Counter()

    async def handle(creader, cwriter):
        stats["connections"] += 1
        try:
            sreader, swriter = await asyncio.open_connection(*target)
        except OSError as e:
            print("delay_proxy: connect %s: %s" % (args.target, e), file=sys.stderr)
            cwriter.close()
            return
        nodelay(cwriter)
        nodelay(swriter)
        try:
            await asyncio.gather(pump(creader, swriter, up, stats, "up_bytes"),
                                 pump(sreader, cwriter, down, stats, "down_bytes"))
        finally:
            for w in (cwriter, swriter):
                w.close()

    host, port = hostport(args.listen)
    server = await asyncio.start_server(handle, host, port, reuse_address=True)
    real_port = server.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % real_port)
        os.replace(tmp, args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    async with server:
        await stop.wait()
    if args.verbose:
        print("delay_proxy: %d connections, %d bytes up, %d bytes down in %.1f s"
              % (stats["connections"], stats["up_bytes"], stats["down_bytes"],
                 time.monotonic() - started), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--target", required=True)
    ap.add_argument("--delay-ms", type=float, default=25.0, help="one-way delay, both directions")
    ap.add_argument("--up-delay-ms", type=float, help="client -> server delay")
    ap.add_argument("--down-delay-ms", type=float, help="server -> client delay")
    ap.add_argument("--port-file")
    ap.add_argument("-v", "--verbose", action="store_true")
    asyncio.run(main_async(ap.parse_args()))


if __name__ == "__main__":
    main()
