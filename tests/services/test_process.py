"""services/process.py: how one-shot commands end on a SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A command that starts something and must stop it however it ends: "started" once it is in the
# block, "stopped" from its finally.
_COMMAND = """
import sys, time
sys.path.insert(0, sys.argv[1])
from services.process import exit_on_sigterm
exit_on_sigterm()
try:
    print("started", flush=True)
    while True:
        time.sleep(0.05)
finally:
    print("stopped", flush=True)
"""


def test_a_sigterm_unwinds_a_command_so_what_it_started_is_stopped() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", _COMMAND, str(REPO)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "started\n"
        process.send_signal(signal.SIGTERM)
        rest = process.stdout.read()
        status = process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert rest == "stopped\n"  # without the handler a SIGTERM ends it before the finally
    assert status == 143
