import os

# Before MindSpore is imported anywhere: keep its INFO/WARNING flood out of test output.
os.environ.setdefault("GLOG_v", "3")
# The convolution layers' stock kernels everywhere but in test_conv_routes.py, which forces
# and checks the native oneDNN and gather + MatMul routes (against these kernels, a whole
# training step included). The MatMul graphs take 2-3x longer to compile, and the other
# tests, about artifacts, resumes and CLIs, would spend ~40 s more on it; CLI subprocesses
# inherit the choice.
os.environ.setdefault("MINDGAN_CPU_CONVOLUTIONS", "stock")

import socket

import pytest


@pytest.fixture
def closed_port_url():
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
