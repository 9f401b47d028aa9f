"""The SMTP edge: listeners that unwrap SMTP, check sanity, run the pipeline and reply."""
