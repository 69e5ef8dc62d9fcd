-- Who did what and when: sign-ins (first use of a subject per day), refused attempts,
-- configuration changes. Append-only.

create table audit_event (
    audit_event_id integer primary key,
    created_at bigint not null,
    subject text,
    kind text not null,
    detail text not null
);

create index audit_event_created on audit_event (created_at);
