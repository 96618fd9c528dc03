#!/usr/bin/python3
"""The switch probe for bench/switch.sh: times to the millisecond what bash can't.

  switch_helper.py probe URL EXPECTED READY_FILE DEADLINE_S
      Polls URL over a fresh connection each time (what a new client sees)
      until the body equals EXPECTED; prints the wall-clock time of that
      response in nanoseconds. Touches READY_FILE after its first answer, so
      the caller issues the switch only once the probe is polling.
      Exits 1 if EXPECTED never came before the deadline.
"""

import http.client
import sys
import time


def probe(url: str, expected: str, ready_file: str, deadline_s: float) -> int:
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    deadline = time.monotonic() + deadline_s
    ready = False
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            conn.request("GET", "/", headers={"Connection": "close"})
            body = conn.getresponse().read().decode(errors="replace")
        except OSError:
            body = None
        finally:
            conn.close()
        now = time.time_ns()
        if not ready:
            open(ready_file, "w").close()
            ready = True
        if body == expected:
            print(now)
            return 0
        time.sleep(0.001)
    return 1


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "probe":
        return probe(sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
