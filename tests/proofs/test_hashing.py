import hashlib

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proofs import hashing
from proofs.hashing import (
    HASH_NAMES,
    DomainError,
    UnknownHashError,
    encode_domain,
    get_hash,
    hash_parts,
)

DOMAINS = [getattr(hashing, name) for name in dir(hashing) if name.startswith("DOMAIN_")]


def test_raw_digests_match_the_libraries():
    assert get_hash("sha256")(b"abc") == hashlib.sha256(b"abc").digest()
    assert get_hash("blake3")(b"abc") == blake3.blake3(b"abc").digest()


def test_unknown_hash_is_named():
    with pytest.raises(UnknownHashError, match="md5"):
        get_hash("md5")
    with pytest.raises(UnknownHashError, match="md5"):
        hash_parts(hashing.DOMAIN_STATE, b"x", hash_name="md5")


def test_domain_tags_are_distinct_and_versioned():
    assert len(set(DOMAINS)) == len(DOMAINS) >= 10
    for domain in DOMAINS:
        assert domain.startswith(b"pinpoint/") and domain.endswith(b"/v1")
        encode_domain(domain)


@pytest.mark.parametrize("domain", [b"", b"x" * 256, b"bad\x00tag", "str-tag"])
def test_bad_domain_tags_are_rejected(domain):
    with pytest.raises((DomainError, TypeError)):
        encode_domain(domain)


@pytest.mark.parametrize("hash_name", HASH_NAMES)
def test_parts_are_length_prefixed(hash_name):
    domain = hashing.DOMAIN_MESSAGE
    assert hash_parts(domain, b"ab", b"c", hash_name=hash_name) != hash_parts(
        domain, b"a", b"bc", hash_name=hash_name
    )
    assert hash_parts(domain, b"", hash_name=hash_name) != hash_parts(domain, hash_name=hash_name)


@pytest.mark.parametrize("hash_name", HASH_NAMES)
def test_domains_separate(hash_name):
    roots = {hash_parts(domain, b"same", hash_name=hash_name) for domain in DOMAINS}
    assert len(roots) == len(DOMAINS)


@given(st.lists(st.binary(max_size=8), max_size=4), st.lists(st.binary(max_size=8), max_size=4))
def test_hash_parts_is_injective_on_part_lists(first, second):
    if first != second:
        assert hash_parts(hashing.DOMAIN_OPS, *first) != hash_parts(hashing.DOMAIN_OPS, *second)
    assert len(hash_parts(hashing.DOMAIN_OPS, *first)) == 32
