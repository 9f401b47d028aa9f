"""Load and speed benchmarks that print figures (never run by pytest). See bench/README.md."""
