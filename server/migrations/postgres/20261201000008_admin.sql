-- What people sent from the apps' Feedback button, for administrators; nothing is sent
-- anywhere else. Append-only.

create table feedback (
    feedback_id bigint generated always as identity primary key,
    created_at bigint not null,
    subject text not null,
    body text not null,
    client text not null,
    context text not null,
    screenshot bytea
);

create index feedback_created on feedback (created_at);

-- The people and wallboard PCs that opened the stream, by subject: what they run, from where,
-- when last seen, and when an administrator signed them out (their tokens from sign-ins before
-- that are refused).

create table device (
    subject text primary key,
    wallboard text,
    client text not null,
    address text,
    first_seen bigint not null,
    last_seen bigint not null,
    signed_out_at bigint
);
