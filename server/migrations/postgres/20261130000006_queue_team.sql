-- The teams that serve each queue: a caller who sees one of them sees the queue.

create table queue_team (
    queue_id bigint not null references queue (queue_id),
    team_id bigint not null references team (team_id),
    primary key (queue_id, team_id)
);
