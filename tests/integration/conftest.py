"""Session-wide live stack for the end-to-end and browser tests."""
import pytest

from testsupport.live_stack import Stack


@pytest.fixture(scope="session")
def embedded_stack(tmp_path_factory):
    """The default configuration: SQLite and the embedded SQLite broker, no servers."""
    stack = Stack(tmp_path_factory.mktemp("embedded"))
    stack.prepare()
    stack.start_worker()
    yield stack
    stack.stop()
