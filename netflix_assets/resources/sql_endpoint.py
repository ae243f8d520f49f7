"""The SQL endpoint BI tools query: a HiveServer2 (Spark's Thrift JDBC/ODBC server, `make serve`).

The pipeline only registers tables there (`serving/catalog.py`); it never needs the endpoint
to build the lake, so a run without a server answering skips the registration and says so,
and `make serve` registers every table when it starts.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Iterator

import dagster as dg
from pydantic import Field

DEFAULT_PORT = 10000


class SqlEndpointResource(dg.ConfigurableResource):
    host: str = Field(default="127.0.0.1", description="HiveServer2 host (`make serve` binds 127.0.0.1).")
    port: int = Field(default=DEFAULT_PORT, description="HiveServer2 binary Thrift port (NETFLIX_SQL_PORT).")
    username: str = Field(default="netflix", description="User name sent with SASL PLAIN (no password locally).")
    enabled: bool = Field(default=True, description="False: this deployment registers no tables.")
    timeout_seconds: float = Field(
        default=120.0, description="Limit of each read or write on the connection: an endpoint that accepts "
        "connections and never answers fails the step instead of holding the day's runs until the run's maximum runtime.")

    @property
    def url(self) -> str:
        return f"jdbc:hive2://{self.host}:{self.port}/default"

    def answers(self, timeout: float = 2.0) -> bool:
        """Whether something accepts connections on the port (no query is sent)."""
        if not self.enabled:
            return False
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                return True
        except OSError:
            return False

    @contextlib.contextmanager
    def cursor(self) -> Iterator:
        import thrift_sasl
        from pyhive import hive
        from thrift.transport.TSocket import TSocket

        # pyhive's own transport (SASL PLAIN, any password) on a socket with a timeout: pyhive's has none.
        socket_ = TSocket(self.host, self.port)
        socket_.setTimeout(self.timeout_seconds * 1000)
        transport = thrift_sasl.TSaslClientTransport(
            lambda: hive.get_installed_sasl(host=self.host, sasl_auth="PLAIN", username=self.username, password="x"),
            "PLAIN", socket_)
        connection = hive.connect(thrift_transport=transport, username=self.username)
        try:
            cursor = connection.cursor()
            yield cursor
            cursor.close()
        finally:
            connection.close()
