-- Every phrase anyone transformed. `append_id` makes appends idempotent: a retried append
-- carries the same id and is stored once.
create table history (
    id bigint generated always as identity primary key,
    append_id text collate "C" not null unique,
    original text not null,
    figalized text not null,
    created_at timestamptz not null default now()
);

-- The number of rows, kept in the same transaction as every insert: `count(*)` would scan the
-- table, and the last id is no count once ids have gaps.
create table history_total (
    only_row boolean primary key default true check (only_row),
    total bigint not null
);
insert into history_total (total) values (0);
