"""Drives `hearth run MODEL` (the interactive chat) through a pseudo-terminal
the way a person would, and checks the commands `ollama run` users type:
/set parameter, /set system, /show info, /save NAME, /load NAME, /clear.

Usage: python3 chat.py HEARTH_BIN MODEL_PATH STORE_DIR
Standard library only. Exits non-zero (with the terminal's text) on the
first check that fails.
"""

import os
import pty
import re
import select
import sys
import time

HEARTH, MODEL, STORE = sys.argv[1:4]
PROMPT = b">>> "


class Term:
    def __init__(self, argv, env):
        pid, fd = pty.fork()
        if pid == 0:
            os.execve(argv[0], argv, env)
        self.pid, self.fd, self.buf, self.mark = pid, fd, b"", 0

    def read_until(self, pattern, timeout=180):
        """Reads until `pattern` (bytes) appears after the mark; returns the
        text from the mark to the end of the match and moves the mark."""
        deadline = time.time() + timeout
        while True:
            i = self.buf.find(pattern, self.mark)
            if i >= 0:
                start, self.mark = self.mark, i + len(pattern)
                return self.buf[start : self.mark].decode("utf-8", "replace")
            left = deadline - time.time()
            if left <= 0:
                fail(f"timed out waiting for {pattern!r}")
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    fail(f"hearth ended while waiting for {pattern!r}")
                self.buf += chunk

    def send(self, line):
        os.write(self.fd, line.encode() + b"\n")

    def command(self, line, expect):
        """Sends a line and waits for the next prompt; the text in between
        must contain `expect`."""
        self.send(line)
        text = self.read_until(PROMPT)
        if expect not in text:
            fail(f"{line!r}: expected {expect!r} in {text!r}")
        return text

    def ask(self, line):
        """Sends a message and returns the reply (the text before the next prompt)."""
        self.send(line)
        text = self.read_until(PROMPT)
        return text[: -len(PROMPT)].replace("\r\n", "\n").split("\n", 1)[-1].strip()


def fail(msg):
    tail = term.buf[-3000:].decode("utf-8", "replace") if "term" in globals() else ""
    sys.stderr.write(f"FAILED: {msg}\n--- terminal ---\n{tail}\n")
    sys.exit(1)


env = dict(os.environ, HEARTH_MODELS=STORE, TERM="dumb")
term = Term([HEARTH, "run", MODEL, "-t", "2", "--ctx", "1024"], env)
banner = term.read_until(PROMPT)
stem = os.path.basename(MODEL).rsplit(".gguf", 1)[0]
if f"Chatting with {stem}" not in banner:
    fail(f"the banner does not name the model: {banner!r}")

term.command("/set parameter temperature 0", "Set parameter 'temperature' to '0'")
term.command("/set parameter num_predict 16", "Set parameter 'num_predict' to '16'")
term.command("/set parameter top_k lots", "top_k: 'lots' is not a whole number")
term.command("/set parameter mirostat_z 1", "unknown parameter 'mirostat_z'")
term.command(
    "/set system You are a pirate. Answer in one short sentence.", "Set system message."
)
info = term.command("/show info", "temperature")
for want in [stem, "llama", "Q4_1", "num_predict", "You are a pirate."]:
    if want not in info:
        fail(f"/show info lacks {want!r}: {info!r}")

# Temperature 0: the same question in a fresh conversation, the same answer.
first = term.ask("Who are you?")
if not first:
    fail("no reply")
term.command("/clear", "Cleared session context")
again = term.ask("Who are you?")
if again != first:
    fail(f"temperature 0 gave two answers: {first!r} / {again!r}")

term.command("/save pirate-chat", "Created new model 'pirate-chat'")
loaded = term.command("/load pirate-chat", "Loading model 'pirate-chat'")
if "Chatting with pirate-chat" not in loaded:
    fail(f"the banner after /load does not name the model: {loaded!r}")
info = term.command("/show info", "pirate-chat")
for want in ["pirate-chat", "temperature", "You are a pirate.", "num_predict"]:
    if want not in info:
        fail(f"/show info after /load lacks {want!r}: {info!r}")
term.command("/show system", "You are a pirate.")
term.send("/bye")
_, status = os.waitpid(term.pid, 0)
if os.WEXITSTATUS(status) != 0:
    fail(f"/bye exited with status {status}")
print("chat through a terminal: ok")
