"""Pipeline stages, one module each (pre-acceptance: parse, identify, classify, decide;
post-acceptance: archive, transform)."""
