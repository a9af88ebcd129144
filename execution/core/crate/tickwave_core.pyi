"""Types of the execution core's extension module (built from this crate; see its README)."""

from typing import Final

__version__: Final[str]
GENESIS_HASH: Final[str]

def link_hash(previous_hash: str, canonical: bytes) -> str: ...
def chain_extend(head: str, next_seq: int, canonicals: list[bytes]) -> tuple[str, int]: ...
