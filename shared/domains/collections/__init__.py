"""Collections: the régua (cadences and steps), the planner, contact governance and sending."""
