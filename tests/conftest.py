import os

# Before MindSpore is imported anywhere: keep its INFO/WARNING flood out of test output.
os.environ.setdefault("GLOG_v", "3")

import socket

import pytest


@pytest.fixture
def closed_port_url():
    """A loopback URL where nothing listens: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
