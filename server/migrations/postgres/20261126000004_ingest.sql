-- Ingest: event ids make a retried batch harmless, agent_state is each agent's current state
-- (what a restarted server rebuilds its floor from), and teams and sites can be deactivated.

alter table agent_state_change add column event_id text;
create unique index agent_state_change_event on agent_state_change (event_id);

create table agent_state (
    agent_id bigint primary key references agent (agent_id),
    state text not null,
    reason_code_id bigint references reason_code (reason_code_id),
    -- When the state began, from the event.
    started_at bigint not null,
    -- When the source last said anything about the agent (an event or a heartbeat).
    seen_at bigint not null,
    -- Whether the source sends heartbeats, so that silence means the data is stale.
    watched boolean not null
);

alter table team add column active boolean not null default true;
alter table site add column active boolean not null default true;
