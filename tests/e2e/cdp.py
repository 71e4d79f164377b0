#!/usr/bin/env python3
# tests/e2e/cdp.py: drives headless Chromium through its DevTools protocol
# over a pipe (--remote-debugging-pipe: JSON messages ended by a NUL byte,
# Chromium reads fd 3 and writes fd 4), so an end-to-end script can do what
# a user does in the browser: open a page, fill in a form, submit it, follow
# the redirects, read the DOM and the cookies. Python's standard library
# only; the page runs no script of its own (the admin UI's CSP allows none):
# the steps run through Runtime.evaluate, DevTools' own evaluation.
#
# Usage: cdp.py OUTDIR STEPS-FILE CHROMIUM [CHROMIUM-ARGS...]
# STEPS-FILE has one step a line (blank lines and # comments skipped):
#   goto NAME URL          open URL, wait for the load; save NAME.html, NAME.url
#   fill SELECTOR VALUE    set the value of the input SELECTOR (VALUE: the rest of the line)
#   submit NAME SELECTOR   requestSubmit() the form SELECTOR, wait for the load; save as goto
#   cookies NAME URL       the cookies Chromium would send to URL, as NAME.json
#   shot NAME              a screenshot of the page as it is, NAME.png (the whole page)
# A step that cannot be done (no such element, no load within 20 s) ends the
# run with exit status 1 and says which; 2 is a usage error. It does not
# judge what it saved: the calling script checks the files.
import base64
import json
import os
import select
import subprocess
import sys
import time

STEP_TIMEOUT_S = 20


class Browser:
    def __init__(self, argv):
        self.down_r, self.down_w = os.pipe()   # we write, Chromium reads (its fd 3)
        self.up_r, self.up_w = os.pipe()       # Chromium writes (its fd 4), we read

        def fds():
            os.dup2(self.down_r, 3)
            os.dup2(self.up_w, 4)

        self.proc = subprocess.Popen(argv + ["--remote-debugging-pipe"], preexec_fn=fds,
                                     pass_fds=(3, 4), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL)
        os.close(self.down_r)
        os.close(self.up_w)
        self.buf = b""
        self.next_id = 0
        self.events = []          # (session, method, params), in arrival order

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _read(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.up_r], [], [], left)[0]:
                raise RuntimeError("no answer from Chromium within %d s" % STEP_TIMEOUT_S)
            chunk = os.read(self.up_r, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.down_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"].get("message")))
                return m.get("result", {})
            if "method" in m:
                self.events.append((m.get("sessionId"), m["method"], m.get("params", {})))

    def wait_event(self, method, session, since):
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            for s, meth, _ in self.events[since:]:
                if s == session and meth == method:
                    return
            m = self._read(deadline)
            if "method" in m:
                self.events.append((m.get("sessionId"), m["method"], m.get("params", {})))


def evaluate(b, session, expr):
    r = b.call("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
    if "exceptionDetails" in r:
        raise RuntimeError("%s: %s" % (expr, r["exceptionDetails"].get("text")))
    return r["result"].get("value")


def save(b, session, out, name):
    with open(os.path.join(out, name + ".html"), "w") as f:
        f.write(evaluate(b, session, "document.documentElement.outerHTML"))
    with open(os.path.join(out, name + ".url"), "w") as f:
        f.write(evaluate(b, session, "location.href") + "\n")


def run(b, out, steps):
    target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    b.call("Page.enable", {}, session)
    for n, line in enumerate(steps, 1):
        words = line.split(None, 2)
        if not words or words[0].startswith("#"):
            continue
        op, args = words[0], words[1:]
        where = "step %d (%s)" % (n, line.strip())
        if op == "goto" and len(args) == 2:
            since = len(b.events)
            b.call("Page.navigate", {"url": args[1]}, session)
            b.wait_event("Page.loadEventFired", session, since)
            save(b, session, out, args[0])
        elif op == "fill" and len(args) == 2:
            ok = evaluate(b, session, "(() => { const e = document.querySelector(%s);"
                          " if (!e) return false; e.value = %s; return true; })()"
                          % (json.dumps(args[0]), json.dumps(args[1].rstrip("\n"))))
            if not ok:
                raise RuntimeError("%s: no element %s" % (where, args[0]))
        elif op == "submit" and len(args) == 2:
            since = len(b.events)
            ok = evaluate(b, session, "(() => { const f = document.querySelector(%s);"
                          " if (!f) return false; f.requestSubmit(); return true; })()"
                          % json.dumps(args[1].strip()))
            if not ok:
                raise RuntimeError("%s: no form %s" % (where, args[1]))
            b.wait_event("Page.loadEventFired", session, since)
            save(b, session, out, args[0])
        elif op == "cookies" and len(args) == 2:
            c = b.call("Network.getCookies", {"urls": [args[1].strip()]}, session)
            with open(os.path.join(out, args[0] + ".json"), "w") as f:
                json.dump(c.get("cookies", []), f, indent=1)
        elif op == "shot" and len(args) == 1:
            shot = b.call("Page.captureScreenshot", {"format": "png",
                                                     "captureBeyondViewport": True}, session)
            with open(os.path.join(out, args[0] + ".png"), "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        else:
            raise RuntimeError("%s: not a step" % where)


def main():
    if len(sys.argv) < 4:
        print("usage: cdp.py OUTDIR STEPS-FILE CHROMIUM [CHROMIUM-ARGS...]", file=sys.stderr)
        return 2
    out, steps_file, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    with open(steps_file) as f:
        steps = f.readlines()
    b = Browser(argv)
    try:
        run(b, out, steps)
    except RuntimeError as e:
        print("cdp: %s" % e, file=sys.stderr)
        return 1
    finally:
        b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
