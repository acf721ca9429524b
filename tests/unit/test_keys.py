"""Key layout: every org key is in the org's slot and under the prefix; fields never collide."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from projector import keys
from projector.buckets import LEVEL_SIZES, MAX_SECOND, TOP
from tests.support.oracles import CountTree

ORGS = ["org-1", "org-bufdir-42", "A", "9.x_y:z-", "o" * 128]
org_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")


def org_keys(prefix: str, org: str) -> list[str]:
    """One key of every kind the org has."""
    base = keys.org_base(prefix, org)
    return [
        keys.upper_key(base),
        keys.offsets_key(base),
        keys.dedup_directory_key(base, 2_934),
        keys.dedup_key(base, 2_934, 3, 5),
        *(keys.node_key(base, level, 7) for level in range(1, keys.TREE_TOP + 1)),
    ]


@pytest.mark.parametrize("org", ORGS)
@pytest.mark.parametrize("prefix", ["prc", "t0123abcd", "a:b"])
def test_org_keys_carry_prefix_and_hash_tag(prefix: str, org: str) -> None:
    for key in org_keys(prefix, org):
        assert key.startswith(f"{prefix}:{{{org}}}:")
        # Redis Cluster hashes the text between the first `{` and the next `}`.
        first = key.index("{")
        assert key[first + 1 : key.index("}", first)] == org


@given(org_ids)
def test_any_valid_org_id_keeps_its_tag(org: str) -> None:
    for key in org_keys("prc", org):
        assert key.startswith(f"prc:{{{org}}}:")


@pytest.mark.parametrize("org", ["", "-lead", "a b", "a{b", "a}b", "é", "o" * 129, None])
def test_malformed_org_ids_are_refused(org: str) -> None:
    with pytest.raises(ValueError):
        keys.org_base("prc", org)


@pytest.mark.parametrize("prefix", ["", "a{b", "a}b", "a b", None])
def test_malformed_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError):
        keys.check_prefix(prefix)


def test_shared_keys_and_channel_share_one_slot() -> None:
    shared = [
        keys.positions_key("prc", "record-events"),
        keys.caught_up_key("prc", "record-events"),
        keys.changes_channel("prc"),
        keys.snapshots_key("prc"),
        *keys.snapshot_index_keys("prc").values(),
        *keys.snapshot_org_keys("prc", "org-1").values(),
    ]
    assert len(set(shared)) == len(shared)
    assert all(name.startswith("prc:{#}:") for name in shared)
    assert {key_slot(name.encode()) for name in shared} == {key_slot(b"#")}
    assert keys.offset_field("record-events", 3) == "record-events:3"


@pytest.mark.parametrize("slot", [0, 1, 5460, 5461, 10922, 16383])
def test_node_tags_land_in_their_slot(slot: int) -> None:
    tag = keys.node_tag(slot)
    assert "{" not in tag and "}" not in tag and tag.startswith("#")
    assert key_slot(keys.positions_key("prc", "t", tag).encode()) == slot


def test_snapshot_org_keys_refuse_malformed_orgs() -> None:
    with pytest.raises(ValueError):
        keys.snapshot_org_keys("prc", "a|b")


@given(st.integers(0, MAX_SECOND), st.integers(0, MAX_SECOND))
def test_distinct_nodes_have_distinct_keys(a: int, b: int) -> None:
    base = keys.org_base("prc", "org-1")
    levels = range(1, keys.TREE_TOP + 1)
    nodes = {(level, x // keys.TREE_SIZES[level]) for x in (a, b) for level in levels}
    assert len({keys.node_key(base, level, index) for level, index in nodes}) == len(nodes)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (1, MAX_SECOND - 1),
        (0, MAX_SECOND),
        (86_399, 86_400),
        (86_399, 3 * 86_400 + 1),
        (2_764_799, 2_764_800 * 40 + 7),
        (5, 5),
    ],
)
def test_a_range_reads_only_the_hashes_the_count_script_declares(start: int, end: int) -> None:
    # lua/count_lib.lua reads the upper hash and nodes of the paths over start and end + 1.
    base = keys.org_base("prc", "org-1")
    declared = keys.count_keys(base, start, end)
    assert len(declared) == keys.COUNT_KEYS
    assert set(keys.series_hashes(base, [start, end + 1])) <= set(declared)


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        (keys.node_key(keys.org_base("p", "org-1"), 1, 20000), "counters"),
        (keys.node_key(keys.org_base("p", "o:d:x"), 4, 625), "counters"),
        (keys.upper_key(keys.org_base("p", "a")), "counters"),
        (keys.dedup_key(keys.org_base("p", "org-1"), 3, 2, 1), "dedup"),
        (keys.dedup_directory_key(keys.org_base("p", "org-1"), 3), "dedup"),
        (keys.offsets_key(keys.org_base("p", "org-1")), "offsets"),
        (keys.positions_key("p", "record-events"), "other"),
        (keys.positions_key("p", "record-events", keys.node_tag(9)), "other"),
        (keys.caught_up_key("p", "record-events"), "other"),
        (keys.snapshots_key("p"), "other"),
    ],
)
def test_kind_of_names_what_a_key_holds(key: str, kind: str) -> None:
    assert keys.kind_of(key) == kind


@pytest.mark.parametrize("prefix", ["a#b", "#", "prc:#2"])
def test_prefixes_holding_the_generation_mark_are_refused(prefix: str) -> None:
    # `#` marks generation prefixes: no configured prefix can look like another's generation.
    with pytest.raises(ValueError):
        keys.check_prefix(prefix)


@pytest.mark.parametrize("generation", [0, -1, 1.0, "2", None, True])
def test_malformed_generations_are_refused(generation: object) -> None:
    with pytest.raises(ValueError):
        keys.generation_prefix("prc", generation)  # type: ignore[arg-type]


def test_the_first_generation_keeps_the_layout_from_before_generations() -> None:
    assert keys.generation_prefix("prc", 1) == "prc"
    assert keys.generation_prefix("prc", 2) == "prc:#2"
    assert keys.generation_prefix("a:b", 13) == "a:b:#13"


@pytest.mark.parametrize("generation", [1, 2, 17])
@pytest.mark.parametrize("org", ORGS)
def test_a_generations_keys_keep_their_slots(generation: int, org: str) -> None:
    base = keys.generation_prefix("prc", generation)
    for first, later in zip(org_keys("prc", org), org_keys(base, org), strict=True):
        assert key_slot(first.encode()) == key_slot(later.encode())
        assert later.startswith(f"{base}:{{{org}}}:")
    shared = [keys.caught_up_key(base, "t"), keys.positions_key(base, "t")]
    assert {key_slot(k.encode()) for k in shared} == {key_slot(b"#")}
    assert key_slot(keys.positions_key(base, "t", keys.node_tag(77)).encode()) == 77


def test_the_generation_record_sits_with_the_snapshots() -> None:
    names = [
        keys.generation_key("prc"),
        keys.generation_members_key("prc"),
        keys.rebuild_key("prc"),
        keys.caught_up_key(keys.generation_prefix("prc", 5), "t"),
        keys.snapshots_key("prc"),
    ]
    assert len(set(names)) == len(names)
    assert {key_slot(k.encode()) for k in names} == {key_slot(b"#")}
    assert keys.kind_of(keys.generation_key("prc")) == "other"
    assert keys.kind_of(keys.node_key(keys.org_base("prc:#3", "org-1"), 3, 5)) == "counters"


def test_patterns_escape_the_prefixs_glob_characters() -> None:
    assert keys.generation_patterns("a*b", 2) == ["a\\*b:#2:*"]
    assert keys.generation_patterns("p[1]?", 1)[0] == "p\\[1\\]\\?:{[A-Za-z0-9]*"


@given(
    st.lists(st.tuples(st.integers(0, MAX_SECOND), st.integers(1, 9)), min_size=1, max_size=40),
    st.lists(st.integers(0, MAX_SECOND + 1), min_size=1, max_size=20),
)
def test_series_hashes_hold_every_node_a_prefix_reads(
    events: list[tuple[int, int]], seconds: list[int]
) -> None:
    """Whatever the splits, a prefix reads only hashes series_hashes declares."""
    base = keys.org_base("prc", "org-1")
    tree = CountTree(base, split_at=2)
    for k in range(0, len(events), 5):
        tree.apply(events[k : k + 5])
    declared = set(keys.series_hashes(base, seconds))
    read: list[str] = []
    for x in seconds:
        tree.prefix(x, read=read)
        assert set(read) <= declared
        assert tree.prefix(x) == sum(w for s, w in events if s < x)


def test_splits_keep_every_hash_small_and_every_prefix_exact() -> None:
    """A burst of one day: every leaf stays within SPLIT_AT fields (minutes within 60)."""
    rng = random.Random(4)
    base = keys.org_base("prc", "org-1")
    tree = CountTree(base)
    day = 20_000 * 86_400
    events = [(day + rng.randrange(86_400), 1) for _ in range(30_000)]
    for k in range(0, len(events), 1000):
        tree.apply(events[k : k + 1000])
    assert max(len(fields) for fields in tree.hashes.values()) <= keys.SPLIT_AT + 1
    for x in [day, day + 1, day + 3_599, day + 43_210, day + 86_399, day + 86_400]:
        assert tree.prefix(x) == sum(1 for s, _ in events if s < x)


def test_tree_sizes_nest_with_small_ratios() -> None:
    sizes = keys.TREE_SIZES
    assert sizes[0] == 1 and sizes[-1] == LEVEL_SIZES[TOP]
    ratios = [b // a for a, b in itertools.pairwise(sizes)]
    assert all(b % a == 0 for a, b in itertools.pairwise(sizes))
    assert ratios[0] == 60 and max(ratios[1:]) <= 8


def test_lua_constants_name_nodes_as_node_key_does() -> None:
    constants = keys.lua_constants()
    assert constants["NODE_KEY"] % ("b:", 3, 12) == keys.node_key("b:", 3, 12)  # type: ignore[operator]
    assert constants["COUNT_KEYS"] == 1 + 2 * keys.TREE_TOP
