"""The one place that builds Redis clients: a single Redis or a Redis Cluster (REDIS_CLUSTER).

TLS and the ACL user come from the URL (`rediss://user:password@host:port/db`) and
`REDIS_SSL_CAFILE`.

Every component (projector, API, streams, benchmarks) asks here, so switching a deployment
to a cluster is one setting. In cluster mode `REDIS_URL` names any one node; redis-py's
`RedisCluster` discovers the rest and routes each command (and each script, by its declared
keys) to the node owning its slot.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from config import Settings

# Either kind of client; both speak the same commands for what the service does.
Client = redis.Redis | RedisCluster
# Errors that pass by themselves: Redis down or restarting, read-only after a failover, a
# cluster slot without a live primary until its node restarts or a replica takes over. The
# projector retries on them; the API answers 503 with Retry-After.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterError,  # ClusterDownError, and redis-py's "TTL exhausted"
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
)


class LazyCluster:
    """A `RedisCluster` built on first use, and built again on the next use if that failed.

    redis-py's constructor asks the seed node for the slot map at once and raises when no node
    answers. A process started while the cluster is away must behave as during any outage
    (the API answers 503, the projector retries), so the failure is raised where the client
    is used, as the ConnectionError a single Redis would raise. Everything else is the
    cluster client's (`cluster`)."""

    def __init__(self, url: str, **options: Any) -> None:
        self._url, self._options = url, options
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()

    @property
    def cluster(self) -> RedisCluster:
        """The cluster client; ConnectionError while no node of the cluster answers."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = RedisCluster.from_url(self._url, **self._options)
                    except RedisClusterException as error:
                        raise redis.exceptions.ConnectionError(
                            f"no Redis Cluster node answers: {error}"
                        ) from error
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)

    def close(self) -> None:
        """Close the cluster client's connections (if it was ever built). redis-py's close
        leaves each node's pool connected (the node client does not own its pool), so those
        sockets would linger until garbage collection: disconnect them here."""
        if self._client is not None:
            for node in self._client.get_nodes():
                if node.redis_connection is not None:
                    node.redis_connection.connection_pool.disconnect()
            self._client.close()


def is_cluster(client: Any) -> bool:
    """Whether `client` speaks to a Redis Cluster."""
    return isinstance(client, RedisCluster | LazyCluster)


def cluster_client(client: Any) -> RedisCluster:
    """The `RedisCluster` behind a cluster client (building it if need be)."""
    return client.cluster if isinstance(client, LazyCluster) else client


def connect(
    settings: Settings,
    *,
    name: str | None = None,
    timeout: float = 5.0,
    max_connections: int | None = None,
    retries: int = 0,
    health_check_interval: int = 0,
) -> Any:
    """A client of the configured Redis: fails fast (`timeout` seconds), retries a dropped
    connection `retries` times at once; `max_connections` bounds (and blocks on) the pool,
    per node in cluster mode; `name` is the CLIENT SETNAME of its connections."""
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "health_check_interval": health_check_interval,
    }
    if name is not None:
        options["client_name"] = name
    if settings.redis_uses_tls and settings.redis_ssl_cafile:
        # rediss:// verifies the server's certificate and host name; against this CA bundle
        # when one is given, else the system's.
        options["ssl_ca_certs"] = settings.redis_ssl_cafile
    retry = Retry(NoBackoff(), retries, supported_errors=(redis.exceptions.ConnectionError,))
    if settings.redis_cluster:
        if max_connections is not None:
            options.update(
                max_connections=max_connections,
                connection_pool_class=redis.BlockingConnectionPool,
                timeout=timeout,
            )
        return LazyCluster(settings.redis_url, retry=retry, **options)
    if max_connections is None:
        return redis.Redis.from_url(settings.redis_url, retry=retry, **options)
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=max_connections,
        timeout=timeout,
        retry=retry,
        **options,
    )
    return redis.Redis(connection_pool=pool)
