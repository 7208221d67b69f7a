"""The relay's producer places a key where Kafka's default partitioner would (murmur2, as the Java
clients do: a mission's own producers and ours put a case's records on the same partition), with
each key's hash remembered."""

from __future__ import annotations

import uuid

from aiokafka.partitioner import DefaultPartitioner

from corridor.outbox import _key_hash, partition_of


def test_a_key_lands_where_the_default_partitioner_puts_it_every_time() -> None:
    default = DefaultPartitioner()
    keys = [str(uuid.uuid4()).encode() for _ in range(300)] + [b"", b"m/v-1", "Ўзбекистон".encode()]
    for count in (1, 3, 6, 12, 50):
        partitions = list(range(count))
        for key in keys:
            expected = default(key, partitions, partitions)
            assert partition_of(key, partitions, partitions) == expected
            assert partition_of(key, partitions, partitions[:1]) == expected  # availability aside
    # Kafka's own test vectors for murmur2 (org.apache.kafka.common.utils.UtilsTest), as placed.
    assert _key_hash(b"21") == -973932308 & 0x7FFFFFFF
    assert _key_hash(b"foobar") == -790332482 & 0x7FFFFFFF


def test_a_record_without_a_key_goes_to_an_available_partition() -> None:
    for _ in range(50):
        assert partition_of(None, [0, 1, 2, 3], [2, 3]) in (2, 3)
    assert partition_of(None, [0, 1], []) in (0, 1)
