"""Content and address classifiers: each turns one kind of input into facts with evidence.

One module per classifier; each is pure (strings and extraction data in, findings out) and is
tested table by table in tests/policies/test_<classifier>.py.
"""
