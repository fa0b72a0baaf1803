"""Known-content matching: PDQ hashes looked up in banks of known content.

The flow, file by file::

    a 256-bit PDQ hash -> HashIndex.search / nearest (exact Hamming)   index.py

``index`` holds :class:`HashIndex`, an exact search over packed hashes (multi-index hashing on
large banks, a linear scan on small ones or at large distances) and :func:`lookup_path`, the pure
choice between the two.
"""
