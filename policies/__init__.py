"""Policy engine and content classifiers: facts from message bytes, verdicts from facts.

No sockets, no database, no clock: everything here is bytes and data in, data out.

    policy = load_policy(["policies/phutho.toml"])          # PolicyError: "file:line: ..."
    facts = policy.classify(raw, mail_from, rcpt_tos, domains=["phutho.gov.vn"],
                            direction="outbound", sender_unit="stttt")
    verdict = policy.evaluate(facts, today=date.today())   # Verdict(action, reasons, ...)

`classify()` (module level) builds Facts with the package's webmail list only; `Policy.classify`
adds the policy's own webmail additions and settings. A loaded Policy is immutable: gateway
worker threads may share it; build one AddressClassifier per policy and domain set and pass it
as `addresses=` to avoid rebuilding the webmail list per message.
"""

from policies.classifiers.addresses import Address, AddressClassifier
from policies.engine import Policy, Verdict
from policies.evidence import Evidence
from policies.facts import ClassifyOptions, Facts, build_facts, classify
from policies.loader import PolicyError, load_policy, resolve_policy_path
from policies.rules import ACTIONS

__all__ = [
    "ACTIONS",
    "Address",
    "AddressClassifier",
    "ClassifyOptions",
    "Evidence",
    "Facts",
    "Policy",
    "PolicyError",
    "Verdict",
    "build_facts",
    "classify",
    "load_policy",
    "resolve_policy_path",
]
