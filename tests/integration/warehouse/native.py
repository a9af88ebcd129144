"""What the native-port tests share: a warehouse of a module's own and clickhouse-driver clients of it."""

from __future__ import annotations

import dataclasses

from clickhouse_driver import Client

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials


@dataclasses.dataclass(frozen=True)
class Warehouse:
    endpoint: Endpoint
    native_port: int
    credentials: Credentials

    def client(self, *, analyst: bool = False, **options: object) -> Client:
        credentials = self.credentials
        user = credentials.analyst_user if analyst else credentials.user
        password = (credentials.analyst_password if analyst else credentials.password).get_secret_value()
        return Client(
            "127.0.0.1",
            port=self.native_port,
            user=user,
            password=password,
            send_receive_timeout=30,
            settings={"server_side_params": True},
            **options,
        )
