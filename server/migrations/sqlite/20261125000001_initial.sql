-- Master data and state history of a MONTI floor. Times are milliseconds since the Unix epoch.

create table site (
    site_id integer primary key,
    name text not null unique,
    created_at bigint not null
);

create table team (
    team_id integer primary key,
    name text not null unique,
    created_at bigint not null
);

create table reason_code (
    reason_code_id integer primary key,
    code text not null unique,
    label text not null,
    created_at bigint not null
);

create table agent (
    agent_id integer primary key,
    external_id text not null unique,
    display_name text not null,
    team_id integer not null references team (team_id),
    site_id integer not null references site (site_id),
    active boolean not null default true,
    created_at bigint not null
);

create table agent_state_change (
    agent_state_change_id integer primary key,
    agent_id integer not null references agent (agent_id),
    state text not null,
    reason_code_id integer references reason_code (reason_code_id),
    started_at bigint not null,
    created_at bigint not null
);

create index agent_state_change_agent_started on agent_state_change (agent_id, started_at);
create index agent_state_change_started on agent_state_change (started_at);
