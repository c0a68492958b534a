"""RFC 9162 Merkle tree hashes and inclusion proofs, against the RFC 6962 reference tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit import merkle

# The reference inputs of Certificate Transparency's tests and the root over all eight.
DATA = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
        bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]  # fmt: skip
ROOT_OF_8 = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"


def recursive_root(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1's definition, written as it reads."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + recursive_root(leaves[:k]) + recursive_root(leaves[k:])
    ).digest()


def test_the_reference_tree_has_the_reference_root() -> None:
    assert merkle.root([merkle.leaf_hash(d) for d in DATA]).hex() == ROOT_OF_8
    assert merkle.root([]).hex() == hashlib.sha256(b"").hexdigest()


# Distinct leaves: two equal leaves could trade places and still prove the same root.
@given(
    st.lists(st.binary(max_size=8).filter(lambda d: d != b"forged"), max_size=40, unique=True),
    st.data(),
)
def test_every_leaf_proves_its_inclusion_and_nothing_else_does(
    data: list[bytes], draw: st.DataObject
) -> None:
    leaves = [merkle.leaf_hash(d) for d in data]
    root = merkle.root(leaves)
    assert root == recursive_root(leaves)
    if not leaves:
        return
    index = draw.draw(st.integers(0, len(leaves) - 1))
    path = merkle.inclusion_path(leaves, index)
    assert merkle.root_from_path(leaves[index], index, len(leaves), path) == root
    assert merkle.root_from_path(merkle.leaf_hash(b"forged"), index, len(leaves), path) != root
    if path:
        assert merkle.root_from_path(leaves[index], index, len(leaves), path[:-1]) != root
    if len(leaves) > 1:
        other = (index + 1) % len(leaves)
        assert merkle.root_from_path(leaves[index], other, len(leaves), path) != root


def test_a_leaf_outside_the_tree_has_no_path() -> None:
    leaves = [merkle.leaf_hash(d) for d in DATA]
    with pytest.raises(IndexError):
        merkle.inclusion_path(leaves, 8)
    assert merkle.root_from_path(leaves[0], 8, 8, []) is None
