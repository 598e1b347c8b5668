"""Orders through their workflow: creating, advancing, issues, confirmations, access rules."""
