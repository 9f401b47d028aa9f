"""The violation register: every non-allow verdict, recorded so that auditors can rely on it.

`register` appends hash-chained records and verifies the chain; `query` lists and shows them for
`mailgw violations`; `enforce` turns a verdict into store rows during the acceptance commit
(record, quarantine hold, policy header, notices); `quarantine` holds what
`mailgw quarantine` does.
"""
