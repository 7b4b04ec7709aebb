"""A real llama.cpp server (xllamacpp) on loopback, for the served-model tests.

Run as ``python tests/llama_server.py PORT MODEL.gguf N_PARALLEL N_THREADS``: it serves the
OpenAI API on 127.0.0.1:PORT until killed. A separate process, so a test can kill it
mid-run like a crashed server, and its threads never compete with the test's GIL.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(model: Path, port: int | None = None, n_parallel: int = 4,
          timeout: float = 120.0, n_threads: int = 1) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server and wait until it answers; returns the process and the API root."""
    port = port or free_port()
    process = subprocess.Popen([sys.executable, __file__, str(port), str(model), str(n_parallel),
                                str(n_threads)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the llama.cpp server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the llama.cpp server did not start in time")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait(timeout=30)


def _serve(port: int, model: str, n_parallel: int, n_threads: int) -> None:
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = model
    params.port = port
    params.hostnames = ["127.0.0.1"]
    params.n_parallel = n_parallel
    params.n_ctx = 4096 * n_parallel
    params.cpuparams.n_threads = n_threads
    server = xllamacpp.Server(params)  # noqa: F841 - serves until the process ends
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
