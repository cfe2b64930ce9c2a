import hashlib
import json
import pickle
import re

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from proofs import hashing
from proofs.hashing import (
    BLAKE3,
    HASH_NAMES,
    HASHINGS,
    SHA256,
    DomainError,
    UnknownHashError,
    encode_domain,
    get_hashing,
    hash_parts,
)
from proofs.types import HashName

DOMAINS = [getattr(hashing, name) for name in dir(hashing) if name.startswith("DOMAIN_")]


def test_raw_digests_match_the_libraries():
    assert SHA256.digest(b"abc") == hashlib.sha256(b"abc").digest()
    assert BLAKE3.digest(b"abc") == blake3.blake3(b"abc").digest()
    assert SHA256.new(b"ab").copy().digest() == hashlib.sha256(b"ab").digest()


def test_a_context_is_resolved_once_per_name_and_reads_as_its_name():
    """One context per name, however the name is given or however the context travels (pickle),
    and it writes as the name, so records, JSON and job ids are unchanged."""
    assert tuple(str(h) for h in HASHINGS) == HASH_NAMES
    for context in HASHINGS:
        assert get_hashing(str(context)) is get_hashing(HashName(str(context))) is context
        assert pickle.loads(pickle.dumps(context)) is context
        assert context.name is HashName(str(context)) and json.dumps(str(context)) == f'"{context.name}"'
    assert SHA256 != BLAKE3 and {SHA256, get_hashing("sha256")} == {SHA256}


@pytest.mark.parametrize("name", ["md5", "SHA256", "", None, ["sha256"]])
def test_unknown_hash_is_named(name):
    with pytest.raises(UnknownHashError, match=re.escape(repr(name))):
        get_hashing(name)


def test_domain_tags_are_distinct_and_versioned():
    assert len(set(DOMAINS)) == len(DOMAINS) >= 10
    for domain in DOMAINS:
        assert domain.startswith(b"pinpoint/") and domain.endswith(b"/v1")
        encode_domain(domain)


@pytest.mark.parametrize("domain", [b"", b"x" * 256, b"bad\x00tag", "str-tag"])
def test_bad_domain_tags_are_rejected(domain):
    with pytest.raises((DomainError, TypeError)):
        encode_domain(domain)


@pytest.mark.parametrize("context", HASHINGS, ids=str)
def test_parts_are_length_prefixed(context):
    domain = hashing.DOMAIN_MESSAGE
    assert hash_parts(domain, b"ab", b"c", hashing=context) != hash_parts(
        domain, b"a", b"bc", hashing=context
    )
    assert hash_parts(domain, b"", hashing=context) != hash_parts(domain, hashing=context)


@pytest.mark.parametrize("context", HASHINGS, ids=str)
def test_domains_separate(context):
    roots = {hash_parts(domain, b"same", hashing=context) for domain in DOMAINS}
    assert len(roots) == len(DOMAINS)


@given(st.lists(st.binary(max_size=8), max_size=4), st.lists(st.binary(max_size=8), max_size=4))
def test_hash_parts_is_injective_on_part_lists(first, second):
    if first != second:
        assert hash_parts(hashing.DOMAIN_OPS, *first) != hash_parts(hashing.DOMAIN_OPS, *second)
    assert len(hash_parts(hashing.DOMAIN_OPS, *first)) == 32
