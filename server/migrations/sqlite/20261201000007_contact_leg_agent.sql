-- An agent's last contacts (the desktop's agent panel) are read by agent and time.

create index contact_leg_agent_queued on contact_leg (agent, queued_at);
