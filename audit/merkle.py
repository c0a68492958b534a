"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashes and inclusion proofs.

A digest signs the root over the heads of the streams it lists, so an evidence bundle can
prove its run's head is in a signed digest with a handful of hashes instead of carrying
every other stream's head. Leaves and nodes are hashed with distinct prefixes (0x00,
0x01) so that a leaf can never pass for a node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of already-hashed leaves (`leaf_hash`)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Pairing left to right and carrying an odd last node up unchanged builds the same
    # tree as RFC 9162's recursive split, without recursion.
    while len(level) > 1:
        paired = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf `index`: the sibling hashes from the leaf up to the root."""
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    lo, hi, m = 0, len(leaves), index
    trail: list[bytes] = []  # siblings from the root down
    while hi - lo > 1:
        k = _split(hi - lo)
        if m < k:
            trail.append(root(leaves[lo + k : hi]))
            hi = lo + k
        else:
            trail.append(root(leaves[lo : lo + k]))
            lo, m = lo + k, m - k
    return trail[::-1]


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that `path` leads to from leaf `index` of a tree of `size`; None when the
    path cannot belong to such a tree (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None
