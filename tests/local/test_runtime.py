"""LocalAWS as a whole: clean stop, and `serve_forever` in a real subprocess used from here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from conftest import subprocess_env
from support.localkit import LAMBDA_TRUST, build_stack, wait_for, zipped

from pocctl.local.runtime import LocalAWS
from pocctl.local.server import local_client

PID_HANDLER = "import os\ndef handler(event, context):\n    return {'pid': os.getpid()}\n"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def test_stop_is_prompt_and_leaves_no_threads_or_workers() -> None:
    before = set(threading.enumerate())
    with LocalAWS(port=0) as aws:
        aws.reset()  # moto's state is process-wide: start from a clean account
        stack = build_stack(aws.endpoint_url, api=False)
        lam = stack.client("lambda")
        lam.update_function_code(
            FunctionName="POC-Lambda-2", ZipFile=zipped({"notify_order.py": PID_HANDLER})
        )
        pid = json.loads(lam.invoke(FunctionName="POC-Lambda-2")["Payload"].read())["pid"]
        wait_for(lambda: len(aws.polled_mappings()) == 2, what="both mappings polled")
        assert _pid_alive(pid)
        started = time.monotonic()
    took = time.monotonic() - started
    assert took < 5, f"stop() took {took:.1f} s"
    assert not _pid_alive(pid)
    wait_for(
        lambda: not [t for t in threading.enumerate() if t not in before and t.is_alive()],
        timeout=5,
        what="every engine thread to end",
    )


def test_serve_forever_in_a_subprocess_until_ctrl_c() -> None:
    """`pocctl local`'s engine in another process: used through its endpoint from here, then
    Ctrl-C (SIGINT) stops it cleanly with exit status 0 and no worker left behind."""
    script = (
        "from pocctl.local.runtime import LocalAWS\n"
        "aws = LocalAWS(port=0, log=lambda line: print(line, flush=True))\n"
        "aws.start()\n"
        "print('ENDPOINT', aws.endpoint_url, flush=True)\n"
        "aws.serve_forever()\n"
        "print('STOPPED', flush=True)\n"
    )
    env = subprocess_env(MOTO_IAM_LOAD_MANAGED_POLICIES="false")
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the server is up (or the process died)
        assert first.startswith("ENDPOINT http://127.0.0.1:"), first
        endpoint = first.split()[1]

        lam = local_client(endpoint, "lambda")
        role = local_client(endpoint, "iam").create_role(
            RoleName="r", AssumeRolePolicyDocument=LAMBDA_TRUST
        )["Role"]["Arn"]
        lam.create_function(
            FunctionName="pid",
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": zipped({"app.py": PID_HANDLER})},
        )
        resp = lam.invoke(FunctionName="pid")
        assert "FunctionError" not in resp
        worker = json.loads(resp["Payload"].read())["pid"]
        assert _pid_alive(worker)

        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0, out
    assert "STOPPED" in out
    assert "Traceback" not in out, out
    wait_for(lambda: not _pid_alive(worker), timeout=5, what="the worker process to end")
