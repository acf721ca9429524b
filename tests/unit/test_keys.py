"""Key layout: every org key is in the org's slot and under the prefix; fields never collide."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from projector import keys
from projector.buckets import LEVEL_SIZES, MAX_SECOND, TOP
from tests.support.oracles import bucket_ids, decompose, locate

ORGS = ["org-1", "org-bufdir-42", "A", "9.x_y:z-", "o" * 128]
org_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")


def org_keys(prefix: str, org: str) -> list[str]:
    """One key of every kind the org has."""
    base = keys.org_base(prefix, org)
    return [
        keys.day_key(base, 20_537),
        keys.block_key(base, 641),
        keys.upper_key(base),
        keys.offsets_key(base),
        keys.dedup_key(base, 2_934, 3),
        *(locate(base, level, 7)[0] for level in range(TOP + 1)),
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
def test_distinct_buckets_have_distinct_locations(a: int, b: int) -> None:
    base = keys.org_base("prc", "org-1")
    pairs = {*bucket_ids(a), *bucket_ids(b)}
    locations = {locate(base, level, index) for level, index in pairs}
    assert len(locations) == len(pairs)


@pytest.mark.parametrize("second", [0, 59, 60, 3_599, 86_399, 86_400, 1_774_521_852, MAX_SECOND])
def test_fields_stay_small_integers(second: int) -> None:
    """Small integer fields are what keeps the hashes compact (listpack int encodings)."""
    base = keys.org_base("prc", "org-1")
    for level, index in bucket_ids(second):
        key, field = locate(base, level, index)
        if level <= 2:
            assert -1_464 <= field < 86_400 and key == keys.day_key(base, second // 86_400)
        elif level == 3:
            assert 0 <= field < 32
        else:
            assert field == 4 * (second // LEVEL_SIZES[level]) + level - 4


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
def test_a_range_reads_only_the_five_hashes_the_count_script_declares(start: int, end: int) -> None:
    # lua/count.lua reads only these hashes: every bucket of the decomposition must be in one.
    base = keys.org_base("prc", "org-1")
    declared = set(keys.count_keys(base, start, end))
    assert {locate(base, *bucket)[0] for bucket in decompose(start, end)} <= declared


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError):
        locate("prc:{o}:", TOP + 1, 0)


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        (keys.day_key(keys.org_base("p", "org-1"), 20000), "counters"),
        (keys.block_key(keys.org_base("p", "o:d:x"), 625), "counters"),
        (keys.upper_key(keys.org_base("p", "a")), "counters"),
        (keys.dedup_key(keys.org_base("p", "org-1"), 3, 2), "dedup"),
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
    assert keys.kind_of(keys.day_key(keys.org_base("prc:#3", "org-1"), 5)) == "counters"


def test_patterns_escape_the_prefixs_glob_characters() -> None:
    assert keys.generation_patterns("a*b", 2) == ["a\\*b:#2:*"]
    assert keys.generation_patterns("p[1]?", 1)[0] == "p\\[1\\]\\?:{[A-Za-z0-9]*"


def test_a_hash_never_splits_a_parent_bucket() -> None:
    """The series script reads a bucket's siblings from the hash of the bucket itself."""
    for level in range(TOP):
        per_hash = keys.LEVEL_FIELDS[level].per_hash
        ratio = LEVEL_SIZES[level + 1] // LEVEL_SIZES[level]
        assert per_hash == 0 or per_hash % ratio == 0, level


@given(st.lists(st.integers(0, MAX_SECOND + 1), min_size=1, max_size=20))
def test_series_hashes_hold_every_bucket_a_prefix_reads(seconds: list[int]) -> None:
    base = keys.org_base("prc", "org-1")
    declared = {name for name, _, _ in keys.series_hashes(base, seconds)}
    for x in seconds:
        for level in range(TOP):
            parent_size = LEVEL_SIZES[level + 1]
            if x % parent_size == 0:
                continue
            parent = x // parent_size
            ratio = parent_size // LEVEL_SIZES[level]
            assert locate(base, level + 1, parent)[0] in declared
            for sibling in (parent * ratio, parent * ratio + ratio - 1):
                assert locate(base, level, sibling)[0] in declared
        assert locate(base, TOP, 0)[0] in declared


def test_level_fields_agree_with_the_oracles_locate() -> None:
    """LEVEL_FIELDS (what the series script reads) names the fields the other scripts write."""
    base = keys.org_base("prc", "org-1")
    for level, (kind, per_hash, field_base, step) in enumerate(keys.LEVEL_FIELDS):
        for index in (0, 1, 7, 86_399, 86_401, 123_456_789):
            number = index // per_hash if per_hash else 0
            field = field_base + step * (index - number * per_hash)
            assert locate(base, level, index) == (keys._hash_key(base, kind, number), field)
    constants = keys.lua_constants()
    assert constants["FIELD_BASE"] == [f.base for f in keys.LEVEL_FIELDS]
