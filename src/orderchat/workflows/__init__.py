"""Built-in order workflows, as TOML files read by services at start-up."""
