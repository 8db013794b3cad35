"""Who may talk to the agent and what it may do: access policy, pairing, tool approvals."""
