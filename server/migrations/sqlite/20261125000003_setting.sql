-- Settings changed at run time through the API (thresholds and the like), as JSON documents.

create table setting (
    setting_id integer primary key,
    name text not null unique,
    value text not null,
    updated_by text not null,
    created_at bigint not null
);
