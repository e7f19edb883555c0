"""Several clients, one Milvus Lite file: a second process gets an error that names the shared-server setup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from servers.core.errors import ConfigError
from servers.retrieval.store import Store

HOLD = "import sys; from servers.retrieval.store import Store; Store(sys.argv[1]); print('open', flush=True); sys.stdin.read()"


def test_a_second_process_on_the_same_lite_file_is_told_to_share_one_http_server(tmp_path: Path) -> None:
    uri = str(tmp_path / "milvus.db")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, uri], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(ConfigError) as refused:
            Store(uri)
        message = str(refused.value)
        assert "in use by another process" in message
        assert "quiver serve all --transport http" in message and "quiver config CLIENT --transport http" in message
    finally:
        holder.communicate("", timeout=60)
    again = Store(uri)  # free again once the other process has gone
    again.client.close()
    from milvus_lite.server_manager import server_manager_instance

    server_manager_instance.release_server(uri)
