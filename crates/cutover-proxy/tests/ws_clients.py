"""WebSocket clients nobody at cutover wrote (aiohttp, websockets), each
sending a message every 250 ms through the proxy until the server closes.

    ws_clients.py [IP:]PORT HOST N SECONDS [CAFILE]

Starts N clients of each library against ws://IP:PORT/ws (IP defaults to
127.0.0.1) with Host HOST; with CAFILE, over TLS (wss://), trusting that certificate: the
websockets clients send HOST as the server name (SNI) and check it, the
aiohttp ones (3.8 has no server_hostname) send none and check the chain. Prints "connected LIB" when a client got its first message, then one
JSON line per client when it ends: {"lib": ..., "close": CODE} for a close
frame received, {"lib": ..., "error": TEXT} for a reset or any other end.
Every client gives up after SECONDS, so the script always ends by itself.
"""

import asyncio
import json
import ssl
import sys

import aiohttp
import websockets

IP, _, PORT = sys.argv[1].rpartition(":")
IP, PORT = IP or "127.0.0.1", int(PORT)
HOST, N, SECONDS = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
CAFILE = sys.argv[5] if len(sys.argv) > 5 else None
SCHEME = "wss" if CAFILE else "ws"
URL = f"{SCHEME}://{IP}:{PORT}/ws"


def tls(check_hostname):
    if CAFILE is None:
        return None
    ctx = ssl.create_default_context(cafile=CAFILE)
    ctx.check_hostname = check_hostname
    return ctx


def report(lib, **result):
    print(json.dumps({"lib": lib, **result}), flush=True)


async def keep_sending(send):
    try:
        while True:
            await send("still here")
            await asyncio.sleep(0.25)
    except Exception:  # the connection ended; the reader reports how
        pass


async def with_aiohttp():
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(URL, headers={"Host": HOST}, ssl=tls(False)) as ws:
            sender = None
            async for msg in ws:
                if sender is None:
                    print("connected aiohttp", flush=True)
                    sender = asyncio.create_task(keep_sending(ws.send_str))
                if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                    break
            if sender:
                sender.cancel()
            error = ws.exception()
            if error is not None:
                report("aiohttp", error=repr(error))
            else:
                report("aiohttp", close=ws.close_code)


async def with_websockets():
    uri = f"{SCHEME}://{HOST}:{PORT}/ws"
    extra = {"ssl": tls(True), "server_hostname": HOST} if CAFILE else {}
    async with websockets.connect(uri, host=IP, port=PORT, **extra) as ws:
        sender = None
        try:
            async for _ in ws:
                if sender is None:
                    print("connected websockets", flush=True)
                    sender = asyncio.create_task(keep_sending(ws.send))
            report("websockets", close=ws.close_code)
        except websockets.ConnectionClosed as closed:
            if closed.rcvd is None:
                report("websockets", error=f"no close frame received: {closed!r}")
            else:
                report("websockets", close=closed.rcvd.code)
        finally:
            if sender:
                sender.cancel()


async def bounded(lib, client):
    try:
        await asyncio.wait_for(client(), SECONDS)
    except asyncio.TimeoutError:
        report(lib, error=f"still open after {SECONDS} s")
    except Exception as e:  # noqa: BLE001 - every end is a result here
        report(lib, error=repr(e))


async def main():
    clients = [bounded("aiohttp", with_aiohttp) for _ in range(N)]
    clients += [bounded("websockets", with_websockets) for _ in range(N)]
    await asyncio.gather(*clients)


asyncio.run(main())
