-- Queues and contacts. A contact's events are stored as they come (a repeated event id is
-- skipped); its legs, one per stay in a queue, are folded from all of its events again after
-- each new one (server/src/core/contact.rs), so late and out-of-order events land right.

create table queue (
    queue_id bigint generated always as identity primary key,
    name text not null unique,
    -- voice, chat, email or task
    channel text not null,
    -- Service level: answered within target_secs, goal_percent of the time.
    target_secs bigint not null default 20,
    goal_percent bigint not null default 80,
    active boolean not null default true,
    created_at bigint not null
);

create table contact_event (
    contact_event_id bigint generated always as identity primary key,
    event_id text not null unique,
    -- The source's id for the contact.
    contact text not null,
    -- queued, offered, connected or ended
    kind text not null,
    at_ms bigint not null,
    queue_id bigint references queue (queue_id),
    -- The agent's external id (agents are not created from contact events).
    agent text,
    created_at bigint not null
);

create index contact_event_contact on contact_event (contact);
create index contact_event_at on contact_event (at_ms);

create table contact_leg (
    contact text not null,
    leg bigint not null,
    queue_id bigint not null references queue (queue_id),
    queued_at bigint not null,
    offered_at bigint,
    connected_at bigint,
    ended_at bigint,
    agent text,
    -- waiting, ringing, connected, answered, abandoned or transferred
    outcome text not null,
    primary key (contact, leg)
);

create index contact_leg_queue_queued on contact_leg (queue_id, queued_at);
create index contact_leg_queued on contact_leg (queued_at);
