"""The rollout core: pure and backend-neutral (plan, steps, decision, rollout state)."""
