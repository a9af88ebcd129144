"""Who may do what: users and credentials, the analyst's read-only policy and limits, the process's confinement."""
