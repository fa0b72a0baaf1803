"""Known-content matching: PDQ hashes looked up in banks of known content.

banks.py     what a bank is (settings, entries) and reading one from a file
index.py     exact Hamming search over packed 256-bit hashes
matcher.py   the lookup over every bank's indexes: the best Match, or none
files.py     bank files read at start-up and reloaded when they change
"""
